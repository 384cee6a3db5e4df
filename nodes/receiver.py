"""Receiver node family: one SR node that runs any ``METAVSR_SR_MODEL`` (embedded, CogVideoX, ...).

Loaders live in ``receiver_<model>.py`` modules and output the shared model type, so a graph built
around this node runs with any receiver.
"""
from ..models.receiver import SR_MODEL_TYPE, SRModel
from . import _check
from ._comfy import Progress

MAX_SIDE = 16384  # output pixels per side; beyond it frames are better cropped than allocated


def _metadata_map(name, value, frames, hr_h, hr_w):
    """MASK [B,H,W] or IMAGE [B,H,W,C] at HR size -> [T,H,W,1] float 0..1 (B = 1 broadcasts)."""
    if value.ndim == 4:
        value = _check.image(name, value, channels=(1, 3)).mean(dim=-1)
    else:
        value = _check.mask(name, value)
    b, h, w = value.shape
    if (h, w) != (hr_h, hr_w):
        raise _check.MetaVSRInputError(
            f"{name}: is {w}x{h} but the output is {hr_w}x{hr_h}; metadata maps are sent at HR size "
            f"(compute them on the HR frames, or upscale a low-resolution map with nearest-neighbour).")
    if b not in (1, frames):
        raise _check.MetaVSRInputError(f"{name}: has {b} frames but lr_images has {frames}; give one "
                                       f"map per frame or a single map for all frames.")
    return value.expand(frames, h, w).unsqueeze(-1).contiguous()


class MetaVSRSuperResolve:
    DESCRIPTION = ("Super-resolves decoded LR frames with any MetaVSR receiver model, optionally guided "
                   "by transmitted metadata (decoded edge map, depth). Leave a metadata input "
                   "unconnected to run pixel-only.")
    CATEGORY = "MetaVSR/receiver"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("sr_images",)
    OUTPUT_TOOLTIPS = ("Super-resolved frames [T,sH,sW,3] float 0..1 (s = the model's scale).",)
    FUNCTION = "run"

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
        if not isinstance(sr_model, SRModel):
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
            for kind, value in (("edges", edges), ("depth", depth)):
                if value is None:
                    continue
                if kind not in sr_model.metadata_kinds:
                    accepted = ", ".join(sr_model.metadata_kinds) or "none"
                    raise _check.MetaVSRInputError(
                        f"{kind}: the model {sr_model.name!r} does not take {kind} metadata (it accepts: "
                        f"{accepted}); disconnect it or load a model trained with it.")
                metadata[kind] = _metadata_map(kind, value, t, h * s, w * s)
        out = sr_model.upscale(lr, metadata or None, progress=Progress(1))
        return (out.float().clamp(0, 1).cpu(),)



NODE_CLASS_MAPPINGS = {"MetaVSRSuperResolve": MetaVSRSuperResolve}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRSuperResolve": "MetaVSR Super-Resolve"}
