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


_MODES = {1: "L", 3: "RGB"}  # what jpeg_encode writes, by channel count


def jpeg_decode(stream: Bitstream) -> np.ndarray:
    """Bitstream("jpeg") -> ``[T,H,W,C]`` float32 0..1, exactly the declared ``stream.shape``.

    Each payload must be a JPEG (not PNG/GIF/... bytes) of the declared size and colour type
    (C = 3: RGB/YCbCr, C = 1: greyscale; CMYK is refused); the header is checked before the pixels
    are decoded, so a frame that claims a huge size costs nothing.
    """
    if stream.codec != "jpeg":
        raise ValueError(f"not a JPEG bitstream (codec {stream.codec!r})")
    t, h, w, c = stream.shape
    if c not in _MODES:
        raise ValueError(f"JPEG bitstream declares {c} channels; JPEG base layers have 1 or 3")
    if len(stream.payload) != t:
        raise ValueError(f"JPEG bitstream has {len(stream.payload)} payloads for {t} declared frames; "
                         f"it carries one JPEG file per frame")
    out = np.empty((t, h, w, c), np.float32)
    for i, data in enumerate(stream.payload):
        try:
            img = Image.open(io.BytesIO(data), formats=("JPEG",))
        except Exception as exc:
            raise ValueError(f"JPEG frame {i} is corrupt or not a JPEG file ({type(exc).__name__}: {exc})") from None
        with img:
            if img.size != (w, h):
                raise ValueError(f"JPEG frame {i} is {img.size[0]}x{img.size[1]} but the bitstream declares "
                                 f"{w}x{h}: corrupt or mixed-up stream")
            if img.mode != _MODES[c]:
                raise ValueError(f"JPEG frame {i} is {img.mode} but the bitstream declares {c} channel(s) "
                                 f"({_MODES[c]}); MetaVSR JPEG streams are RGB or greyscale")
            try:
                img.load()
            except Exception as exc:
                raise ValueError(f"JPEG frame {i} is corrupt: {exc}") from None
            arr = np.asarray(img, dtype=np.uint8)
        out[i] = (arr[..., None] if arr.ndim == 2 else arr) / np.float32(255.0)
    return out
