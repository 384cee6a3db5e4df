"""Receiver node family: one SR node that runs any ``METAVSR_SR_MODEL`` (embedded, CogVideoX, ...).

Loaders live in ``receiver_<family>.py`` modules and output the shared type (a receiver with the
options its loader chose, ``models.receivers.base.Configured``), so a graph built around this node
runs with any receiver.
"""
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
            },
        }

    def run(self, sr_model, lr_images, use_metadata=True, edges=None, depth=None):
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
        metadata = {}
        if use_metadata:
            metadata = {k: _metadata_map(k, v) for k, v in (("edges", edges), ("depth", depth)) if v is not None}
        progress = Progress(1)
        try:
            out = sr_model.upscale(lr, metadata or None, progress=progress)
        except ReceiverInputError as e:  # names the input (edges, depth, lr) and the fix
            raise _check.MetaVSRInputError(str(e)) from None
        finally:
            soft_empty_cache()  # give the device memory of the run back to ComfyUI's other models
        return (out.float().clamp(0, 1).cpu(),)


NODE_CLASS_MAPPINGS = {"MetaVSRSuperResolve": MetaVSRSuperResolve}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRSuperResolve": "MetaVSR Super-Resolve"}
