"""Video files into IMAGE batches: a bounded range of frames (start, count, stride) decoded one at a
time with PyAV (``models/video_file.read_frames``), checked against the size one node output may
take before the frames are held. For whole videos of any length use MetaVSR Stream Video File,
which never holds the clip.
"""
import os

import torch

from ..models import video_file
from . import _check, _comfy
from ._declare import node

EXTENSIONS = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".gif")
MAX_FRAMES = 100_000


def video_names() -> list:
    """Video files in ComfyUI's input folder and its first level of subfolders, as ``sub/name``."""
    root = _comfy.user_dir("input")
    names = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return names
    for e in entries:
        if e.is_file() and e.name.lower().endswith(EXTENSIONS):
            names.append(e.name)
        elif e.is_dir() and not e.name.startswith("."):
            try:
                names += [f"{e.name}/{f}" for f in sorted(os.listdir(e.path))
                          if f.lower().endswith(EXTENSIONS) and os.path.isfile(os.path.join(e.path, f))]
            except OSError:
                continue
    return names


def input_video(video) -> str:
    """``video`` (a name from the list) -> its path inside the input folder (never outside it)."""
    root = os.path.abspath(_comfy.user_dir("input"))
    if not isinstance(video, str) or not video.strip():
        raise _check.MetaVSRInputError(f"video: pick a video file; put one into ComfyUI's input folder ({root}) "
                                       f"and press R to refresh the list.")
    path = os.path.abspath(os.path.join(root, video.strip()))
    if os.path.commonpath([root, path]) != root or path == root:
        raise _check.MetaVSRInputError(f"video: {video!r} is not inside ComfyUI's input folder ({root}).")
    if not os.path.isfile(path):
        raise _check.MetaVSRInputError(f"video: {video!r} is not in ComfyUI's input folder ({root}); copy it "
                                       f"there (the workflows/ folder of MetaVSR has a sample clip) and press R.")
    return path


@node("MetaVSR/video",
      ("IMAGE", "images", "The decoded frames [T,H,W,3] float 0..1."),
      ("FLOAT", "fps", "Frame rate of the returned frames (the source's divided by every_nth)."),
      ("INT", "frame_count", "How many frames were returned."),
      ("STRING", "info", "Source size, fps, frame count and codec, and the range that was read."))
class MetaVSRLoadVideoFrames:
    """Loads a range of frames of a video file from ComfyUI's input folder as an IMAGE batch (frames
    decoded one at a time, any format FFmpeg reads). The batch is held in RAM as float32 (1080p: 25 MB
    a frame), so the node refuses ranges over the size one node output may take; to super-resolve a
    whole long video use MetaVSR Stream Video File, which never holds it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "video": (video_names(), {"video_upload": True, "tooltip":
                      "A video in ComfyUI's input folder (subfolders listed as sub/name): upload one with the "
                      "button, or copy it there and press R."}),
            "start_frame": ("INT", {"default": 0, "min": 0, "max": 10_000_000, "tooltip":
                            "First frame to return (0 = the first of the file)."}),
            "frame_count": ("INT", {"default": 16, "min": 0, "max": MAX_FRAMES, "tooltip":
                            "Frames to return (0 = to the end of the file, within the memory guard)."}),
            "every_nth": ("INT", {"default": 1, "min": 1, "max": 1000, "tooltip":
                          "Keep one frame in every N (1 = all): a longer stretch of video in fewer frames."}),
        }}

    @classmethod
    def IS_CHANGED(cls, video="", **_):
        """Re-run when the file changes under the same name."""
        try:
            st = os.stat(input_video(video))
            return f"{video}:{st.st_mtime_ns}:{st.st_size}"
        except (OSError, ValueError):
            return ""

    @classmethod
    def VALIDATE_INPUTS(cls, video):
        # a name typed into an API prompt is checked here, before the queue runs
        try:
            input_video(video)
        except _check.MetaVSRInputError as e:
            return str(e)
        return True

    def run(self, video, start_frame=0, frame_count=16, every_nth=1):
        path = input_video(video)
        start = _check.number("start_frame", start_frame, 0, 10_000_000, integer=True)
        count = _check.number("frame_count", frame_count, 0, MAX_FRAMES, integer=True)
        step = _check.number("every_nth", every_nth, 1, 1000, integer=True)
        try:
            info = video_file.probe(path)
        except video_file.VideoFileError as e:
            raise _check.MetaVSRInputError(f"video: {e}.") from None
        h, w, total = info["height"], info["width"], info["frames_estimate"]
        fix = ("lower frame_count (or raise every_nth), or super-resolve the whole file with MetaVSR Stream "
               "Video File, which holds a few frames at a time")
        want = count or (max(-(-(total - start) // step), 1) if total else MAX_FRAMES)
        if count or total:
            _check.output_size("frame_count", (want, h, w, 3), fix, what="frame batch")
        limit = _check.MAX_OUTPUT_BYTES // (h * w * 3 * 4)
        last = None if not count else start + (count - 1) * step + 1
        progress = _comfy.Progress(want)
        # frames go straight into the batch (no list + stack: that would hold the clip twice); a length
        # the container under-reported grows it
        batch = torch.empty((want if (count or total) else 0, h, w, 3), dtype=torch.float32)
        extra, n = [], 0
        try:
            for i, frame in enumerate(video_file.read_frames(path, start, None if last is None else last - start)):
                if i % step:
                    continue
                if n >= limit:
                    _check.output_size("frame_count", (n + 1, h, w, 3), fix, what="frame batch")
                if n < batch.shape[0]:
                    batch[n] = frame
                else:
                    extra.append(frame)
                n += 1
                progress.update()
                if count and n >= count:
                    break
        except video_file.VideoFileError as e:
            raise _check.MetaVSRInputError(f"video: {e}.") from None
        frames = batch[:n] if not extra else torch.cat([batch[:min(n, batch.shape[0])], torch.stack(extra)])
        if not n:
            n = f"{total} frames" if total else "fewer frames"
            raise _check.MetaVSRInputError(f"start_frame: {start} is past the end of {video!r} ({n}); lower it.")
        fps = info["fps_float"] / step
        text = (f"{os.path.basename(path)}: {w}x{h}, {info['fps_float']:.3f} fps, {total if total else '?'} frames, "
                f"{info['video_codec']}{', audio' if info['has_audio'] else ''}; returned {n} frames from "
                f"{start}, every {step}" + (" (rate guessed)" if info["fps_guessed"] else ""))
        return (frames, fps, n, text)


NODE_CLASS_MAPPINGS = {"MetaVSRLoadVideoFrames": MetaVSRLoadVideoFrames}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRLoadVideoFrames": "MetaVSR Load Video Frames"}
