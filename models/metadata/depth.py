"""Depth metadata: a depth map given to the sender (near = 1, as ComfyUI's depth estimators output
it), quantised to n bits and coded losslessly, so the receiver gets exactly the quantised map and
the rate is the real bytes.

Two coders, chosen per stream:

- ``png``: one greyscale PNG per frame, 8-bit for n <= 8 and 16-bit otherwise, holding the n-bit
  codes themselves (zlib at level 9);
- ``jbig2``: the n bit-planes of the Gray-coded values as the pages of one multi-page JBIG2 file
  per frame (Gray code keeps neighbouring depths one bit apart, so each plane is a smooth bi-level
  map that JBIG2's context model codes well). On smooth, clean depth the planes come out smaller
  (a blurred photo at 8 bits: 28 KB against PNG's 36 KB); on noisy depth the low planes are noise
  and PNG's predictors win. Both are exact; compare them on your maps.

Maps are ``[T,H,W]`` float32 0..1.
"""
import io
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from PIL import Image

from ..codec import jbig2
from ..codec.bitstream import Bitstream

CODERS = ("png", "jbig2")
CODEC = "depth"


class DepthStreamError(ValueError):
    """A depth bitstream that does not decode to what it declares; the message names the frame."""


@dataclass(frozen=True)
class DepthCoding:
    """bits: quantisation depth n (1..16); coder: "png" or "jbig2" (see the module doc)."""
    bits: int = 8
    coder: str = "png"

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 16:
            raise ValueError(f"bits must be a whole number 1..16, got {self.bits!r}")
        if self.coder not in CODERS:
            raise ValueError(f"coder must be one of {CODERS}, got {self.coder!r}")


def normalise(depth) -> np.ndarray:
    """The sender's producer: a depth map ``[T,H,W]`` or ``[T,H,W,C]`` float 0..1 (C = 1 or 3, the
    channels averaged, as depth nodes output grey RGB) -> ``[T,H,W]`` float32 0..1."""
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim == 4:
        if d.shape[-1] not in (1, 3):
            raise ValueError(f"a depth map has 1 or 3 channels, got {d.shape[-1]}")
        d = d.mean(axis=-1)
    if d.ndim == 2:
        d = d[None]
    if d.ndim != 3 or min(d.shape) < 1:
        raise ValueError(f"a depth map is [T,H,W] or [T,H,W,C], got shape {np.shape(depth)}")
    if not np.isfinite(d).all() or d.min() < 0 or d.max() > 1:
        raise ValueError("depth values must be finite and lie in 0..1 (near = 1)")
    return np.ascontiguousarray(d)


def quantise(maps: np.ndarray, bits: int) -> np.ndarray:
    """``[T,H,W]`` float 0..1 -> integer codes ``round(d (2^n - 1))`` (uint16)."""
    return np.rint(np.clip(maps, 0, 1) * (2 ** bits - 1)).astype(np.uint16)


def dequantise(codes: np.ndarray, bits: int) -> np.ndarray:
    return (codes.astype(np.float32) / np.float32(2 ** bits - 1)).astype(np.float32)


def _gray(codes):
    return codes ^ (codes >> 1)


def _ungray(g, bits):
    out = g.copy()
    shift = 1
    while shift < bits:
        out ^= out >> shift
        shift <<= 1
    return out


def _png(codes: np.ndarray, bits: int) -> bytes:
    im = Image.fromarray(codes.astype(np.uint8), "L") if bits <= 8 else Image.fromarray(codes.astype(np.uint16))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def _planes(codes: np.ndarray, bits: int) -> bytes:
    g = _gray(codes)
    return jbig2.encode_pages([((g >> b) & 1).astype(np.uint8) for b in range(bits - 1, -1, -1)],
                              template=0, tpgdon=True)


def encode(maps: np.ndarray, coding: DepthCoding = DepthCoding(), fps: float = 30.0,
           progress: Optional[Callable[[int, int], None]] = None) -> Bitstream:
    """``[T,H,W]`` float 0..1 -> ``Bitstream("depth")``, one PNG or multi-page JBIG2 file per frame."""
    maps = normalise(maps)
    codes = quantise(maps, coding.bits)
    t, h, w = codes.shape
    payload = []
    for i, c in enumerate(codes):
        payload.append(_png(c, coding.bits) if coding.coder == "png" else _planes(c, coding.bits))
        if progress is not None:
            progress(i + 1, t)
    return Bitstream(CODEC, tuple(payload), (t, h, w, 1), fps, params=dict(bits=coding.bits, coder=coding.coder))


def _read_png(blob: bytes, bits: int, h: int, w: int, i: int) -> np.ndarray:
    try:
        im = Image.open(io.BytesIO(blob), formats=("PNG",))
    except Exception as e:
        raise DepthStreamError(f"frame {i} is not a PNG file ({type(e).__name__}: {e})") from None
    with im:
        want = "L" if bits <= 8 else ("I;16", "I;16B", "I")
        if im.size != (w, h) or (im.mode != want if bits <= 8 else im.mode not in want):
            raise DepthStreamError(f"frame {i} is a {im.size[0]}x{im.size[1]} {im.mode} PNG but the bitstream "
                                   f"declares {w}x{h} at {bits} bits")
        try:
            codes = np.asarray(im).astype(np.uint16)
        except Exception as e:
            raise DepthStreamError(f"frame {i} is a corrupt PNG ({e})") from None
    if codes.max(initial=0) >= 2 ** bits:
        raise DepthStreamError(f"frame {i} holds values above {2 ** bits - 1}, the {bits}-bit maximum")
    return codes


def _read_planes(blob: bytes, bits: int, h: int, w: int, i: int) -> np.ndarray:
    limits = jbig2.Limits.for_page(w, h, max_input=max(len(blob), 1), pages=bits)
    try:
        pages = jbig2.decode_pages(blob, limits=limits)
    except jbig2.JBIG2Error as e:
        raise DepthStreamError(f"frame {i} is not a readable {bits}-page JBIG2 file of {w}x{h} ({e})") from None
    if len(pages) != bits or any(p.shape != (h, w) for p in pages):
        raise DepthStreamError(f"frame {i} holds {len(pages)} page(s) of {pages[0].shape[1]}x{pages[0].shape[0]}, "
                               f"the bitstream declares {bits} of {w}x{h}")
    g = np.zeros((h, w), np.uint16)
    for p in pages:
        g = (g << 1) | p
    return _ungray(g, bits)


def decode(stream: Bitstream, progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """``Bitstream("depth")`` -> ``[T,H,W]`` float32 0..1, exactly the quantised map the sender coded."""
    if stream.codec != CODEC:
        raise DepthStreamError(f"this is a {stream.codec!r} stream, not depth")
    t, h, w, _ = stream.shape
    try:
        coding = DepthCoding(stream.params.get("bits", 8), stream.params.get("coder", "png"))
    except ValueError as e:
        raise DepthStreamError(f"the bitstream's coding record is invalid ({e})") from None
    if len(stream.payload) != t:
        raise DepthStreamError(f"{len(stream.payload)} payloads for {t} frames; depth streams carry one file per frame")
    out = np.empty((t, h, w), np.float32)
    read = _read_png if coding.coder == "png" else _read_planes
    for i, blob in enumerate(stream.payload):
        out[i] = dequantise(read(blob, coding.bits, h, w, i), coding.bits)
        if progress is not None:
            progress(i + 1, t)
    return out
