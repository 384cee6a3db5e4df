"""Video base layer through PyAV (FFmpeg): H.264 (libx264), H.265 (libx265), AV1 (SVT-AV1).

The stream is the codec's elementary bitstream (Annex-B for H.264/H.265, IVF for AV1), so its size
is what a transmitter sends, with no MP4 container overhead. Frames go through yuv420p with
FFmpeg's default BT.601 conversion both ways.

Frames are edge-padded to a *coded size* the encoder is known to handle and cropped back after
decoding; the coded size is recorded in ``Bitstream.params["coded_size"]`` and checked on decode.
Limits measured with the PyAV 18.1 wheel (x264 core 165, x265 4.2 build 216, libSvtAv1Enc.so.4.1), each
probe in a subprocess, memory errors checked with glibc's checking allocator and valgrind:

* all codecs: 4:2:0 needs even sizes, so odd sizes are padded by one.
* libx265 refuses widths or heights below 16 (``ArgumentError``).
* libx265 corrupts the heap for widths 16..48 (any height) when CU-tree runs (crf, 2+ frames, every
  preset; qp and single frames are spared): a lookahead buffer of ``ceil(w/2 / 8)`` ints, fewer
  than 4 here, is overrun by ``Lookahead::cuTree`` (valgrind at w=40: 16 bytes past a 12-byte
  block). glibc notices only for some heap layouts, then aborts the process (``free(): invalid next
  size``, seen for 36..48). Widths 50 up are clean; we pad to 56, x265 codes 8-px CUs anyway.
* SVT-AV1 refuses sizes below 4. When a side is at most 24 its init makes a zero-size allocation
  and reads past it (valgrind, and a crash under the checking allocator; the plain one hides it
  for widths); when the other side is above 64 the encoder also never returns (any preset, even
  1 frame: 128x8, 4096x16, 8x4096). A short side of 26 ends both. We pad the width always, and
  the height when the width is above 64, to 32 (SVT codes whole 8x8 blocks anyway), and every
  side to at least 8.
* largest sizes: x264 16384x16384, x265 32768x32768, SVT-AV1 16384 wide x 8704 high.
"""
import io
import math
import os
from fractions import Fraction

import av
import numpy as np

from .bitstream import Bitstream
from .jpeg import to_uint8

# our codec id -> (FFmpeg encoder, elementary-stream format, QP/CRF maximum)
CODECS = {"h264": ("libx264", "h264", 51), "hevc": ("libx265", "hevc", 51), "av1": ("libsvtav1", "ivf", 63)}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_SVT_PRESET = dict(zip(PRESETS, (12, 11, 10, 9, 8, 7, 5, 4, 2)))
os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config per encode otherwise

MAX_DECODE_BYTES = 16 << 30  # refuse to decode a declared T*H*W*3 float32 clip larger than this
# largest coded (height, width) each encoder accepts (measured; beyond it they fail with raw errors)
_MAX_CODED = {"h264": (16384, 16384), "hevc": (32768, 32768), "av1": (8704, 16384)}
# lowest value each codec honours: FFmpeg's libsvtav1 wrapper treats crf=0 / qp=0 as "unset" and
# silently encodes at SVT's default (CRF 35), so 0 would report a rate for the wrong setting
MIN_VALUE = {"h264": 0, "hevc": 0, "av1": 1}
_FPS_MIN = 0.001  # slower than this the 1001-denominator time base rounds to 0
_FPS_MAX = 1000.0  # the node's range; x265 refuses some small sizes from about 65535 fps up
_SVT_FPS_MAX = Fraction(240)  # SVT-AV1 refuses a frame rate above 240


def _check_params(codec: str, rate_control: str, value, fps, preset: str, progress) -> int:
    """Validate the scalar settings up front so no raw ``av.error`` reaches the caller; -> int value."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {list(CODECS)}, got {codec!r}")
    if rate_control not in ("crf", "qp"):
        raise ValueError(f"rate_control must be 'crf' or 'qp', got {rate_control!r}")
    vmin, vmax = MIN_VALUE[codec], CODECS[codec][2]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value != int(value) or not vmin <= int(value) <= vmax:
        raise ValueError(f"value ({rate_control}) for {codec} must be an integer {vmin}..{vmax}, got {value!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) \
            or not math.isfinite(fps) or not _FPS_MIN <= fps <= _FPS_MAX:
        raise ValueError(f"fps must be a number in {_FPS_MIN:g}..{_FPS_MAX:g}, got {fps!r}")
    _check_progress(progress)
    return int(value)


def _check_progress(progress) -> None:
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be None or a callable progress(done, total), got {type(progress).__name__}")


def _check_frames(frames) -> tuple:
    """``frames`` must be ``[T,H,W,3]`` with T, H, W >= 1; -> (T, H, W)."""
    shape = getattr(frames, "shape", None)
    if not isinstance(frames, np.ndarray) or len(shape) != 4 or shape[3] != 3 or min(shape) < 1:
        raise ValueError(f"frames must be a [T,H,W,3] float array with T, H, W >= 1, got shape {shape}")
    return shape[:3]


def coded_size(codec: str, h: int, w: int) -> tuple:
    """Declared ``(h, w)`` -> the ``(height, width)`` the encoder is given (see the module limits)."""
    ch, cw = h + h % 2, w + w % 2
    if codec == "hevc":
        ch, cw = max(ch, 16), max(cw, 56)
    elif codec == "av1":
        cw = max(cw, 32)
        ch = max(ch, 32 if cw > 64 else 8)
    return ch, cw


def _check_coded(codec: str, h: int, w: int, ch: int, cw: int) -> None:
    mh, mw = _MAX_CODED[codec]
    if ch > mh or cw > mw:
        raise ValueError(f"frames of {h}x{w} (coded {ch}x{cw}) exceed what {CODECS[codec][0]} accepts "
                         f"({mh} high x {mw} wide): resize the frames or pick another codec")


def _encoder_rate(codec: str, fps: float) -> tuple:
    """-> (container rate, rate told to the encoder).

    SVT-AV1 refuses > 240 fps. Rather than refuse, we tell SVT 240 and keep the true rate in the IVF
    time base and timestamps: the bytes are real and kbps uses our fps, so the rate stays honest;
    what changes is only SVT's fps-derived default keyframe interval (that of 240 fps), which is
    recorded as ``params["encoder_fps"]``."""
    rate = Fraction(fps).limit_denominator(1001)
    if codec == "av1" and rate > _SVT_FPS_MAX:
        return rate, _SVT_FPS_MAX
    return rate, rate


def _options(codec: str, rate_control: str, value: int, preset: str) -> dict:
    if codec == "h264":
        return {rate_control: str(value), "preset": preset}
    if codec == "hevc":
        return {"preset": preset, "x265-params": f"{rate_control}={value}:log-level=error"}
    # SVT-AV1: ``qp`` switches adaptive quantization off, i.e. constant QP
    return {rate_control: str(value), "preset": str(_SVT_PRESET[preset])}


def _pad(u8: np.ndarray, ch: int, cw: int) -> np.ndarray:
    """``[T,H,W,3]`` uint8 -> ``[T,ch,cw,3]``, replicating the last row/column (cheap to code)."""
    _, h, w, _ = u8.shape
    if (ch, cw) == (h, w):
        return u8
    return np.pad(u8, ((0, 0), (0, ch - h), (0, cw - w), (0, 0)), mode="edge")


def _close_quietly(container) -> None:
    """Close after a failure without letting a second error hide the first (e.g. a cancel)."""
    try:
        container.close()
    except Exception:  # noqa: BLE001 - the original exception is the one that matters
        pass


def _encode(u8: np.ndarray, codec: str, options: dict, rates: tuple, progress) -> bytes:
    """``[T,H,W,3]`` uint8 (already at the coded size) -> elementary stream bytes.

    progress(done, T) runs after each coded frame leaves the encoder: x264/x265/SVT buffer their
    whole lookahead and do most of the work while flushing, so counting input frames would leave
    the long part without a cancel point."""
    encoder, fmt, _ = CODECS[codec]
    t, ch, cw, _ = u8.shape
    rate, enc_rate = rates
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=fmt)
    try:
        stream = out.add_stream(encoder, rate=rate)
        stream.width, stream.height, stream.pix_fmt = cw, ch, "yuv420p"
        if enc_rate != rate:
            cc = stream.codec_context
            cc.framerate, cc.time_base, stream.time_base = enc_rate, 1 / rate, 1 / rate
        stream.options = options
        done = 0
        for i in range(t + 1):
            vf = None
            if i < t:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(u8[i]), format="rgb24")
                vf.pts = i
            for packet in stream.codec_context.encode_lazy(vf):
                packet.stream = stream
                out.mux(packet)
                done += 1
                if progress is not None:
                    progress(min(done, t), t)
    except av.error.FFmpegError as exc:
        _close_quietly(out)
        raise ValueError(f"{encoder} failed on {t} frames of {ch}x{cw}: {exc}; this setting is outside "
                         f"what was validated: try another preset or size") from None
    except BaseException:
        _close_quietly(out)
        raise
    out.close()
    return buf.getvalue()


def video_encode(frames: np.ndarray, codec: str = "h264", rate_control: str = "crf", value: int = 28,
                 fps: float = 30.0, preset: str = "medium", progress=None) -> Bitstream:
    """``[T,H,W,3]`` float 0..1 -> Bitstream(codec) holding the whole clip's elementary stream.

    progress: optional ``progress(done, total)``, called once per coded frame (total = T); an
    exception it raises (e.g. a cancel) propagates unchanged after the container is closed.
    params records ``coded_size`` = (height, width) actually coded, >= the declared (H, W).
    """
    value = _check_params(codec, rate_control, value, fps, preset, progress)
    t, h, w = _check_frames(frames)
    ch, cw = coded_size(codec, h, w)
    _check_coded(codec, h, w, ch, cw)
    rates = _encoder_rate(codec, float(fps))
    u8 = _pad(to_uint8(frames), ch, cw)
    data = _encode(u8, codec, _options(codec, rate_control, value, preset), rates, progress)
    params = {"encoder": CODECS[codec][0], "rate_control": rate_control, "value": value, "preset": preset,
              "coded_size": (ch, cw)}
    if rates[1] != rates[0]:
        params["encoder_fps"] = float(rates[1])
    return Bitstream(codec, (data,), (t, h, w, 3), float(fps), params)


def _coded_sizes(stream: Bitstream) -> set:
    """The decoded frame sizes ``{(height, width)}`` a stream of this declared shape may have."""
    _, h, w, _ = stream.shape
    # plain even padding (older versions, or a Bitstream built by hand) or today's padding rule
    allowed = {(h + h % 2, w + w % 2), coded_size(stream.codec, h, w)}
    rec = stream.params.get("coded_size")
    if rec is None:
        return allowed
    if not isinstance(rec, (tuple, list)) or tuple(rec) not in allowed:
        raise ValueError(f"params['coded_size'] is {rec!r}, but a {stream.codec} stream of shape {stream.shape} "
                         f"is coded at one of {sorted(allowed)}: the shape or the params are wrong")
    return {tuple(int(v) for v in rec)}


def _check_decode_budget(stream: Bitstream, max_frames: int) -> None:
    t, h, w, c = stream.shape
    if c != 3:
        raise ValueError(f"video stream shape must be (T,H,W,3), got {stream.shape}")
    if t > max_frames:
        raise ValueError(f"video stream declares {t} frames, above max_frames={max_frames}: raise max_frames")
    need = t * h * w * 3 * 4
    if need > MAX_DECODE_BYTES:
        raise ValueError(f"video stream shape {stream.shape} would decode to {need / 2**30:.1f} GiB, above "
                         f"MAX_DECODE_BYTES ({MAX_DECODE_BYTES / 2**30:.0f} GiB): decode a shorter or smaller clip")


def video_decode(stream: Bitstream, max_frames: int = 100000, progress=None) -> np.ndarray:
    """Bitstream from ``video_encode`` -> ``[T,H,W,3]`` float32 0..1 (cropped to the declared shape).

    Raises ValueError when the stream is corrupt, holds another frame count than ``shape`` says, or
    its frames are not the recorded coded size. progress: optional ``progress(done, total)`` per
    decoded frame (total = T).
    """
    if stream.codec not in CODECS:
        raise ValueError(f"not a video bitstream (codec {stream.codec!r})")
    _check_progress(progress)
    _check_decode_budget(stream, max_frames)
    allowed = _coded_sizes(stream)
    _, fmt, _ = CODECS[stream.codec]
    t, h, w, _ = stream.shape
    out = np.empty((t, h, w, 3), np.float32)  # pages are touched only as frames arrive
    n = 0
    try:
        with av.open(io.BytesIO(b"".join(stream.payload)), mode="r", format=fmt) as inp:
            if not inp.streams.video:
                raise ValueError(f"corrupt {stream.codec} stream: no video in it")
            for frame in inp.decode(video=0):
                if n == t:
                    raise ValueError(f"{stream.codec} stream holds more than the {t} frames its shape declares: "
                                     f"corrupt stream or wrong shape")
                if (frame.height, frame.width) not in allowed:
                    raise ValueError(f"{stream.codec} frame {n} is {frame.height}x{frame.width} but the stream "
                                     f"declares {h}x{w} (coded {sorted(allowed)}): corrupt stream or wrong shape")
                out[n] = frame.to_ndarray(format="rgb24")[:h, :w].astype(np.float32) / 255.0
                n += 1
                if progress is not None:
                    progress(n, t)
    except av.error.FFmpegError as exc:
        raise ValueError(f"corrupt {stream.codec} stream: {exc}") from None
    if n != t:
        raise ValueError(f"{stream.codec} stream decoded to {n} frames, expected {t}: corrupt or truncated")
    return out


def kbps(stream: Bitstream) -> float:
    return stream.nbits * stream.fps / stream.frames / 1000.0
