"""Metadata kinds: what a sender can transmit beside the base layer, and how.

Each kind names its map's channel count, the producer that makes the map at the sender and the
lossless coder that carries it (encode -> ``Bitstream``, decode -> the map the receiver sees).
Receivers list the kinds they accept (``metadata_kinds``); the link layer (``models/link.py``) sends
any registered kind, so a new kind is one entry here plus its module.

    edges: Canny edges of the HR frames (thresholds or a target density), JBIG2 per frame
    depth: a depth map given to the sender (near = 1), n-bit, PNG or JBIG2 bit-planes
"""
from dataclasses import dataclass
from typing import Callable, Dict

import numpy as np

from . import canny, depth, edges


@dataclass(frozen=True)
class Kind:
    """name; channels of the map at the receiver; ``produce(source, **params) -> ([T,H,W], info)``
    (the sender's map and what it chose); ``encode(maps, coding, fps) -> Bitstream``;
    ``decode(stream) -> ([T,H,W] float32 0..1, exact)``, ``exact`` True / False when the stream can
    prove its decode bit-exact (None when it carries no proof); ``coding`` the dataclass of the
    coder's settings; ``doc`` one line for users."""
    name: str
    channels: int
    produce: Callable
    encode: Callable
    decode: Callable
    coding: type
    doc: str


def _produce_edges(frames, density=None, low=100.0, high=200.0, dilate=0):
    """``[T,H,W,C]`` HR frames -> ``[T,H,W]`` uint8 Canny edges, by a target density or thresholds."""
    if density is not None:
        e, low, high, _ = canny.canny_for_density(frames, density, dilate=dilate)
    else:
        e = canny.canny_edges(frames, low, high, dilate)
    return e, dict(low=round(float(low), 2), high=round(float(high), 2), density=round(float(e.mean()), 5))


def _decode_edges(stream, progress=None):
    maps, _, exact = edges.decode(stream, progress)
    return maps.astype(np.float32), exact


KINDS: Dict[str, Kind] = {
    "edges": Kind("edges", 1, _produce_edges, edges.encode, _decode_edges, edges.EdgeCoding,
                  "Canny edges of the HR frames (1 = edge), coded losslessly with JBIG2"),
    "depth": Kind("depth", 1, lambda depth_map, **_: (depth.normalise(depth_map), {}), depth.encode,
                  lambda stream, progress=None: (depth.decode(stream, progress), None), depth.DepthCoding, "a depth map given to the sender (near = 1), n-bit, coded losslessly "
                  "(PNG or JBIG2 bit-planes)"),
}


def kind(name: str) -> Kind:
    if name not in KINDS:
        raise ValueError(f"unknown metadata kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]
