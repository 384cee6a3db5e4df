"""Video files of any length through a receiver, a few frames in memory at a time.

    probe(path)                      -> what the file holds (size, fps, frames, audio, codecs)
    read_frames(path, start, max)    -> [H,W,3] float32 0..1 frames, decoded one at a time
    VideoWriter(path, fps, codec...) -> encodes frames as they come (H.264 / H.265 / AV1 in MP4, or
                                        MKV), passes the source's audio through, atomic at close
    upscale_file(sr_model, in, out)  -> reads, super-resolves and writes frame by frame
    stream_segments(run, frames...)  -> a one-shot receiver over an endless frame stream in
                                        overlapping, cross-faded windows (run_segments' maths)

Memory does not grow with the video: a streaming receiver (``start``/``push``) gets ``chunk`` frames
per :func:`~models.receivers.base.run_stream` call with its state carried; a one-shot receiver runs
on windows of ``chunk`` frames overlapping by ``overlap`` and cross-faded with
:func:`models.ops.windows.ramp`; at most ``chunk + (chunk - overlap)`` LR frames and about two
windows of output frames are held, plus what the encoder buffers (its lookahead, in coded form).

Every failure is a :class:`VideoFileError` (a ``ValueError``) naming the file and the fix; an
exception part-way (a cancel, a receiver error, a full disk) leaves no output file behind, and an
older file at the target path untouched.

Frames are re-timed at the source's average frame rate (variable-rate sources come out constant
rate); a rotation flag in the source is not applied.
"""
import os
import resource
import tempfile
import time
from fractions import Fraction
from typing import Callable, Iterable, Iterator, Optional

import av
import numpy as np
import torch

from .codec.jpeg import to_uint8
from .codec.video import CODECS, _check_coded, _check_params, _encoder_rate, _options, _pad, coded_size
from .ops import windows
from .receivers.base import Configured, ReceiverInputError, RunOptions, report, run_stream

# our codec names -> models/codec/video.py's ids (whose padding rules and encoder options we reuse)
CODEC_IDS = {"h264": "h264", "h265": "hevc", "hevc": "hevc", "av1": "av1"}
CODEC_CHOICES = ("h264", "h265", "av1")
# target extension -> FFmpeg muxer
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_EXT = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv"}
# FFmpeg's default layout per channel count, for streams whose layout is only "N channels"
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


class VideoFileError(ValueError):
    """A video file that cannot be read or written, or settings it cannot be written with; the message
    names the file (or setting) and the fix. ``where`` says which side is at fault: ``"input"``,
    ``"output"`` or the name of the setting (``"codec"``, ``"crf"``, ``"preset"``, ``"fps"``,
    ``"chunk"``, ``"overlap"``, ``"max_frames"``, ``"start"``)."""

    def __init__(self, message: str, where: str = "input"):
        super().__init__(message)
        self.where = where


# --------------------------------------------------------------------------- reading
def _check_path(path) -> str:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise VideoFileError(f"video path: expected a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if not path.strip():
        raise VideoFileError("video path is empty; give the path of a video file (MP4, MKV, MOV, WebM, ...)")
    if not os.path.exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        hint = "" if os.path.isdir(folder) else f" (the folder {folder!r} does not exist either)"
        raise VideoFileError(f"{path!r}: no such file{hint}; check the path and the file name")
    if os.path.isdir(path):
        raise VideoFileError(f"{path!r} is a folder, not a video file; give the path of a file inside it")
    if os.path.getsize(path) == 0:
        raise VideoFileError(f"{path!r} is empty (0 bytes); the copy or download did not finish: copy it again")
    return path


def _open_input(path: str):
    try:
        return av.open(path, mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise VideoFileError(f"{path!r} is not a readable video file ({_short(e)}); it is damaged or not a "
                             f"video: re-export it as MP4 or MKV, or pick another file") from None


def _short(e: Exception) -> str:
    return str(e).split(";")[0][:200] or type(e).__name__


def _fps(stream) -> Optional[Fraction]:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return None


def probe(path) -> dict:
    """What a video file holds: ``path, width, height, fps`` (a Fraction; ``fps_float`` as a float),
    ``frames`` (the container's count, None if it does not say), ``frames_estimate`` (from the
    duration when the count is missing), ``duration`` (seconds or None), ``has_audio``,
    ``video_codec``, ``audio_codec`` (None without audio), ``format``.

    The first frame is decoded, so a file whose header reads but whose video does not is refused
    here too. Raises :class:`VideoFileError` (missing path, a folder, an empty / damaged / non-video
    file, a file without a video stream)."""
    path = _check_path(path)
    with _open_input(path) as c:
        if not c.streams.video:
            what = f"only audio ({c.streams.audio[0].codec_context.name})" if c.streams.audio else "no video"
            raise VideoFileError(f"{path!r} holds {what}, no video stream; give a file with video in it")
        vs = c.streams.video[0]
        fps = _fps(vs)
        guessed = fps is None
        if guessed:
            fps = Fraction(25)  # FFmpeg's own default for a stream without a rate
        duration = None
        if vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        elif c.duration:
            duration = c.duration / 1e6
        frames = int(vs.frames) if vs.frames and vs.frames > 0 else None
        estimate = frames if frames is not None else (round(duration * fps) if duration else None)
        audio = c.streams.audio[0] if c.streams.audio else None
        try:
            first = next(c.decode(vs), None)
        except av.error.FFmpegError as e:
            raise VideoFileError(f"{path!r}: the video stream cannot be decoded ({_short(e)}); the file is "
                                 f"damaged: re-export it, or pick another file") from None
        if first is None:
            raise VideoFileError(f"{path!r}: the video stream holds no decodable frame; the file is damaged or "
                                 f"truncated: re-export it")
        return {"path": path, "width": int(first.width), "height": int(first.height), "fps": fps,
                "fps_float": float(fps), "fps_guessed": guessed, "frames": frames, "frames_estimate": estimate,
                "duration": duration, "has_audio": audio is not None, "video_codec": vs.codec_context.name,
                "audio_codec": audio.codec_context.name if audio is not None else None,
                "format": c.format.name}


def _whole(name: str, value, allow_none: bool = True) -> Optional[int]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise VideoFileError(f"{name}: must be a whole number >= 0, got {value!r}", name)
    return int(value)


def read_frames(path, start: int = 0, max_frames: Optional[int] = None) -> Iterator[torch.Tensor]:
    """``[H,W,3]`` float32 0..1 frames of the first video stream, decoded one at a time (the path and
    arguments are checked at the call, the file is opened at the first frame and closed when the
    generator ends or is closed). ``start`` frames are skipped (decoded, so the count is exact);
    ``max_frames`` caps how many are yielded (None: all)."""
    path = _check_path(path)
    start = _whole("start", start, allow_none=False)
    max_frames = _whole("max_frames", max_frames)
    return _frames(path, start, max_frames)


def _frames(path, start, max_frames):
    if max_frames == 0:
        return
    with _open_input(path) as c:
        if not c.streams.video:
            raise VideoFileError(f"{path!r} holds no video stream; give a file with video in it")
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        n = yielded = 0
        decoded = c.decode(vs)
        while True:
            try:
                frame = next(decoded, None)
            except av.error.FFmpegError as e:
                raise VideoFileError(f"{path!r}: frame {n} cannot be decoded ({_short(e)}); the file is damaged "
                                     f"from there on: re-export it, or limit the frames to {n}") from None
            if frame is None:
                return
            n += 1
            if n <= start:
                continue
            yield torch.from_numpy(frame.to_ndarray(format="rgb24")).float().div_(255.0)
            yielded += 1
            if max_frames is not None and yielded >= max_frames:
                return


# --------------------------------------------------------------------------- writing
def _codec_id(codec) -> str:
    if codec not in CODEC_IDS:
        raise VideoFileError(f"codec: {codec!r} is not one of {', '.join(CODEC_CHOICES)}; pick one of them", "codec")
    return CODEC_IDS[codec]


def _layout_name(stream) -> str:
    name = stream.layout.name
    return _LAYOUTS.get(stream.layout.nb_channels, name) if "channels" in name else name


class VideoWriter:
    """Encodes frames as they come into a video file; use as a context manager.

        with VideoWriter("out.mp4", fps, "h264", crf=18, audio_from="in.mp4") as w:
            for frame in frames:      # [H,W,3] float 0..1 (torch or numpy) or uint8 numpy
                w.write(frame)
        w.info                        # what was written (filled in at close)

    - codec ``h264`` / ``h265`` / ``av1`` (libx264 / libx265 / libsvtav1 from PyAV's wheel), CRF rate
      control, ``preset`` one of ``models/codec/video.py``'s PRESETS (SVT-AV1 maps them to its
      numbers), yuv420p with FFmpeg's BT.601 conversion.
    - The container follows the extension (.mp4/.m4v/.mov/.mkv). AV1 that the MP4 muxer refuses
      goes into Matroska beside it (``info["path"]`` ends in .mkv then, ``info["notes"]`` says so).
    - Frame sizes the encoders mishandle (odd sides; x265 below 56 px wide; SVT-AV1 thin frames)
      are edge-padded to ``models/codec/video.py``'s coded size: the file is that size and
      ``info["padded_to"]`` / a note say so (×2 and ×4 outputs of even inputs never need it).
    - ``audio_from``: a file whose first audio stream is copied packet for packet (no re-encode)
      up to the end of the video, interleaved as the video is written; a codec the container cannot
      hold is re-encoded to AAC and a note says so. A file without audio just gives no audio.
      ``audio_start`` (seconds): the audio that goes with a video starting there (packets that begin
      before it are dropped, the rest shifted to start at 0).
    - Atomic: everything goes to a temporary file beside the target, renamed over it at close
      (fsynced, like ``models/atomic.py``); an exception inside the ``with`` block (or :meth:`abort`)
      removes the temporary file and leaves the target as it was.
    """

    def __init__(self, path, fps, codec: str = "h264", crf: int = 18, preset: str = "medium",
                 audio_from=None, audio_start: float = 0.0):
        self.cid = _codec_id(codec)
        self.codec = "h265" if self.cid == "hevc" else self.cid
        if isinstance(fps, Fraction):
            fps_num = float(fps)
        else:
            fps_num = fps
        try:
            self.crf = _check_params(self.cid, "crf", crf, fps_num, preset, None)
        except ValueError as e:
            where = "crf" if "value" in str(e) else "preset" if "preset" in str(e) else "fps"
            raise VideoFileError(f"{where}: {e}", where) from None
        self.preset = preset
        self.rate, self.enc_rate = _encoder_rate(self.cid, float(fps))
        if isinstance(fps, Fraction) and fps.denominator <= 1001 and self.rate == self.enc_rate:
            self.rate = self.enc_rate = fps  # keep an exact source rate such as 30000/1001
        if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
            raise VideoFileError(f"output path: expected a file path, got {path!r}", "output")
        self.path = os.path.abspath(os.fspath(path))
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in CONTAINERS:
            raise VideoFileError(f"{self.path!r}: unknown container {ext or '(no extension)'!r}; end the name in "
                                 f"{', '.join(CONTAINERS)}", "output")
        self.format = CONTAINERS[ext]
        if os.path.isdir(self.path):
            raise VideoFileError(f"{self.path!r} is a folder; give a file name for the output", "output")
        self.folder = os.path.dirname(self.path)
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as e:
            raise VideoFileError(f"cannot create the output folder {self.folder!r} ({e.strerror or e}); pick a "
                                 f"writable folder", "output") from None
        self.audio_from = None if audio_from is None else _check_path(audio_from)
        if isinstance(audio_start, bool) or not isinstance(audio_start, (int, float, Fraction)) \
                or not np.isfinite(float(audio_start)) or audio_start < 0:
            raise VideoFileError(f"audio_start: must be a number of seconds >= 0, got {audio_start!r}", "audio_start")
        self.audio_start = float(audio_start)
        self.info = {}
        self.notes = []
        self._out = self._tmp = self._ain = self._apackets = None
        self._aenc = self._aresampler = None
        self._pending = None
        self._n = 0
        self._size = None
        self._audio_mode = None
        self._audio_packets = 0
        self._closed = False

    # -- context manager
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    # -- opening (at the first frame: the size is known only then)
    def _open(self, h: int, w: int):
        ch, cw = coded_size(self.cid, h, w)
        try:
            _check_coded(self.cid, h, w, ch, cw)
        except ValueError as e:
            raise VideoFileError(f"codec: {e}", "codec") from None
        self._size, self._coded = (h, w), (ch, cw)
        if (ch, cw) != (h, w):
            self.notes.append(f"{w}x{h} frames are edge-padded to {cw}x{ch} ({CODECS[self.cid][0]} cannot code "
                              f"that size as it is)")
        fd, self._tmp = tempfile.mkstemp(dir=self.folder, prefix="." + os.path.basename(self.path) + ".",
                                         suffix=".tmp")
        os.close(fd)
        ain = None
        if self.audio_from is not None:
            self._ain = _open_input(self.audio_from)
            if self._ain.streams.audio:
                ain = self._ain.streams.audio[0]
            else:
                self.notes.append(f"no audio: {os.path.basename(self.audio_from)} has no audio stream")
                self._ain.close()
                self._ain = None
        formats = [self.format] + (["matroska"] if self.cid == "av1" and self.format != "matroska" else [])
        errors = []
        for fmt in formats:
            modes = [None]
            if ain is not None:  # some muxers take a codec's header and fail only at the trailer
                why = _copy_fails(self.audio_from, fmt)
                modes = ["aac"] if why else ["copy", "aac"]
            for mode in modes:
                try:
                    self._out = self._setup(fmt, ain, mode)
                except (av.error.FFmpegError, ValueError, TypeError, NotImplementedError) as e:
                    errors.append(f"{fmt}{'' if mode is None else ' + audio ' + mode}: {_short(e)}")
                    continue
                if fmt != self.format:
                    self.notes.append(f"{CODECS[self.cid][0]} could not go into {self.format} ({errors[0]}); "
                                      f"wrote Matroska instead")
                    self.path = os.path.splitext(self.path)[0] + _EXT[fmt]
                if mode == "aac":
                    self.notes.append(f"audio: {ain.codec_context.name} cannot go into {fmt} as it is "
                                      f"({why or errors[-1]}), re-encoded to AAC")
                self.format, self._audio_mode = fmt, mode
                if mode == "copy":
                    self._apackets = self._ain.demux(ain)
                elif mode == "aac":
                    self._apackets = self._ain.decode(ain)
                    self._aresampler = av.AudioResampler(format="fltp", layout=_layout_name(ain),
                                                         rate=ain.sample_rate,
                                                         frame_size=self._astream.codec_context.frame_size)
                return
        raise VideoFileError(f"{CODECS[self.cid][0]} could not start on {w}x{h} frames into {self.path!r}: "
                             f"{'; '.join(errors)}. Try another codec or preset", "codec")

    def _setup(self, fmt, ain, mode):
        out = av.open(self._tmp, mode="w", format=fmt)
        try:
            encoder = CODECS[self.cid][0]
            vs = out.add_stream(encoder, rate=self.rate)
            vs.width, vs.height, vs.pix_fmt = self._coded[1], self._coded[0], "yuv420p"
            if self.enc_rate != self.rate:  # SVT-AV1 above 240 fps (models/codec/video.py)
                cc = vs.codec_context
                cc.framerate, cc.time_base, vs.time_base = self.enc_rate, 1 / self.rate, 1 / self.rate
            vs.options = _options(self.cid, "crf", self.crf, self.preset)
            if self.cid == "hevc" and fmt in ("mp4", "mov"):
                vs.codec_tag = "hvc1"  # the tag Apple players need; FFmpeg's default hev1 plays elsewhere
            self._vstream, self._astream = vs, None
            if mode == "copy":
                if hasattr(out, "add_stream_from_template"):
                    self._astream = out.add_stream_from_template(ain)
                else:  # PyAV < 14
                    self._astream = out.add_stream(template=ain)
            elif mode == "aac":
                self._astream = out.add_stream("aac", rate=ain.sample_rate, layout=_layout_name(ain))
            out.start_encoding()
        except BaseException:
            _close_quietly(out)
            raise
        return out

    # -- writing
    def write(self, frame) -> None:
        """One ``[H,W,3]`` frame (float 0..1 torch/numpy, or uint8 numpy); all of one size."""
        if self._closed:
            raise VideoFileError(f"{self.path!r}: the writer is closed; open a new VideoWriter", "output")
        if isinstance(frame, torch.Tensor):
            frame = frame.detach().cpu().numpy()
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
            raise VideoFileError(f"frame {self._n}: expected [H,W,3] RGB, got shape {frame.shape}", "output")
        u8 = frame if frame.dtype == np.uint8 else to_uint8(frame.astype(np.float32, copy=False))
        if self._out is None:
            self._open(*u8.shape[:2])
        elif u8.shape[:2] != self._size:
            raise VideoFileError(f"frame {self._n} is {u8.shape[1]}x{u8.shape[0]} but the video is "
                                 f"{self._size[1]}x{self._size[0]}; every frame of a file has one size", "output")
        u8 = _pad(u8[None], *self._coded)[0]
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(u8), format="rgb24")
        vf.pts = self._n
        self._n += 1
        self._encode(vf)

    def _encode(self, vf):
        try:
            packets = self._vstream.encode(vf)
        except av.error.FFmpegError as e:
            raise VideoFileError(f"{CODECS[self.cid][0]} failed at frame {self._n} ({_short(e)}); try another "
                                 f"codec or preset", "codec") from None
        for p in packets:
            self._mux(p)
            if p.dts is not None and p.time_base:
                self._feed_audio(float(p.dts * p.time_base))

    def _mux(self, packet):
        try:
            self._out.mux(packet)
        except av.error.FFmpegError as e:
            raise VideoFileError(f"writing {self.path!r} failed ({_short(e)}); check the free disk space and "
                                 f"that the folder is writable", "output") from None

    def _feed_audio(self, until: float, final: bool = False) -> None:
        """Mux source audio up to ``until`` seconds (``final``: everything that starts before it)."""
        if self._apackets is None:
            return
        while True:
            item = self._pending
            self._pending = None
            if item is None:
                try:
                    item = next(self._apackets, None)
                except av.error.FFmpegError as e:
                    self.notes.append(f"audio stopped at a damaged packet ({_short(e)})")
                    item = None
                if item is None:
                    self._apackets = None
                    return
            if self._audio_mode == "copy" and (item.dts is None or item.size == 0):
                continue  # the demuxer's flush packet
            ts = item.pts if item.pts is not None else getattr(item, "dts", None)
            if ts is None or not item.time_base:
                continue  # no time to place it at
            t = float(ts * item.time_base) - self.audio_start
            if t < 0 and self.audio_start:
                continue  # before the part of the source this video shows (priming at 0 is kept)
            if t >= until:
                if final:
                    self._apackets = None  # the rest lies after the video's end
                    return
                self._pending = item  # not shifted yet: it comes back through here
                return
            if self.audio_start:
                shift = round(self.audio_start / item.time_base)
                item.pts = ts - shift
                if self._audio_mode == "copy":
                    item.dts -= shift
            if self._audio_mode == "copy":
                item.stream = self._astream
                self._mux(item)
                self._audio_packets += 1
            else:
                for g in self._aresampler.resample(item):
                    for p in self._astream.encode(g):
                        self._mux(p)
                        self._audio_packets += 1

    # -- closing
    def close(self) -> dict:
        """Flush the encoder, finish the audio, move the file into place; returns :attr:`info`."""
        if self._closed:
            return self.info
        try:
            if self._out is None:
                raise VideoFileError(f"{self.path!r}: no frames were written, so no video was made; check that "
                                     f"the input has frames", "input")
            self._encode(None)
            end = self._n / float(self.rate)
            self._feed_audio(end, final=True)
            if self._audio_mode == "aac":
                for g in self._aresampler.resample(None):
                    for p in self._astream.encode(g):
                        self._mux(p)
                for p in self._astream.encode(None):
                    self._mux(p)
                    self._audio_packets += 1
            try:
                self._out.close()
            except av.error.FFmpegError as e:
                raise VideoFileError(f"finishing {self.path!r} failed ({_short(e)}); check the free disk space",
                                     "output") from None
            self._out = None
            self._close_audio()
            with open(self._tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(self._tmp, self.path)
            self._tmp = None
            _fsync_folder(self.folder)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        h, w = self._size
        audio = ("none" if self._audio_mode is None else
                 f"copied ({self._astream.codec_context.name}, {self._audio_packets} packets)"
                 if self._audio_mode == "copy" else f"re-encoded to AAC ({self._audio_packets} packets)")
        self.info = {"path": self.path, "frames": self._n, "fps": self.rate, "width": w, "height": h,
                     "codec": self.codec, "encoder": CODECS[self.cid][0], "crf": self.crf, "preset": self.preset,
                     "container": self.format, "padded_to": None if self._coded == self._size else self._coded,
                     "audio": audio, "bytes": os.path.getsize(self.path), "notes": list(self.notes)}
        return self.info

    def _close_audio(self):
        if self._ain is not None:
            _close_quietly(self._ain)
            self._ain = self._apackets = None

    def abort(self) -> None:
        """Drop everything written so far: the temporary file goes, the target stays as it was."""
        self._closed = True
        if self._out is not None:
            _close_quietly(self._out)
            self._out = None
        self._close_audio()
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None


def _copy_fails(path: str, fmt: str) -> Optional[str]:
    """Why the first audio stream of ``path`` cannot be copied into ``fmt`` (None if it can): a
    trial mux of a few packets into memory, trailer included."""
    import io
    try:
        with av.open(path) as src:
            ain = src.streams.audio[0]
            out = av.open(io.BytesIO(), mode="w", format=fmt)
            try:
                add = getattr(out, "add_stream_from_template", None)
                aout = add(ain) if add is not None else out.add_stream(template=ain)
                out.start_encoding()
                n = 0
                for p in src.demux(ain):
                    if p.dts is None or p.size == 0:
                        continue
                    p.stream = aout
                    out.mux(p)
                    n += 1
                    if n == 3:
                        break
            finally:
                out.close()
    except (av.error.FFmpegError, ValueError, TypeError, NotImplementedError) as e:
        return _short(e)
    return None


def _close_quietly(container) -> None:
    try:
        container.close()
    except Exception:  # noqa: BLE001 - the first error is the one that matters
        pass


def _fsync_folder(folder: str) -> None:
    try:  # as models/atomic.py: the rename survives a power cut once the folder entry is on disk
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# --------------------------------------------------------------------------- one-shot receivers on a stream
def stream_segments(run: Callable, frames: Iterable, segment: int, overlap: int) -> Iterator[torch.Tensor]:
    """A one-shot receiver over a frame stream of unknown length, in bounded memory.

    ``frames`` yields ``lr_t`` (``[H,W,3]``) or ``(lr_t, {kind: map_t})``; ``run(lr_seg, maps_seg)``
    super-resolves one window (``[n,H,W,3]``, maps stacked per kind, ``{}`` without) and returns
    ``[n,sH,sW,3]``. Yields the output frames in order, each as soon as no later window touches it.

    The maths is :func:`models.receivers.base.run_segments`': each window is weighted by
    ``windows.ramp(n, overlap, first, last)`` and every frame is divided by its summed weight. Window
    placement differs only because the length is not known in advance: windows start every
    ``segment - overlap`` frames and the last one is moved back to end at the last frame (a video of
    at most ``segment`` frames runs once), found by reading up to ``segment - overlap`` frames ahead.
    ``overlap`` 0 means no overlap (for receivers whose frames do not depend on each other).
    Held at once: up to ``2 * segment - overlap`` LR frames and about two windows of output.
    """
    segment = int(segment)
    if segment < 1:
        raise VideoFileError(f"chunk: must be at least 1 frame, got {segment}", "chunk")
    if not 0 <= int(overlap) < segment:
        raise VideoFileError(f"overlap: {overlap} must be in 0..{segment - 1} (smaller than chunk {segment})",
                             "overlap")
    overlap = int(overlap)
    stride = segment - overlap
    it = iter(frames)
    buf = []
    eof = False

    def fill(n):
        nonlocal eof
        while not eof and len(buf) < n:
            item = next(it, None)
            if item is None:
                eof = True
            else:
                buf.append(item if isinstance(item, tuple) else (item, {}))

    def window(n):
        lr = torch.stack([f for f, _ in buf[:n]])
        kinds = buf[0][1].keys()
        maps = {k: torch.stack([m[k] for _, m in buf[:n]]) for k in kinds}
        return run(lr, maps)

    fill(segment + stride)
    if not buf:
        return
    if eof and len(buf) <= segment:  # a short video: one run, like run_segments
        yield from window(len(buf)).float()
        return
    s, carry, carry_w = 0, None, None
    while True:
        fill(segment + stride)
        if len(buf) >= segment + stride:
            nxt = s + stride
        elif len(buf) > segment:  # the end is near: the last window ends at the last frame
            nxt = s + len(buf) - segment
        else:
            nxt = None  # this window is the last one
        wt = windows.ramp(segment, overlap, s == 0, nxt is None)
        y = window(segment).float() * wt[:, None, None, None]  # a new tensor: the receiver's may be read-only
        wsum = wt.clone()
        if carry is not None:
            m = carry.shape[0]
            y[:m] += carry
            wsum[:m] += carry_w
        done = segment if nxt is None else nxt - s
        for i in range(done):
            yield y[i] / wsum[i]
        if nxt is None:
            return
        carry, carry_w = y[done:].clone(), wsum[done:].clone()
        del y
        del buf[:done]
        s = nxt


# --------------------------------------------------------------------------- the whole file
def _rss_mb() -> Optional[float]:
    """Resident memory of this process now (``VmRSS``, MB), None where /proc is not there."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _max_rss_mb() -> Optional[float]:
    """The process's lifetime peak (``ru_maxrss``; KiB on Linux, bytes on macOS)."""
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (OSError, ValueError):
        return None
    import sys
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _unpack(sr_model):
    if isinstance(sr_model, Configured):
        return sr_model.receiver, sr_model.options
    if callable(getattr(sr_model, "upscale", None)) and hasattr(sr_model, "scale"):
        return sr_model, RunOptions()
    raise ReceiverInputError(f"sr_model: not a MetaVSR receiver ({type(sr_model).__name__}); connect a MetaVSR "
                             f"loader node (or pass a Configured receiver).")


def is_streaming(receiver) -> bool:
    return callable(getattr(receiver, "start", None)) and callable(getattr(receiver, "push", None))


def upscale_file(sr_model, in_path, out_path, codec: str = "h264", crf: int = 18, chunk: int = 16,
                 overlap: int = 4, state=None, progress=None, max_frames: Optional[int] = None, *,
                 start: int = 0, preset: str = "medium", audio: bool = True,
                 on_frame: Optional[Callable] = None) -> dict:
    """Super-resolve a video file into another, frame by frame, in memory that does not grow with it.

    sr_model:   a :class:`~models.receivers.base.Configured` (a loader node's output) or a bare receiver
                (default options). Runs pixel-only (a file carries no metadata maps).
    streaming receivers (``start``/``push``): ``chunk`` frames per ``run_stream`` call, the state
                carried; ``state`` (a previous call's ``info["state"]``) continues that stream, so a
                video cut into files gives the frames of one uninterrupted run.
    one-shot receivers: windows of ``chunk`` frames overlapping by ``overlap``, cross-faded
                (:func:`stream_segments`); ``state`` must be None.
    codec, crf, preset: of the output (:class:`VideoWriter`); ``audio``: copy the input's audio.
    start, max_frames: skip the first ``start`` frames (decoded, so exact; the audio starts there
                too), then take ``max_frames`` (None or 0: all the rest). With ``state``, a video
                is continued part by part: ``start=n`` after a call that did ``n`` frames.
    progress:   ``progress(done, total, preview)`` after every output frame with it as the preview
                (total = the container's frame count capped by ``max_frames``, 0 if unknown); while a
                window runs, the receiver's own progress is passed on as ``(done, total, None)`` with
                the same ``done``, so a cancel (an exception from ``progress``) is noticed inside it.
    on_frame:   ``on_frame(index, hr_t)`` with each float output frame before it is encoded.

    Returns ``{"path", "frames", "fps", "seconds", "s_per_frame", "peak_rss_mb" (highest VmRSS
    sampled during the run), "max_rss_mb" (the process's lifetime ru_maxrss), "state" (streaming:
    the final state, else None), "mode", "input" (:func:`probe`), "output" (the writer's info),
    "notes"}``. Any exception leaves no output file (and an older one at ``out_path`` unchanged).
    """
    receiver, options = _unpack(sr_model)
    streaming = is_streaming(receiver)
    chunk = _whole("chunk", chunk, allow_none=False)
    overlap = _whole("overlap", overlap, allow_none=False)
    if chunk < 1:
        raise VideoFileError("chunk: must be at least 1 frame", "chunk")
    if not streaming and overlap >= chunk:
        raise VideoFileError(f"overlap: {overlap} must be smaller than chunk {chunk}", "overlap")
    if state is not None and not streaming:
        raise ReceiverInputError(f"state: {receiver.name!r} is a one-shot receiver and keeps no state between "
                                 f"calls; pass state=None (only streaming receivers continue a stream).")
    max_frames = _whole("max_frames", max_frames) or None
    start = _whole("start", start, allow_none=False)
    _check_progress(progress)
    if on_frame is not None and not callable(on_frame):
        raise VideoFileError(f"on_frame: must be None or a callable, got {type(on_frame).__name__}", "on_frame")
    src = probe(in_path)
    known = max((src["frames"] or src["frames_estimate"] or 0) - start, 0)
    total = min(known, max_frames) if known and max_frames else known
    writer = VideoWriter(out_path, src["fps"], codec, crf, preset,
                         audio_from=src["path"] if audio and src["has_audio"] else None,
                         audio_start=start / src["fps"])
    t0 = time.perf_counter()
    peak = _rss_mb()
    done = 0
    box = {"state": state}
    lr_size = []

    def lr_frames():
        for f in read_frames(src["path"], start, max_frames):
            if not lr_size:
                lr_size.append(tuple(f.shape[:2]))
            elif tuple(f.shape[:2]) != lr_size[0]:
                h, w = lr_size[0]
                raise VideoFileError(f"{src['path']!r}: frame {done} is {f.shape[1]}x{f.shape[0]} but the video "
                                     f"started at {w}x{h}; re-export it at one size")
            yield f

    def inner(d, t, preview=None):  # the receiver's progress inside a window: a cancel point
        report(progress, done, max(total, done), None)

    if streaming:
        def hr_frames():
            batch = []
            for f in lr_frames():
                batch.append(f)
                if len(batch) == chunk:
                    yield from _push(batch)
                    batch = []
            if batch:
                yield from _push(batch)

        def _push(batch):
            hr, box["state"] = run_stream(receiver, torch.stack(batch), None, options, box["state"], inner)
            return iter(hr)
    else:
        def run(lr, maps):
            return receiver.upscale(lr, maps or None, options, inner)
        hr_frames = lambda: stream_segments(run, lr_frames(), chunk, overlap)  # noqa: E731

    with writer:
        for hr in hr_frames():
            hr = hr.float().clamp(0, 1)  # not in place: it may be a view of an inference tensor
            if on_frame is not None:
                on_frame(done, hr)
            writer.write(hr)
            done += 1
            rss = _rss_mb()
            if rss is not None:
                peak = rss if peak is None else max(peak, rss)
            report(progress, done, max(total, done), hr)
    seconds = time.perf_counter() - t0
    out = writer.info
    return {"path": out["path"], "frames": done, "fps": src["fps"], "seconds": seconds,
            "s_per_frame": seconds / done if done else None, "peak_rss_mb": peak, "max_rss_mb": _max_rss_mb(),
            "state": box["state"] if streaming else None, "mode": "streaming" if streaming else "segments",
            "receiver": getattr(receiver, "name", type(receiver).__name__), "scale": int(receiver.scale),
            "input": src, "output": out, "notes": list(out["notes"])}


def _check_progress(progress) -> None:
    if progress is not None and not callable(progress):
        raise VideoFileError(f"progress: must be None or a callable progress(done, total, preview), got "
                             f"{type(progress).__name__}", "progress")
