"""The edge metadata channel, sender to receiver: rate control (thinning, coded resolution), one
lossless JBIG2 file per frame, and back to HR-size maps. The JBIG2 nodes and the link layer both
code edges through here, so the main job and a ComfyUI graph send exactly the same bits.

Maps are ``[T,H,W]`` uint8, 1 = edge. The bitstream is a ``Bitstream("jbig2")`` whose ``params``
record the coding (container, resolution factor, reduce method, thinning, coded size, the chosen
template per frame) and a digest of every coded map, so the receiver can say whether its decode is
bit-exact.
"""
import hashlib
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from ..codec import jbig2
from ..codec.bitstream import Bitstream
from . import edge_rate

CONTAINERS = {"file": False, "pdf embedded": True}


class EdgeStreamError(ValueError):
    """An edge bitstream that does not decode to what it declares; the message names the frame."""


@dataclass(frozen=True)
class EdgeCoding:
    """How the sender codes an edge map.

    thinning:      one-pixel-wide lines before coding (fewer bits, a slightly different map)
    factor:        code at 1/factor resolution (1, 2, 4); the receiver upscales nearest-neighbour
    reduce_method: "any" (a block is an edge if any pixel is) or "nearest" (its top-left pixel)
    template:      JBIG2 generic-region template 0..3, or None for the ``auto`` search (all templates
                   x TPGDON, then adaptive-pixel positions; the smallest file wins)
    tpgdon:        typical prediction (fixed templates only)
    container:     "file" (standalone .jb2) or "pdf embedded"
    """
    thinning: bool = False
    factor: int = 1
    reduce_method: str = "any"
    template: Optional[int] = None
    tpgdon: bool = False
    container: str = "file"

    def __post_init__(self):
        if self.factor not in edge_rate.FACTORS:
            raise ValueError(f"factor must be one of {edge_rate.FACTORS}, got {self.factor!r}")
        if self.reduce_method not in edge_rate.REDUCE_METHODS:
            raise ValueError(f"reduce_method must be one of {edge_rate.REDUCE_METHODS}, got {self.reduce_method!r}")
        if self.template not in (None, 0, 1, 2, 3):
            raise ValueError(f"template must be 0..3 or None (auto), got {self.template!r}")
        if self.container not in CONTAINERS:
            raise ValueError(f"container must be one of {list(CONTAINERS)}, got {self.container!r}")


def digest(bitmap: np.ndarray) -> str:
    """Fingerprint of a coded map, carried in the bitstream's params for the round-trip check."""
    bitmap = np.ascontiguousarray(bitmap, np.uint8)
    return hashlib.sha256(np.packbits(bitmap, axis=-1).tobytes() + repr(bitmap.shape).encode()).hexdigest()[:32]


def coded_size(h: int, w: int, factor: int) -> Tuple[int, int]:
    return -(-h // factor), -(-w // factor)


def encode(maps: np.ndarray, coding: EdgeCoding = EdgeCoding(), fps: float = 30.0,
           progress: Optional[Callable[[int, int], None]] = None) -> Bitstream:
    """``[T,H,W]`` 0/1 edge maps -> ``Bitstream("jbig2")``, one JBIG2 file per frame."""
    maps = np.asarray(maps)
    if maps.ndim == 2:
        maps = maps[None]
    t, h, w = maps.shape
    if h * w > jbig2.MAX_PIXELS:
        raise ValueError(f"{w}x{h} is larger than JBIG2 coding here allows ({jbig2.MAX_PIXELS} pixels per "
                         f"frame); downscale it first")
    coded = edge_rate.prepare(maps, coding.thinning, coding.factor, coding.reduce_method)
    embedded = CONTAINERS[coding.container]
    opts = dict(auto=True) if coding.template is None else dict(template=coding.template, tpgdon=coding.tpgdon)
    payload, chosen = [], []
    for i, frame in enumerate(coded):
        blob = jbig2.encode(frame, embedded=embedded, **opts)
        info = jbig2.describe(blob, embedded=embedded)
        chosen.append(dict(template=info["template"], tpgdon=info["tpgdon"], at=info["at"]))
        payload.append(blob)
        if progress is not None:
            progress(i + 1, t)
    return Bitstream("jbig2", tuple(payload), (t, h, w, 1), fps, params=dict(
        container=coding.container, resolution=coding.factor, reduce_method=coding.reduce_method,
        thinning=bool(coding.thinning), coded_size=(int(coded.shape[1]), int(coded.shape[2])), frames=chosen,
        coded_density=round(float(np.mean(coded != 0)), 5), digests=[digest(f) for f in coded]))


def decode(stream: Bitstream, progress: Optional[Callable[[int, int], None]] = None):
    """``Bitstream("jbig2")`` -> ``(maps [T,H,W] uint8, coded [T,h,w] uint8, exact)``.

    ``exact`` is True when every frame decodes bit-exactly to the map the sender coded, False on a
    mismatch, None when the stream carries no digests. The declared sizes bound every allocation:
    each frame's decoder may make no page larger than the declared coded size. Raises
    :class:`EdgeStreamError` naming the frame at fault."""
    if stream.codec != "jbig2":
        raise EdgeStreamError(f"this is a {stream.codec!r} stream, not JBIG2")
    t, h, w, _ = stream.shape
    if len(stream.payload) != t:
        raise EdgeStreamError(f"{len(stream.payload)} payloads for {t} frames; JBIG2 streams carry one file per frame")
    params = stream.params
    factor = params.get("resolution", 1)
    if factor not in edge_rate.FACTORS:
        raise EdgeStreamError(f"unknown resolution factor {factor!r} (expected one of {list(edge_rate.FACTORS)}); "
                              f"re-encode it")
    ch, cw = coded_size(h, w, factor)
    if tuple(params.get("coded_size", (ch, cw))) != (ch, cw):
        raise EdgeStreamError(f"declares coded size {params.get('coded_size')} but {w}x{h} at 1/{factor} is "
                              f"{cw}x{ch}; the stream is inconsistent (re-encode it)")
    container = params.get("container", "file")
    if container not in CONTAINERS:
        raise EdgeStreamError(f"unknown container {container!r}")
    digests = params.get("digests")
    exact = None if digests is None else len(digests) == t
    out = np.empty((t, h, w), np.uint8)
    coded_maps = np.empty((t, ch, cw), np.uint8)
    for i, blob in enumerate(stream.payload):
        limits = jbig2.Limits.for_page(cw, ch, max_input=max(len(blob), 1))
        try:
            coded = jbig2.decode(blob, embedded=CONTAINERS[container], limits=limits)
        except jbig2.JBIG2Error as e:
            raise EdgeStreamError(f"frame {i} is not a readable JBIG2 stream of the declared {cw}x{ch} size ({e})") \
                from None
        if coded.shape != (ch, cw):
            raise EdgeStreamError(f"frame {i} decodes to {coded.shape[1]}x{coded.shape[0]} but the bitstream "
                                  f"declares {cw}x{ch}")
        coded_maps[i] = coded
        out[i] = edge_rate.upscale(coded, factor, (h, w))
        if exact:
            exact = digest(coded) == digests[i]
        if progress is not None:
            progress(i + 1, t)
    return out, coded_maps, exact
