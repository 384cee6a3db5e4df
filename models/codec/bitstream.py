"""The one container for every compressed stream the sender produces.

Any codec (JPEG, H.264/H.265/AV1, bit-depth VQ, JBIG2, ...) returns a ``Bitstream``; the bitrate
accounting only ever reads ``len(bytes)`` of the real payload, never an estimate.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

BITSTREAM_TYPE = "METAVSR_BITSTREAM"  # ComfyUI socket type name


@dataclass(frozen=True)
class Bitstream:
    """A compressed stream.

    codec:    short codec id, e.g. ``"jpeg"``, ``"h264"``, ``"hevc"``, ``"av1"``, ``"vq4"``, ``"jbig2"``.
    payload:  the exact bytes, one entry per frame or a single entry for a whole clip.
    shape:    decoded shape ``(T, H, W, C)`` (C = 1 for bi-level maps).
    fps:      frames per second used for kbps.
    params:   codec settings that produced it (quality, crf, codebook size, ...), for reports only.
    """
    codec: str
    payload: Tuple[bytes, ...]
    shape: Tuple[int, int, int, int]
    fps: float = 30.0
    params: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.payload or not all(isinstance(p, (bytes, bytearray)) for p in self.payload):
            raise ValueError("Bitstream.payload must be a non-empty sequence of bytes objects")
        if len(self.shape) != 4 or min(self.shape) <= 0:
            raise ValueError(f"Bitstream.shape must be (T,H,W,C) with positive sizes, got {self.shape}")
        if not self.fps > 0:
            raise ValueError(f"Bitstream.fps must be > 0, got {self.fps}")
        object.__setattr__(self, "payload", tuple(bytes(p) for p in self.payload))

    @property
    def frames(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(len(p) for p in self.payload)

    @property
    def nbits(self) -> int:
        return 8 * self.nbytes

    def __repr__(self):  # ComfyUI may print inputs; never dump the bytes
        return (f"Bitstream(codec={self.codec!r}, {self.nbytes} bytes, shape={self.shape}, "
                f"fps={self.fps:g})")


def rate_table(streams: Sequence[Bitstream], hr_size: Optional[Tuple[int, int]] = None) -> List[dict]:
    """Per-stream and total rate: bits, bytes, bpp (bits per *HR* pixel, all frames) and kbps.

    hr_size: ``(H, W)`` of the original HR frames; default the largest decoded size among streams.
    The total row's frame count is the longest stream's; kbps uses each stream's own fps.
    """
    if not streams:
        raise ValueError("rate_table needs at least one bitstream")
    if hr_size is None:
        hr_size = max(((s.shape[1], s.shape[2]) for s in streams), key=lambda hw: hw[0] * hw[1])
    hr_pixels = hr_size[0] * hr_size[1]
    rows = []
    for s in streams:
        seconds = s.frames / s.fps
        rows.append(dict(codec=s.codec, frames=s.frames, bytes=s.nbytes, bits=s.nbits,
                         bpp=s.nbits / (hr_pixels * s.frames), kbps=s.nbits / seconds / 1000.0))
    frames = max(r["frames"] for r in rows)
    bits = sum(r["bits"] for r in rows)
    rows.append(dict(codec="total", frames=frames, bytes=sum(r["bytes"] for r in rows), bits=bits,
                     bpp=bits / (hr_pixels * frames), kbps=sum(r["kbps"] for r in rows)))
    return rows
