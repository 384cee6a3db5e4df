"""Video base layer through PyAV (FFmpeg): H.264 (libx264), H.265 (libx265), AV1 (SVT-AV1).

The stream is the codec's elementary bitstream (Annex-B for H.264/H.265, IVF for AV1), so its size
is what a transmitter sends, with no MP4 container overhead. Frames go through yuv420p with
FFmpeg's default BT.601 conversion both ways; odd sizes are edge-padded to even for 4:2:0 and
cropped back after decoding.
"""
import io
import os

import av
import numpy as np

from .bitstream import Bitstream
from .jpeg import to_uint8

# our codec id -> (FFmpeg encoder, elementary-stream format, QP/CRF maximum)
CODECS = {"h264": ("libx264", "h264", 51), "hevc": ("libx265", "hevc", 51), "av1": ("libsvtav1", "ivf", 63)}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_SVT_PRESET = dict(zip(PRESETS, (12, 11, 10, 9, 8, 7, 5, 4, 2)))
os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config per encode otherwise


def _options(codec: str, rate_control: str, value: int, preset: str) -> dict:
    if codec == "h264":
        return {rate_control: str(value), "preset": preset}
    if codec == "hevc":
        return {"preset": preset, "x265-params": f"{rate_control}={value}:log-level=error"}
    # SVT-AV1: ``qp`` switches adaptive quantization off, i.e. constant QP
    return {rate_control: str(value), "preset": str(_SVT_PRESET[preset])}


def video_encode(frames: np.ndarray, codec: str = "h264", rate_control: str = "crf", value: int = 28,
                 fps: float = 30.0, preset: str = "medium") -> Bitstream:
    """``[T,H,W,3]`` float 0..1 -> Bitstream(codec) holding the whole clip's elementary stream."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {list(CODECS)}, got {codec!r}")
    encoder, fmt, vmax = CODECS[codec]
    if rate_control not in ("crf", "qp"):
        raise ValueError(f"rate_control must be 'crf' or 'qp', got {rate_control!r}")
    if not 0 <= int(value) <= vmax:
        raise ValueError(f"{rate_control} for {codec} must be 0..{vmax}, got {value}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    t, h, w, _ = frames.shape
    u8 = to_uint8(frames)
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        u8 = np.pad(u8, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    from fractions import Fraction
    rate = Fraction(fps).limit_denominator(1001)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
        stream.options = _options(codec, rate_control, int(value), preset)
        for i, frame in enumerate(u8):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return Bitstream(codec, (buf.getvalue(),), (t, h, w, 3), float(fps),
                     {"encoder": encoder, "rate_control": rate_control, "value": int(value), "preset": preset})


def video_decode(stream: Bitstream, max_frames: int = 100000) -> np.ndarray:
    """Bitstream from ``video_encode`` -> ``[T,H,W,3]`` float32 0..1 (cropped to the coded size)."""
    if stream.codec not in CODECS:
        raise ValueError(f"not a video bitstream (codec {stream.codec!r})")
    _, fmt, _ = CODECS[stream.codec]
    t, h, w, _ = stream.shape
    frames = []
    try:
        with av.open(io.BytesIO(b"".join(stream.payload)), mode="r", format=fmt) as inp:
            for frame in inp.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24")[:h, :w])
                if len(frames) > max_frames:
                    raise ValueError(f"video stream decodes to more than {max_frames} frames")
    except av.error.FFmpegError as exc:
        raise ValueError(f"corrupt {stream.codec} stream: {exc}") from None
    if len(frames) != t:
        raise ValueError(f"{stream.codec} stream decoded to {len(frames)} frames, expected {t}: corrupt or truncated")
    return np.stack(frames).astype(np.float32) / 255.0


def kbps(stream: Bitstream) -> float:
    return stream.nbits * stream.fps / stream.frames / 1000.0
