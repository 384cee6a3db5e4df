"""Loader for the embedded receivers that ship with the pack (no download, run on a CPU): the still
x4 network and its causal streaming variant; outputs the shared ``METAVSR_SR_MODEL`` that "MetaVSR
Super-Resolve" (and the streaming nodes) run, like every other receiver."""
import os

from ..models.receivers.base import SR_MODEL_TYPE, Configured, RunOptions
from ..models.receivers.tiny import receiver as tiny
from ..models.receivers.tiny_stream import receiver as tiny_stream
from . import _check
from ._comfy import torch_device
from ._declare import node
from ._models import ModelCache, entries, find

_CACHE = ModelCache()


def weight_dirs() -> tuple:
    """The folders the loader lists (read each time, so a moved pack or a test's folder is honoured)."""
    return tiny.WEIGHTS_DIR, tiny_stream.WEIGHTS_DIR


def weight_files() -> list:
    """The safetensors files in models/receivers/tiny/weights/ and tiny_stream/weights/ (the shipped
    still one first, then the shipped streaming one)."""
    names = entries(list(weight_dirs()), lambda p: p.endswith(".safetensors"))
    first = [os.path.basename(tiny.DEFAULT_WEIGHTS), os.path.basename(tiny_stream.DEFAULT_WEIGHTS)]
    return [n for n in first if n in names or n == first[0]] + [n for n in names if n not in first]


def _load(path: str, device: str):
    if tiny.is_streaming_file(path):
        return tiny_stream.load_stream(path, device=device)
    return tiny.load_embedded(path, device=device)


@node("MetaVSR/receiver",
      (SR_MODEL_TYPE, "sr_model", "Receiver for 'MetaVSR Super-Resolve' or the streaming nodes (x4, metadata: edges)."),
      function="load")
class MetaVSRLoadEmbeddedReceiver:
    """Loads a small 4x receiver that ships with MetaVSR (about 0.6 M parameters, trained by this
    project on JPEG + channel-noise degradations with optional Canny edge metadata): tiny_sr_x4 works
    frame by frame; tiny_stream_x4 is causal, each frame guided by the previous output moved along the
    optical flow (steadier video). No download; on a CPU about a second per 512x512 output. Connect it
    to 'MetaVSR Super-Resolve'; give that node the decoded edge map, or leave it out for pixel-only."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "weights": (weight_files(), {"tooltip": "tiny_sr_x4: per frame; tiny_stream_x4: causal video (both ship "
                                                    "with the pack; train/train_tiny*.py make others)."}),
            "device": (["auto", "cpu"], {"default": "auto", "tooltip":
                       "auto: ComfyUI's compute device (GPU if present); cpu: always the CPU."}),
            "tile_size": ("INT", {"default": 192, "min": 32, "max": 2048, "step": 16, "tooltip":
                          "LR tile side in pixels. Tiles carry a margin wider than the network's reach, "
                          "so the result does not depend on it; smaller tiles use less memory."}),
        }}

    def load(self, weights, device="auto", tile_size=192):
        if weights not in weight_files():
            raise _check.MetaVSRInputError(f"weights: {weights!r} is not in {' or '.join(weight_dirs())}; pick one of "
                                           f"{weight_files()}.")
        if device not in ("auto", "cpu"):
            raise _check.MetaVSRInputError(f"device: {device!r} is not 'auto' or 'cpu'.")
        tile = _check.number("tile_size", tile_size, 32, 2048, integer=True)
        path = find(weights, weight_dirs()) or os.path.join(weight_dirs()[0], weights)
        if not os.path.exists(path):
            raise _check.MetaVSRInputError(f"weights: {path} is missing; re-clone the pack (it ships with it).")
        dev = "cpu" if device == "cpu" else str(torch_device())
        try:
            model = _CACHE.get(path, (dev,), lambda: _load(path, dev))
        except tiny.TinyWeightsError as e:  # damaged / mismatched file: the message names it and the fix
            raise _check.MetaVSRInputError(f"weights: {e}") from None
        return (Configured(model, RunOptions(tile=tile * model.scale)),)


NODE_CLASS_MAPPINGS = {"MetaVSRLoadEmbeddedReceiver": MetaVSRLoadEmbeddedReceiver}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRLoadEmbeddedReceiver": "MetaVSR Load Embedded Receiver"}
