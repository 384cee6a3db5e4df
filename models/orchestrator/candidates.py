"""What the sender can choose for a segment: a base-layer quality and one metadata option.

An option is one way to send side information beside the base layer:

- ``none``: pixel-only;
- ``edges``: Canny edges of the HR at a target density, optionally thinned and/or coded at 1/f
  resolution (``models/metadata/edge_rate.py``), JBIG2 with its parameter search, a file per frame
  or (``clip``) one inter-frame clip per segment (``models/codec/jbig2_video.py``);
- ``depth``: the sender's depth map quantised to n bits and coded losslessly (PNG / JBIG2 planes),
  only when a depth map is given and the receiver takes depth.

``send(option, hr, depth)`` makes the option's map as the receiver decodes it and its real bits
(for edges, with the verification gate's signature, 32 bytes a frame: ``gate.sign``); the choice
itself travels as one byte per segment (the option's index in the candidate list), which
:data:`SIGNAL_BITS` counts into every orchestrated rate.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .. import link
from ..metadata.depth import DepthCoding
from ..metadata.edges import EdgeCoding
from . import gate

SIGNAL_BITS = 8          # one byte per segment names the chosen option (up to 256 options)
KINDS = ("none", "edges", "depth")


@dataclass(frozen=True)
class Option:
    """One metadata option. ``kind`` none / edges / depth; edges: ``density`` (Canny target, share of
    HR pixels), ``thin``, ``factor`` (coding resolution 1/f), ``clip`` (one inter-frame JBIG2 clip
    per segment instead of a file per frame); depth: ``bits``, ``coder``."""
    kind: str = "none"
    density: float = 0.0
    thin: bool = True
    factor: int = 1
    bits: int = 8
    coder: str = "png"
    clip: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "edges" and not 0 < self.density < 1:
            raise ValueError(f"edges option: density must be in (0, 1), got {self.density!r}")
        if self.kind == "edges" and self.factor not in (1, 2, 4):
            raise ValueError(f"edges option: factor must be 1, 2 or 4, got {self.factor!r}")
        if self.kind == "depth":
            DepthCoding(self.bits, self.coder)   # its own checks

    @property
    def label(self) -> str:
        if self.kind == "none":
            return "none"
        if self.kind == "depth":
            return f"depth{self.bits}-{self.coder}"
        return (f"edges-d{self.density:g}{'-thin' if self.thin else ''}"
                f"{'' if self.factor == 1 else f'-1/{self.factor}'}{'-clip' if self.clip else ''}")

    @property
    def metadata_kind(self) -> Optional[str]:
        return None if self.kind == "none" else self.kind


NONE = Option()
# the main job's efficient edge settings (thinned, 1/2 resolution) plus full-resolution sharp edges
# that text and line art want
DEFAULT_OPTIONS = (NONE,) + tuple(Option("edges", d, True, 2) for d in (0.01, 0.02, 0.04, 0.08)) + (
    Option("edges", 0.08, True, 1),)
DEFAULT_QUALITIES = (10, 20, 30, 45, 60, 80)


@dataclass(frozen=True)
class Candidate:
    """A segment's full choice: base-layer JPEG ``quality`` and metadata ``option``."""
    quality: int
    option: Option

    @property
    def label(self) -> str:
        return f"q{self.quality}/{self.option.label}"


def grid(qualities: Sequence[int] = DEFAULT_QUALITIES, options: Sequence[Option] = DEFAULT_OPTIONS,
         accepts: Sequence[str] = ("edges",), has_depth: bool = False) -> Tuple[Candidate, ...]:
    """Every (quality, option) the receiver can use: options whose kind the receiver does not take
    (``accepts``, its ``metadata_kinds``) or whose source is missing (depth without a depth map) are
    left out, so no candidate is a pixel-only run billed for metadata."""
    if not qualities:
        raise ValueError("candidates: give at least one base-layer quality")
    qs = sorted({int(q) for q in qualities})
    if qs[0] < 1 or qs[-1] > 100:
        raise ValueError(f"candidates: JPEG qualities are 1..100, got {qs}")
    usable = [o for o in dict.fromkeys(options) if o.kind == "none" or (
        o.kind in accepts and (o.kind != "depth" or has_depth))]
    if not usable:
        raise ValueError("candidates: no option is usable with this receiver (include Option('none'))")
    if len(usable) > 256:
        raise ValueError(f"candidates: at most 256 options (one signalling byte), got {len(usable)}")
    return tuple(Candidate(q, o) for q in qs for o in usable)


def send(option: Option, hr: np.ndarray, depth: Optional[np.ndarray] = None
         ) -> Tuple[Optional[Dict[str, np.ndarray]], int, dict]:
    """Send one option's metadata for HR frames ``[T,H,W,3]``: -> ({kind: decoded map [T,H,W]} or
    None, bits, producer info). Depth needs ``depth`` ``[T,H,W]`` 0..1 (near = 1)."""
    if option.kind == "none":
        return None, 0, {}
    if option.kind == "edges":
        sent = link.send_metadata("edges", hr, produce=dict(density=option.density),
                                  coding=EdgeCoding(thinning=option.thin, factor=option.factor,
                                                    video="inter-frame" if option.clip else "per-frame"))
    else:
        if depth is None:
            raise ValueError(f"option {option.label}: needs the segment's depth map")
        sent = link.send_metadata("depth", depth, coding=DepthCoding(option.bits, option.coder))
    bits = sent.bits
    if option.kind == "edges":   # the gate signature is made from the base layer, at any quality this long
        bits += 8 * gate.signature_nbytes(sent.received)
    return {option.kind: sent.received}, bits, dict(sent.info)
