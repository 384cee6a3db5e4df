"""The edge metadata channel, sender to receiver: rate control (thinning, coded resolution), one
lossless JBIG2 file per frame or one inter-frame JBIG2 clip, and back to HR-size maps. The JBIG2
nodes and the link layer both code edges through here, so the main job and a ComfyUI graph send
exactly the same bits.

Maps are ``[T,H,W]`` uint8, 1 = edge. Per frame, the bitstream is a ``Bitstream("jbig2")`` with one
file per frame; inter-frame (``EdgeCoding.video``), a ``Bitstream("jbig2-clip")`` whose single
payload is the clip container of ``models/codec/jbig2_video.py`` (key frames every
``key_interval``, refinement coding against the previous frame in between). ``params`` record the
coding (container, resolution factor, reduce method, thinning, coded size, per frame the chosen
template or the clip's frame kind and motion) and a digest of every coded map, so the receiver can
say whether its decode is bit-exact.
"""
import hashlib
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from ..codec import jbig2, jbig2_video
from ..codec.bitstream import Bitstream
from . import edge_rate

CONTAINERS = {"file": False, "pdf embedded": True}
VIDEO_MODES = ("per-frame", "inter-frame")
CODECS = {"per-frame": "jbig2", "inter-frame": "jbig2-clip"}


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
    container:     "file" (standalone .jb2) or "pdf embedded" (per-frame only)
    video:         "per-frame" (one JBIG2 file per frame) or "inter-frame" (one clip: intra frames
                   coded as above, the others as T.88 refinement regions against the previous
                   frame, whichever is smaller)
    key_interval:  inter-frame: a key (intra) frame every this many frames
    """
    thinning: bool = False
    factor: int = 1
    reduce_method: str = "any"
    template: Optional[int] = None
    tpgdon: bool = False
    container: str = "file"
    video: str = "per-frame"
    key_interval: int = 30

    def __post_init__(self):
        if self.factor not in edge_rate.FACTORS:
            raise ValueError(f"factor must be one of {edge_rate.FACTORS}, got {self.factor!r}")
        if self.reduce_method not in edge_rate.REDUCE_METHODS:
            raise ValueError(f"reduce_method must be one of {edge_rate.REDUCE_METHODS}, got {self.reduce_method!r}")
        if self.template not in (None, 0, 1, 2, 3):
            raise ValueError(f"template must be 0..3 or None (auto), got {self.template!r}")
        if self.container not in CONTAINERS:
            raise ValueError(f"container must be one of {list(CONTAINERS)}, got {self.container!r}")
        if self.video not in VIDEO_MODES:
            raise ValueError(f"video must be one of {list(VIDEO_MODES)}, got {self.video!r}")
        if self.video == "inter-frame" and self.container != "file":
            raise ValueError("inter-frame coding writes its own clip container; use container 'file' "
                             "(every key frame exports as a standalone .jb2)")
        if not 1 <= int(self.key_interval) <= 0xFFFF:
            raise ValueError(f"key_interval must be 1..65535, got {self.key_interval!r}")


def digest(bitmap: np.ndarray) -> str:
    """Fingerprint of a coded map, carried in the bitstream's params for the round-trip check."""
    bitmap = np.ascontiguousarray(bitmap, np.uint8)
    return hashlib.sha256(np.packbits(bitmap, axis=-1).tobytes() + repr(bitmap.shape).encode()).hexdigest()[:32]


def coded_size(h: int, w: int, factor: int) -> Tuple[int, int]:
    return -(-h // factor), -(-w // factor)


def encode(maps: np.ndarray, coding: EdgeCoding = EdgeCoding(), fps: float = 30.0,
           progress: Optional[Callable[[int, int], None]] = None) -> Bitstream:
    """``[T,H,W]`` 0/1 edge maps -> ``Bitstream("jbig2")`` (one JBIG2 file per frame) or, with
    ``coding.video == "inter-frame"``, ``Bitstream("jbig2-clip")`` (one clip)."""
    maps = np.asarray(maps)
    if maps.ndim == 2:
        maps = maps[None]
    t, h, w = maps.shape
    if h * w > jbig2.MAX_PIXELS:
        raise ValueError(f"{w}x{h} is larger than JBIG2 coding here allows ({jbig2.MAX_PIXELS} pixels per "
                         f"frame); downscale it first")
    coded = edge_rate.prepare(maps, coding.thinning, coding.factor, coding.reduce_method)
    opts = dict(auto=True) if coding.template is None else dict(template=coding.template, tpgdon=coding.tpgdon)
    if coding.video == "inter-frame":
        clip = jbig2_video.encode_clip(coded, coding.key_interval, intra=opts, progress=progress)
        payload = (clip,)
        chosen = [dict(kind=jbig2_video.KIND_NAMES[r.kind], dx=r.dx, dy=r.dy, bytes=r.nbytes)
                  for r in jbig2_video.describe_clip(clip)["records"]]
    else:
        payload, chosen = _per_frame(coded, CONTAINERS[coding.container], opts, progress)
    return Bitstream(CODECS[coding.video], tuple(payload), (t, h, w, 1), fps, params=dict(
        container=coding.container, resolution=coding.factor, reduce_method=coding.reduce_method,
        thinning=bool(coding.thinning), coded_size=(int(coded.shape[1]), int(coded.shape[2])), frames=chosen,
        video=coding.video, key_interval=int(coding.key_interval),
        coded_density=round(float(np.mean(coded != 0)), 5), digests=[digest(f) for f in coded]))


def _per_frame(coded, embedded, opts, progress):
    """One JBIG2 file per frame: ``(payloads, per-frame coding choices)``."""
    t = coded.shape[0]
    payload, chosen = [], []
    for i, frame in enumerate(coded):
        blob = jbig2.encode(frame, embedded=embedded, **opts)
        info = jbig2.describe(blob, embedded=embedded)
        chosen.append(dict(template=info["template"], tpgdon=info["tpgdon"], at=info["at"]))
        payload.append(blob)
        if progress is not None:
            progress(i + 1, t)
    return payload, chosen


def decode(stream: Bitstream, progress: Optional[Callable[[int, int], None]] = None):
    """``Bitstream("jbig2")`` -> ``(maps [T,H,W] uint8, coded [T,h,w] uint8, exact)``.

    ``exact`` is True when every frame decodes bit-exactly to the map the sender coded, False on a
    mismatch, None when the stream carries no digests. The declared sizes bound every allocation:
    each frame's decoder may make no page larger than the declared coded size. Raises
    :class:`EdgeStreamError` naming the frame at fault."""
    if stream.codec not in CODECS.values():
        raise EdgeStreamError(f"this is a {stream.codec!r} stream, not JBIG2")
    t, h, w, _ = stream.shape
    clip = stream.codec == CODECS["inter-frame"]
    if len(stream.payload) != (1 if clip else t):
        raise EdgeStreamError(f"{len(stream.payload)} payloads for {t} frames; JBIG2 streams carry one file per "
                              f"frame, JBIG2 clips one clip")
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
    if clip:
        coded_maps = _decode_clip(stream.payload[0], t, ch, cw)
        if progress is not None:
            progress(t, t)
    else:
        coded_maps = _decode_files(stream.payload, CONTAINERS[container], ch, cw, progress)
    out = edge_rate.upscale(coded_maps, factor, (h, w))
    if exact:
        exact = all(digest(c) == d for c, d in zip(coded_maps, digests))
    return out, coded_maps, exact


def _decode_clip(blob, t, ch, cw):
    """An inter-frame clip of ``t`` frames of ``cw x ch`` -> ``[t,ch,cw]`` uint8; any damage raises."""
    limits = jbig2_video.clip_limits(cw, ch, t, max_input=max(len(blob), 1))
    try:
        maps = jbig2_video.decode_clip(blob, on_error="raise", limits=limits).frames
    except jbig2.JBIG2Error as e:
        raise EdgeStreamError(f"not a readable JBIG2 clip of the declared {t} frame(s) of {cw}x{ch} ({e})") from None
    if maps.shape != (t, ch, cw):
        raise EdgeStreamError(f"the clip holds {maps.shape[0]} frame(s) of {maps.shape[2]}x{maps.shape[1]} but the "
                              f"bitstream declares {t} of {cw}x{ch}")
    return maps


def _decode_files(payload, embedded, ch, cw, progress):
    """One JBIG2 file per frame -> ``[t,ch,cw]`` uint8, each file bounded by the declared size."""
    t = len(payload)
    coded_maps = np.empty((t, ch, cw), np.uint8)
    for i, blob in enumerate(payload):
        limits = jbig2.Limits.for_page(cw, ch, max_input=max(len(blob), 1))
        try:
            coded = jbig2.decode(blob, embedded=embedded, limits=limits)
        except jbig2.JBIG2Error as e:
            raise EdgeStreamError(f"frame {i} is not a readable JBIG2 stream of the declared {cw}x{ch} size ({e})") \
                from None
        if coded.shape != (ch, cw):
            raise EdgeStreamError(f"frame {i} decodes to {coded.shape[1]}x{coded.shape[0]} but the bitstream "
                                  f"declares {cw}x{ch}")
        coded_maps[i] = coded
        if progress is not None:
            progress(i + 1, t)
    return coded_maps
