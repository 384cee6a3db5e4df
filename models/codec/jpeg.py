"""JPEG base layer: exact baseline JPEG bytes per frame (libjpeg via Pillow) and their decode."""
import io

import numpy as np
from PIL import Image

from .bitstream import Bitstream

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """``[...]`` float 0..1 -> uint8 with round-half-up (the 8-bit sample a codec actually sees)."""
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def jpeg_encode(frames: np.ndarray, quality: int = 75, subsampling: str = "4:2:0", fps: float = 30.0) -> Bitstream:
    """``[T,H,W,3]`` float 0..1 -> Bitstream("jpeg"), one complete JFIF file per frame."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    if subsampling not in SUBSAMPLING:
        raise ValueError(f"subsampling must be one of {list(SUBSAMPLING)}, got {subsampling!r}")
    t, h, w, c = frames.shape
    payload = []
    for frame in to_uint8(frames):
        buf = io.BytesIO()
        Image.fromarray(frame if c == 3 else frame[..., 0]).save(
            buf, format="JPEG", quality=int(quality), subsampling=SUBSAMPLING[subsampling], optimize=False)
        payload.append(buf.getvalue())
    return Bitstream("jpeg", tuple(payload), (t, h, w, c), fps,
                     {"quality": int(quality), "subsampling": subsampling})


def jpeg_decode(stream: Bitstream) -> np.ndarray:
    """Bitstream("jpeg") -> ``[T,H,W,C]`` float32 0..1."""
    if stream.codec != "jpeg":
        raise ValueError(f"not a JPEG bitstream (codec {stream.codec!r})")
    frames = []
    for i, data in enumerate(stream.payload):
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except Exception as exc:
            raise ValueError(f"JPEG frame {i} is corrupt: {exc}") from None
        arr = np.asarray(img, dtype=np.uint8)
        frames.append(arr[..., None] if arr.ndim == 2 else arr)
    return np.stack(frames).astype(np.float32) / 255.0
