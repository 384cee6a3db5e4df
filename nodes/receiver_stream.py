"""Causal streaming receivers: the Stream-DiffVSR loader, and a streaming super-resolve node whose
state continues a video across queue runs (chunk after chunk, no seam).

Folders come from ComfyUI's ``models/diffusers/`` (extra_model_paths.yaml honoured); RAFT weights, when
a user has them, from ``models/optical_flow/``. The layout is in ``models/receivers/stream/loading.py``
and the README.
"""
import collections
import os
import threading

from ..models.receivers.base import SR_MODEL_TYPE, Configured, ReceiverInputError, RunOptions, run_stream
from ..models.receivers.stream.receiver import summary
from . import _check
from ._comfy import Progress, register_model_folder, soft_empty_cache, torch_device
from ._declare import node
from ._models import ModelCache, comfy_folders, entries, find
from .receiver import receiver_inputs

STATE_TYPE = "METAVSR_STREAM_STATE"
OFFERED = ("Stream-DiffVSR",)  # the README's folder name, listed even before it exists
FLOWS = ["dis", "raft", "zero"]
MAX_STREAMS = 8               # states kept between queue runs (each holds one HR frame)
_CACHE = ModelCache()
register_model_folder("optical_flow", "optical_flow")


def _is_stream(path):
    return all(os.path.isfile(os.path.join(path, sub, "config.json")) for sub in ("unet", "controlnet", "vae"))


def model_names() -> list:
    return sorted(set(OFFERED) | set(entries(comfy_folders("diffusers"), _is_stream)))


def raft_files() -> list:
    return ["none"] + entries(comfy_folders("optical_flow"), lambda p: p.endswith((".pth", ".pt")))


@node("MetaVSR/receiver",
      (SR_MODEL_TYPE, "sr_model", "Streaming receiver (x4) for 'MetaVSR Stream Super-Resolve', 'MetaVSR "
                                  "Super-Resolve' or 'MetaVSR Stream Video File'."),
      function="load")
class MetaVSRLoadStreamDiffVSR:
    """Loads Stream-DiffVSR (causal 4-step diffusion video SR: each frame is denoised with the flow-warped
    previous output as a ControlNet hint and decoded with temporal features) from models/diffusers/.
    Memory does not grow with the video: frames are processed one at a time. Output is 4x the input."""
    NEEDS_WEIGHTS = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (model_names(), {"tooltip": "A folder in models/diffusers/ with unet/, controlnet/, vae/, "
                                      "scheduler/ and the empty-prompt embedding (see the README)."}),
            "dtype": (["fp16", "bf16", "fp32"], {"default": "fp16", "tooltip":
                      "Compute precision; fp16 is what the authors run. On a CPU fp32 is used."}),
            "flow": (FLOWS, {"default": "dis", "tooltip":
                     "Motion between consecutive LR frames: dis (OpenCV, no weights), raft (torchvision "
                     "RAFT from models/optical_flow/), zero (no motion)."}),
            "raft_weights": (raft_files(), {"tooltip": "RAFT weights in models/optical_flow/ (for flow = raft)."}),
            "steps": ("INT", {"default": 4, "min": 1, "max": 50, "tooltip":
                      "DDIM steps; the released U-Net is distilled for 4."}),
            "tile_size": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 16, "tooltip":
                          "Output tile side in pixels for large frames (0 = whole frame). Tiles cross-fade; "
                          "a tiled result differs from a whole-frame one."}),
            "tile_overlap": ("INT", {"default": 64, "min": 0, "max": 2048, "step": 16, "tooltip":
                             "Overlap of neighbouring tiles in output pixels."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip":
                     "Seed of the initial noise (drawn frame after frame)."}),
            "compile": ("BOOLEAN", {"default": False, "tooltip":
                        "torch.compile the U-Net and ControlNet: faster after the first frames."}),
            "edge_hint": ("BOOLEAN", {"default": False, "tooltip":
                          "Experimental: transmitted edges as a 4th ControlNet hint channel; needs a model "
                          "fine-tuned with it (the released weights are not)."}),
        }}

    def load(self, model, dtype="fp16", flow="dis", raft_weights="none", steps=4, tile_size=0, tile_overlap=64,
             seed=0, compile=False, edge_hint=False):
        from ..models.receivers import stream
        from ..models.receivers.stream import flow as flows
        if dtype not in ("fp16", "bf16", "fp32"):
            raise _check.MetaVSRInputError(f"dtype: {dtype!r} is not one of fp16, bf16, fp32.")
        if flow not in FLOWS:
            raise _check.MetaVSRInputError(f"flow: {flow!r} is not one of {', '.join(FLOWS)}.")
        steps = _check.number("steps", steps, 1, 50, integer=True)
        for name, v, hi in (("tile_size", tile_size, 8192), ("tile_overlap", tile_overlap, 2048)):
            _check.number(name, v, 0, hi, integer=True)
        roots = comfy_folders("diffusers")
        path = find(model, roots)
        if path is None or not os.path.isdir(path):
            raise _check.MetaVSRInputError(
                f"model: no folder {model!r} in {', '.join(roots) or 'ComfyUI/models/diffusers (not found)'}. "
                f"Download Stream-DiffVSR (huggingface.co/Jamichsu/Stream-DiffVSR) into "
                f"models/diffusers/{model}/ with {stream.LAYOUT}.")
        device = torch_device()
        if device.type == "cpu":
            dtype = "fp32"  # half precision convolutions on a CPU are slow or missing
        estimator = flows.dis if flow == "dis" else flows.zero
        if flow == "raft":
            rpath = find(raft_weights, comfy_folders("optical_flow")) if raft_weights != "none" else None
            try:
                estimator = flows.by_name("raft", rpath, device)
            except flows.RAFTError as e:
                raise _check.MetaVSRInputError(f"raft_weights: {e}") from None
        settings = stream.StreamSettings(steps=steps, flow=estimator, edge_hint=bool(edge_hint))
        try:
            model_obj = _CACHE.get(path, (dtype, str(device), steps, flow, raft_weights, bool(compile),
                                          bool(edge_hint)),
                                   lambda: stream.load(path, dtype=dtype, device=device, settings=settings,
                                                       compile_models=bool(compile)))
        except stream.ModelFolderError as e:
            raise _check.MetaVSRInputError(f"model: {e}") from None
        try:
            options = RunOptions(seed=int(seed), tile=int(tile_size), tile_overlap=int(tile_overlap))
        except ReceiverInputError as e:
            raise _check.MetaVSRInputError(str(e)) from None
        return (Configured(model_obj, options),)


class _Streams:
    """States of the last few streams by id, so the next queue run continues where this one stopped."""

    def __init__(self, limit: int = MAX_STREAMS):
        self._states = collections.OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def get(self, key):
        with self._lock:
            return self._states.get(key)

    def put(self, key, state):
        with self._lock:
            self._states[key] = state
            self._states.move_to_end(key)
            while len(self._states) > self.limit:
                self._states.popitem(last=False)


STREAMS = _Streams()


def _streaming(receiver) -> bool:
    return hasattr(receiver, "start") and hasattr(receiver, "push")


@node("MetaVSR/receiver",
      ("IMAGE", "sr_images", "Super-resolved frames [T,sH,sW,3] float 0..1."),
      (STATE_TYPE, "state", "Where the stream stopped (previous output, LR frame, noise state): feed it to "
                            "the next Stream Super-Resolve node to continue the same video."),
      ("STRING", "info", "Frames, seconds per frame, fps, first-frame latency and peak device memory."))
class MetaVSRStreamSuperResolve:
    """Super-resolves frames with a streaming receiver, frame after frame, and keeps where it stopped:
    with continue_stream on, the next queue run (the next chunk of the same video) continues from the
    last frame of this one, giving exactly the frames of one uninterrupted run. A one-shot receiver
    (embedded, CogVideoX) runs once per call and has no state to carry."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "sr_model": (SR_MODEL_TYPE, {"tooltip": "A receiver from a MetaVSR loader node."}),
                "lr_images": ("IMAGE", {"tooltip": "The next decoded LR frames [T,H,W,3] of the video."}),
                "continue_stream": ("BOOLEAN", {"default": False, "tooltip":
                                    "On: continue from where the last run of this stream_id stopped (queue "
                                    "the next chunk of the same video). Off: start a new stream."}),
                "stream_id": ("STRING", {"default": "stream", "tooltip":
                              "Name under which this stream's state is kept between queue runs."}),
                "temporal_guidance": ("BOOLEAN", {"default": True, "tooltip":
                                      "On: each frame is guided by the flow-warped previous output (the "
                                      "model as trained). Off: every frame runs as a first frame, the "
                                      "per-frame baseline to compare temporal consistency against."}),
            },
            "optional": {
                "state": (STATE_TYPE, {"tooltip": "State from another Stream Super-Resolve node in this graph "
                                       "(overrides continue_stream)."}),
                "edges": ("MASK", {"tooltip": "Decoded edge maps at HR size (models that take edges)."}),
            },
        }

    def run(self, sr_model, lr_images, continue_stream=False, stream_id="stream", temporal_guidance=True,
            state=None, edges=None):
        sr_model, lr = receiver_inputs(sr_model, lr_images)
        t = lr.shape[0]
        if not isinstance(stream_id, str) or not stream_id.strip():
            raise _check.MetaVSRInputError("stream_id: give a name (any text) for this stream.")
        metadata = {"edges": _check.mask("edges", edges).unsqueeze(-1)} if edges is not None else None
        progress = Progress(t)
        receiver = sr_model.receiver
        try:
            if not _streaming(receiver):
                out = sr_model.upscale(lr, metadata, progress=progress)
                return (out.float().clamp(0, 1).cpu(), None, f"{receiver.name}: one-shot receiver, {t} frames "
                                                               f"(no state to carry)")
            if state is None and continue_stream:
                state = STREAMS.get(stream_id)
            options = sr_model.options.replace(temporal=bool(temporal_guidance))
            out, new_state = run_stream(receiver, lr, metadata, options, state, progress)
        except ReceiverInputError as e:
            hint = (" (the stored stream has another size: turn continue_stream off to start a new one)"
                    if continue_stream else "")
            raise _check.MetaVSRInputError(f"{e}{hint}") from None
        finally:
            soft_empty_cache()
        STREAMS.put(stream_id, new_state)
        mode = "" if temporal_guidance else " per frame (no temporal guidance)"
        info = f"{receiver.name}{mode}: frames {new_state['frame'] - t}..{new_state['frame'] - 1}; " + \
            summary(new_state.get("stats", {}))
        return (out.float().clamp(0, 1).cpu(), new_state, info)


NODE_CLASS_MAPPINGS = {"MetaVSRLoadStreamDiffVSR": MetaVSRLoadStreamDiffVSR,
                       "MetaVSRStreamSuperResolve": MetaVSRStreamSuperResolve}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRLoadStreamDiffVSR": "MetaVSR Load Stream-DiffVSR",
                              "MetaVSRStreamSuperResolve": "MetaVSR Stream Super-Resolve"}
