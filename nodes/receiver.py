"""Receiver node family: one SR node that runs any ``METAVSR_SR_MODEL`` (embedded, CogVideoX, ...).

Loaders live in ``receiver_<family>.py`` modules and output the shared type (a receiver with the
options its loader chose, ``models.receivers.base.Configured``), so a graph built around this node
runs with any receiver.
"""
import torch

from ..models.orchestrator.clip import receive_present
from ..models.receivers.base import SR_MODEL_TYPE, Configured, Receiver, ReceiverInputError
from . import _check
from ._comfy import Progress, soft_empty_cache
from ._declare import node

MAX_SIDE = 16384  # output pixels per side; beyond it frames are better cropped than allocated


def _metadata_map(name, value):
    """MASK [B,H,W] or IMAGE [B,H,W,C] -> [B,H,W,1] float 0..1 (the receiver checks sizes and frames)."""
    if getattr(value, "ndim", 0) == 4:
        return _check.image(name, value, channels=(1, 3)).mean(dim=-1, keepdim=True)
    return _check.mask(name, value).unsqueeze(-1)


def receiver_inputs(sr_model, lr_images):
    """``(Configured, lr [T,H,W,3])`` for a node that runs a receiver, or MetaVSRInputError naming the
    input: a bare receiver gets default options; the output must fit the size guards."""
    if isinstance(sr_model, Receiver) and not isinstance(sr_model, Configured):
        sr_model = Configured(sr_model)  # a bare receiver runs with default options
    if not isinstance(sr_model, Configured):
        raise _check.MetaVSRInputError("sr_model: not a MetaVSR receiver; connect a MetaVSR loader node.")
    lr = _check.image("lr_images", lr_images, channels=(3,), min_size=2)
    t, h, w, _ = lr.shape
    s = int(sr_model.scale)
    if max(h, w) * s > MAX_SIDE:
        raise _check.MetaVSRInputError(
            f"lr_images: {w}x{h} at x{s} would give a {w * s}x{h * s} output; the largest side this "
            f"node makes is {MAX_SIDE} px. Crop the video (or super-resolve it in parts) first.")
    _check.output_size("lr_images", (t, h * s, w * s, 3), "give fewer frames at a time (e.g. split the "
                       "batch) or crop the frames", what=f"x{s} output")
    return sr_model, lr


@node("MetaVSR/receiver",
      ("IMAGE", "sr_images", "Super-resolved frames [T,sH,sW,3] float 0..1 (s = the model's scale)."))
class MetaVSRSuperResolve:
    """Super-resolves decoded LR frames with any MetaVSR receiver model, optionally guided by
    transmitted metadata (decoded edge map, depth). Leave a metadata input unconnected to run
    pixel-only."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "sr_model": (SR_MODEL_TYPE, {"tooltip": "A receiver from a MetaVSR loader node."}),
                "lr_images": ("IMAGE", {"tooltip": "Decoded low-resolution frames [T,H,W,3]."}),
                "use_metadata": ("BOOLEAN", {"default": True, "tooltip":
                                 "Off: ignore connected metadata (pixel-only run for A/B comparisons)."}),
            },
            "optional": {
                "edges": ("MASK", {"tooltip": "Decoded edge map at HR size (1 = edge), e.g. from JBIG2 decode."}),
                "depth": ("IMAGE", {"tooltip": "Depth map at HR size, near = bright."}),
                "gate": ("METAVSR_GATE", {"tooltip": "From MetaVSR Verify Metadata (or Orchestrate Metadata): frames "
                         "it marks off run pixel-only."}),
            },
        }

    def run(self, sr_model, lr_images, use_metadata=True, edges=None, depth=None, gate=None):
        sr_model, lr = receiver_inputs(sr_model, lr_images)
        metadata = {}
        if use_metadata:
            metadata = {k: _metadata_map(k, v) for k, v in (("edges", edges), ("depth", depth)) if v is not None}
        progress = Progress(1)
        if gate is not None and metadata:
            present = gate.get("present") if isinstance(gate, dict) else None
            if present is None or len(present) != lr.shape[0]:
                raise _check.MetaVSRInputError(f"gate: not a gate for these {lr.shape[0]} frame(s); connect the gate "
                                               f"of the same clip.")
            if set(metadata) != {"edges"}:
                raise _check.MetaVSRInputError("gate: gates edge metadata only; disconnect depth or the gate.")
            try:
                out = receive_present(sr_model.receiver, lr.numpy(), metadata["edges"][..., 0].numpy(), present,
                                      sr_model.options, progress)
            except ReceiverInputError as e:
                raise _check.MetaVSRInputError(str(e)) from None
            finally:
                soft_empty_cache()
            return (torch.from_numpy(out).float().clamp(0, 1),)
        try:
            out = sr_model.upscale(lr, metadata or None, progress=progress)
        except ReceiverInputError as e:  # names the input (edges, depth, lr) and the fix
            raise _check.MetaVSRInputError(str(e)) from None
        finally:
            soft_empty_cache()  # give the device memory of the run back to ComfyUI's other models
        return (out.float().clamp(0, 1).cpu(),)


NODE_CLASS_MAPPINGS = {"MetaVSRSuperResolve": MetaVSRSuperResolve}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRSuperResolve": "MetaVSR Super-Resolve"}


# --------------------------------------------------------------------------- video files, streamed
# (appended: the file-streaming node; its imports are kept with it)
import os  # noqa: E402

from ..models import video_file  # noqa: E402
from ..models.codec.video import CODECS, MIN_VALUE  # noqa: E402
from . import _comfy  # noqa: E402


def _input_path(video_path) -> str:
    """``video_path`` as typed (quotes from a pasted path stripped, ``~`` expanded); relative paths
    are inside ComfyUI's input folder."""
    if not isinstance(video_path, str) or not video_path.strip().strip("\"'"):
        raise _check.MetaVSRInputError(f"video_path: give a video file, a name in ComfyUI's input folder "
                                       f"({_comfy.user_dir('input')}) or an absolute path; got {video_path!r}.")
    p = os.path.expanduser(video_path.strip().strip("\"'"))
    if not os.path.isabs(p):
        p = os.path.join(_comfy.user_dir("input"), p)
    return os.path.normpath(p)


def _output_path(output_name) -> str:
    """``output_name`` inside ComfyUI's output folder (subfolders allowed, never outside it); no
    extension gives ``.mp4``."""
    root = os.path.abspath(_comfy.user_dir("output"))
    if not isinstance(output_name, str) or not output_name.strip():
        raise _check.MetaVSRInputError(f"output_name: give a file name such as 'metavsr/upscaled.mp4' (written "
                                       f"into {root}); got {output_name!r}.")
    name = output_name.strip()
    if os.path.isabs(name) or os.path.splitdrive(name)[0]:
        raise _check.MetaVSRInputError(f"output_name: {name!r} is an absolute path; give a name inside ComfyUI's "
                                       f"output folder ({root}), e.g. 'metavsr/upscaled.mp4'.")
    ext = os.path.splitext(name)[1].lower()
    if not ext:
        name += ".mp4"
    elif ext not in video_file.CONTAINERS:
        raise _check.MetaVSRInputError(f"output_name: {ext!r} is not a container this node writes; end the name "
                                       f"in {', '.join(video_file.CONTAINERS)} (or leave the extension out for .mp4).")
    path = os.path.abspath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root or path == root:
        raise _check.MetaVSRInputError(f"output_name: {name!r} leaves the output folder ({root}); remove the '..' "
                                       f"parts.")
    return path


def _rss(mb) -> str:
    return "n/a" if mb is None else f"{mb:.0f} MB"


@node("MetaVSR/receiver",
      ("STRING", "video_path", "The written video file (absolute path; .mkv if AV1 could not go into MP4)."),
      ("STRING", "info", "Frames, size, fps, seconds and s/frame, peak memory (RSS), codec, audio, notes."),
      ("IMAGE", "last_frame", "The last super-resolved frame [1,sH,sW,3], for a preview node."))
class MetaVSRStreamVideoFile:
    """Super-resolves a video file of any length into a new video file, frame by frame: frames are
    decoded, run through the receiver and encoded as they come, so memory stays at a few frames
    whatever the length (no IMAGE batch of the whole clip). Streaming receivers carry their state from
    frame to frame; one-shot receivers (the embedded one, CogVideoX) run on chunks of frames that
    overlap and cross-fade. The output (H.264 / H.265 / AV1 in MP4) goes to ComfyUI's output folder,
    keeps the source's audio (copied, or re-encoded to AAC when MP4 cannot hold it) and appears only
    when complete: a cancel or an error leaves no partial file. Pixel-only (a file carries no
    metadata maps)."""
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "sr_model": (SR_MODEL_TYPE, {"tooltip": "A receiver from a MetaVSR loader node (its tile and other "
                                                    "options apply)."}),
            "video_path": ("STRING", {"default": "video.mp4", "tooltip":
                           "The video to super-resolve: a file name in ComfyUI's input folder (subfolders "
                           "allowed) or an absolute path. Any format FFmpeg reads (MP4, MKV, MOV, WebM, ...)."}),
            "output_name": ("STRING", {"default": "metavsr/upscaled.mp4", "tooltip":
                            "File name in ComfyUI's output folder (subfolders allowed; .mp4, .mkv or .mov; no "
                            "extension gives .mp4). An existing file of that name is replaced when the new "
                            "one is complete."}),
            "codec": (list(video_file.CODEC_CHOICES), {"default": "h264", "tooltip":
                      "Output codec: h264 (libx264, plays everywhere), h265 (libx265, smaller), av1 "
                      "(SVT-AV1, smallest, slower players)."}),
            "crf": ("INT", {"default": 18, "min": 0, "max": 63, "tooltip":
                    "Constant rate factor: lower is better quality and larger files (h264/h265 0..51, "
                    "about 18 looks lossless; av1 1..63, about 25)."}),
            "chunk": ("INT", {"default": 16, "min": 1, "max": 1024, "tooltip":
                      "Frames per receiver call. One-shot receivers see this many frames at once (more "
                      "temporal context, more memory); streaming receivers are fed this many per call."}),
            "overlap": ("INT", {"default": 4, "min": 0, "max": 1023, "tooltip":
                        "Frames shared by neighbouring chunks of a one-shot receiver, cross-faded so no seam "
                        "shows; 0 for receivers that treat frames independently (the embedded one). "
                        "Must be smaller than chunk. Streaming receivers ignore it."}),
            "max_frames": ("INT", {"default": 0, "min": 0, "max": 10_000_000, "tooltip":
                           "Super-resolve only the first N frames (0 = the whole video), e.g. to try settings."}),
            "keep_audio": ("BOOLEAN", {"default": True, "tooltip":
                           "Copy the source's audio into the output (cut to the video's length)."}),
        }}

    @classmethod
    def IS_CHANGED(cls, video_path="", **_):
        """Re-run when the source file changes (same name, new content)."""
        try:
            p = _input_path(video_path)
            st = os.stat(p)
            return f"{p}:{st.st_mtime_ns}:{st.st_size}"
        except (OSError, ValueError):
            return ""

    def run(self, sr_model, video_path, output_name="metavsr/upscaled.mp4", codec="h264", crf=18, chunk=16,
            overlap=4, max_frames=0, keep_audio=True):
        if isinstance(sr_model, Receiver) and not isinstance(sr_model, Configured):
            sr_model = Configured(sr_model)
        if not isinstance(sr_model, Configured):
            raise _check.MetaVSRInputError("sr_model: not a MetaVSR receiver; connect a MetaVSR loader node.")
        if codec not in video_file.CODEC_CHOICES:
            raise _check.MetaVSRInputError(f"codec: {codec!r} is not one of {', '.join(video_file.CODEC_CHOICES)}.")
        cid = video_file.CODEC_IDS[codec]
        crf = _check.number("crf", crf, MIN_VALUE[cid], CODECS[cid][2], integer=True)
        chunk = _check.number("chunk", chunk, 1, 1024, integer=True)
        overlap = _check.number("overlap", overlap, 0, 1023, integer=True)
        streaming = video_file.is_streaming(sr_model.receiver)
        if not streaming and overlap >= chunk:
            raise _check.MetaVSRInputError(f"overlap: {overlap} must be smaller than chunk ({chunk}); lower it or "
                                           f"raise chunk.")
        max_frames = _check.number("max_frames", max_frames, 0, 10_000_000, integer=True)
        src_path, out_path = _input_path(video_path), _output_path(output_name)
        try:
            src = video_file.probe(src_path)
        except video_file.VideoFileError as e:
            raise _check.MetaVSRInputError(f"video_path: {e}.") from None
        s = int(sr_model.scale)
        if max(src["width"], src["height"]) * s > MAX_SIDE:
            raise _check.MetaVSRInputError(
                f"video_path: {src['width']}x{src['height']} at x{s} would give a {src['width'] * s}x"
                f"{src['height'] * s} video; the largest side this node makes is {MAX_SIDE} px. Downscale or "
                f"crop the video first.")
        n = src["frames"] or src["frames_estimate"] or 0
        progress = Progress(min(n, max_frames) if n and max_frames else (n or max_frames or 1))
        last = {}

        def keep_last(i, frame):
            last["frame"] = frame

        names = {"input": "video_path", "output": "output_name"}
        try:
            info = video_file.upscale_file(sr_model, src_path, out_path, codec=codec, crf=crf, chunk=chunk,
                                           overlap=overlap, progress=progress, max_frames=max_frames or None,
                                           audio=bool(keep_audio), on_frame=keep_last)
        except video_file.VideoFileError as e:
            raise _check.MetaVSRInputError(f"{names.get(e.where, e.where)}: {e}.") from None
        except ReceiverInputError as e:
            raise _check.MetaVSRInputError(str(e)) from None
        finally:
            soft_empty_cache()
        out = info["output"]
        lines = [f"{info['frames']} frames {src['width']}x{src['height']} -> {out['width']}x{out['height']} at "
                 f"{float(info['fps']):.3f} fps ({info['mode']}, {info['receiver']})",
                 f"{info['seconds']:.1f} s, {info['s_per_frame']:.3f} s/frame, peak RSS {_rss(info['peak_rss_mb'])}",
                 f"{out['codec']} crf {out['crf']} ({out['encoder']}, {out['container']}), "
                 f"{out['bytes'] / 1e6:.2f} MB, audio: {out['audio']}",
                 f"-> {info['path']}"] + [f"note: {x}" for x in info["notes"]]
        text = "\n".join(lines)
        image = last["frame"].unsqueeze(0).float().clamp(0, 1).cpu()
        return {"ui": {"text": [text]}, "result": (info["path"], text, image)}


NODE_CLASS_MAPPINGS["MetaVSRStreamVideoFile"] = MetaVSRStreamVideoFile
NODE_DISPLAY_NAME_MAPPINGS["MetaVSRStreamVideoFile"] = "MetaVSR Stream Video File"
