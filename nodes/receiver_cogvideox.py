"""Loader for the CogVideoX one-step SR receiver (MetaSR fine-tunes, DOVE, CogVideoX): outputs the
shared ``METAVSR_SR_MODEL`` that "MetaVSR Super-Resolve" runs, so graphs swap receivers freely.

Folders come from ComfyUI's ``models/diffusers/`` (and extra_model_paths.yaml); the layout each folder
needs is in ``models/receivers/cogvideox/loading.py`` and the README.
"""
import copy
import os

from ..models.receivers.base import SR_MODEL_TYPE, Configured, ReceiverInputError, RunOptions
from . import _check
from ._comfy import offload_device, torch_device
from ._declare import node
from ._models import ModelCache, comfy_folders, entries, find

OFFERED = ("DOVE", "MetaSR-edges")  # the README's folder names, listed even before they exist
KIND_CHOICES = ["auto", "none", "edges", "depth", "edges+depth"]
_CACHE = ModelCache()


def _is_cogvideox(path):
    return os.path.isfile(os.path.join(path, "transformer", "config.json"))


def model_names() -> list:
    """Folder names under every ``diffusers`` model folder that hold a transformer; the README's names
    (``OFFERED``) are always listed so shipped workflows open (loading a missing one says where it goes)."""
    return sorted(set(OFFERED) | set(entries(comfy_folders("diffusers"), _is_cogvideox)))


def resolve(name: str) -> str:
    roots = comfy_folders("diffusers")
    path = find(name, roots)
    if path is not None and os.path.isdir(path):
        return path
    from ..models.receivers.cogvideox.loading import LAYOUT
    raise _check.MetaVSRInputError(
        f"model: no folder {name!r} in {', '.join(roots) or 'ComfyUI/models/diffusers (not found)'}. "
        f"Download DOVE (huggingface.co/zhengchen1999/DOVE) or CogVideoX-2b into models/diffusers/{name}/ "
        f"with {LAYOUT}.")


@node("MetaVSR/receiver",
      (SR_MODEL_TYPE, "sr_model", "Receiver for 'MetaVSR Super-Resolve' (x4; metadata kinds from metasr.json)."),
      function="load")
class MetaVSRLoadCogVideoXSR:
    """Loads a CogVideoX-family one-step super-resolution model (DOVE, MetaSR fine-tunes with metadata
    tokens, CogVideoX-2b/5b/1.5-5B) from models/diffusers/. Connect it to 'MetaVSR Super-Resolve'.
    Output is 4x the input size."""
    NEEDS_WEIGHTS = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_names(), {"tooltip": "A diffusers folder in models/diffusers/ (transformer/, "
                                          "vae/, scheduler/; see the README)."}),
                "dtype": (["bf16", "fp16", "fp32"], {"default": "bf16", "tooltip":
                          "Weights/compute precision. DOVE and CogVideoX are trained in bf16."}),
                "offload": (["model", "none", "sequential"], {"default": "model", "tooltip":
                            "model: each model moves to the GPU only for its stage (frees VRAM between "
                            "runs); none: stay on the GPU (fastest); sequential: one DiT block at a "
                            "time (least VRAM, slowest)."}),
                "tile_size": ("INT", {"default": 720, "min": 0, "max": 8192, "step": 16, "tooltip":
                              "DiT window in output pixels (0 = whole frame). Windows overlap and are "
                              "cross-faded, so there are no seams."}),
                "tile_overlap": ("INT", {"default": 128, "min": 0, "max": 2048, "step": 16, "tooltip":
                                 "Overlap of neighbouring DiT windows in output pixels."}),
                "chunk_frames": ("INT", {"default": 49, "min": 0, "max": 1024, "tooltip":
                                 "DiT window in frames (0 = whole video); chunks overlap and cross-fade."}),
                "chunk_overlap": ("INT", {"default": 16, "min": 0, "max": 512, "tooltip":
                                  "Overlap of neighbouring chunks in frames."}),
                "vae_tiling": ("BOOLEAN", {"default": True, "tooltip":
                               "Blended VAE tiling (diffusers); needed above ~480p on 24 GB."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip":
                         "Seed of the VAE posterior sample (DOVE samples the encoder output)."}),
                "timestep": ("INT", {"default": 399, "min": 1, "max": 999, "tooltip":
                             "Diffusion timestep of the single step; DOVE and MetaSR are trained at 399."}),
                "metadata_kinds": (KIND_CHOICES, {"default": "auto", "tooltip":
                                   "Metadata the model was trained with; auto reads metasr.json in the "
                                   "folder (absent: none, as for DOVE and CogVideoX)."}),
            }
        }

    def load(self, model, dtype="bf16", offload="model", tile_size=720, tile_overlap=128, chunk_frames=49,
             chunk_overlap=16, vae_tiling=True, seed=0, timestep=399, metadata_kinds="auto"):
        from ..models.receivers.cogvideox import MetaSRModelError, load
        for name, v, lo, hi in (("tile_size", tile_size, 0, 8192), ("tile_overlap", tile_overlap, 0, 2048),
                                ("chunk_frames", chunk_frames, 0, 1024), ("chunk_overlap", chunk_overlap, 0, 512),
                                ("timestep", timestep, 1, 999)):
            _check.number(name, v, lo, hi, integer=True)
        if tile_size and tile_overlap >= tile_size:
            raise _check.MetaVSRInputError(f"tile_overlap: {tile_overlap} must be smaller than tile_size "
                                           f"{tile_size}.")
        if chunk_frames and chunk_overlap >= chunk_frames:
            raise _check.MetaVSRInputError(f"chunk_overlap: {chunk_overlap} must be smaller than "
                                           f"chunk_frames {chunk_frames}.")
        if metadata_kinds not in KIND_CHOICES:
            raise _check.MetaVSRInputError(f"metadata_kinds: use one of {', '.join(KIND_CHOICES)}.")
        if dtype not in ("bf16", "fp16", "fp32"):
            raise _check.MetaVSRInputError(f"dtype: {dtype!r} is not one of bf16, fp16, fp32.")
        if offload not in ("model", "none", "sequential"):
            raise _check.MetaVSRInputError(f"offload: {offload!r} is not one of model, none, sequential.")
        path = resolve(model)
        device = torch_device()
        try:
            pipe = _CACHE.get(path, (dtype, str(device), offload), lambda: load(
                path, dtype=dtype, device=device, offload=offload, offload_device=offload_device()))
        except MetaSRModelError as e:  # missing / damaged / mismatched file: the message names it
            raise _check.MetaVSRInputError(f"model: {e}") from None
        if metadata_kinds != "auto":
            pipe = copy.copy(pipe)  # the same weights (and run lock), told which kinds they were trained with
            pipe.metadata_kinds = () if metadata_kinds == "none" else tuple(metadata_kinds.split("+"))
        try:
            options = RunOptions(seed=int(seed), tile=int(tile_size), tile_overlap=int(tile_overlap),
                                 chunk=int(chunk_frames), chunk_overlap=int(chunk_overlap), segment=121,
                                 segment_overlap=8, timestep=int(timestep), vae_tiling=bool(vae_tiling))
        except ReceiverInputError as e:
            raise _check.MetaVSRInputError(str(e)) from None
        return (Configured(pipe, options),)


NODE_CLASS_MAPPINGS = {"MetaVSRLoadCogVideoXSR": MetaVSRLoadCogVideoXSR}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRLoadCogVideoXSR": "MetaVSR Load CogVideoX SR"}
