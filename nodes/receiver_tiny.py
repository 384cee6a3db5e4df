"""Loader for the embedded receiver that ships with the pack (no download, runs on a CPU): outputs
the shared ``METAVSR_SR_MODEL`` that "MetaVSR Super-Resolve" runs, like every other receiver."""
import os

from ..models.receivers.base import SR_MODEL_TYPE, Configured, RunOptions
from ..models.receivers.tiny import receiver as tiny
from . import _check
from ._comfy import torch_device
from ._declare import node
from ._models import ModelCache, entries

_CACHE = ModelCache()


def weight_files() -> list:
    """The safetensors files in models/receivers/tiny/weights/ (the shipped one first)."""
    names = entries([tiny.WEIGHTS_DIR], lambda p: p.endswith(".safetensors"))
    default = os.path.basename(tiny.DEFAULT_WEIGHTS)
    return [default] + [n for n in names if n != default]


@node("MetaVSR/receiver",
      (SR_MODEL_TYPE, "sr_model", "Receiver for 'MetaVSR Super-Resolve' (x4, metadata: edges)."),
      function="load")
class MetaVSRLoadEmbeddedReceiver:
    """Loads the small 4x receiver that ships with MetaVSR (about 0.6 M parameters, trained by this
    project on JPEG + channel-noise degradations with optional Canny edge metadata). Needs no download
    and runs on a CPU in about a second per 512x512 output. Connect it to 'MetaVSR Super-Resolve'; give
    that node the decoded edge map, or leave it out for pixel-only."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "weights": (weight_files(), {"tooltip": "Weights in models/receivers/tiny/weights/ (tiny_sr_x4.safetensors "
                                                    "ships with the pack; train/train_tiny.py makes others)."}),
            "device": (["auto", "cpu"], {"default": "auto", "tooltip":
                       "auto: ComfyUI's compute device (GPU if present); cpu: always the CPU."}),
            "tile_size": ("INT", {"default": 192, "min": 32, "max": 2048, "step": 16, "tooltip":
                          "LR tile side in pixels. Tiles carry a margin wider than the network's reach, "
                          "so the result does not depend on it; smaller tiles use less memory."}),
        }}

    def load(self, weights, device="auto", tile_size=192):
        if weights not in weight_files():
            raise _check.MetaVSRInputError(f"weights: {weights!r} is not in {tiny.WEIGHTS_DIR}; pick one of "
                                           f"{weight_files()}.")
        if device not in ("auto", "cpu"):
            raise _check.MetaVSRInputError(f"device: {device!r} is not 'auto' or 'cpu'.")
        tile = _check.number("tile_size", tile_size, 32, 2048, integer=True)
        path = os.path.join(tiny.WEIGHTS_DIR, weights)
        if not os.path.exists(path):
            raise _check.MetaVSRInputError(f"weights: {path} is missing; re-clone the pack (it ships with it).")
        dev = "cpu" if device == "cpu" else str(torch_device())
        try:
            model = _CACHE.get(path, (dev,), lambda: tiny.load_embedded(path, device=dev))
        except tiny.TinyWeightsError as e:  # damaged / mismatched file: the message names it and the fix
            raise _check.MetaVSRInputError(f"weights: {e}") from None
        return (Configured(model, RunOptions(tile=tile * model.scale)),)


NODE_CLASS_MAPPINGS = {"MetaVSRLoadEmbeddedReceiver": MetaVSRLoadEmbeddedReceiver}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRLoadEmbeddedReceiver": "MetaVSR Load Embedded Receiver"}
