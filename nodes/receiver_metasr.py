"""Loader for the CogVideoX one-step SR receiver (MetaSR fine-tunes, DOVE, CogVideoX): outputs the
shared ``METAVSR_SR_MODEL`` that "MetaVSR Super-Resolve" runs, so graphs swap receivers freely.

Folders come from ComfyUI's ``models/diffusers/`` (and extra_model_paths.yaml); the layout each folder
needs is in ``models/metasr/loading.py`` and the README.
"""
import copy
import os

from ..models.receiver import SR_MODEL_TYPE
from . import _check
from ._comfy import model_folders, offload_device, torch_device

OFFERED = ("DOVE", "MetaSR-edges")  # the README's folder names, listed even before they exist
KIND_CHOICES = ["auto", "none", "edges", "depth", "edges+depth"]
_CACHE = {}  # (path, mtime, dtype, device, offload) -> pipeline; one entry, weights are large


def _is_cogvideox(path):
    return os.path.isfile(os.path.join(path, "transformer", "config.json"))


def model_names() -> list:
    """Folder names under every ``diffusers`` model folder that hold a transformer; the README's names
    (``OFFERED``) are always listed so shipped workflows open (loading a missing one says where it goes)."""
    names = set(OFFERED)
    for root in model_folders("diffusers"):
        if os.path.isdir(root):
            names.update(n for n in os.listdir(root) if _is_cogvideox(os.path.join(root, n)))
    return sorted(names)


def resolve(name: str) -> str:
    if os.path.isabs(name) and os.path.isdir(name):
        return name
    roots = model_folders("diffusers")
    for root in roots:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            return path
    from ..models.metasr.loading import LAYOUT
    raise _check.MetaVSRInputError(
        f"model: no folder {name!r} in {', '.join(roots) or 'ComfyUI/models/diffusers (not found)'}. "
        f"Download DOVE (huggingface.co/zhengchen1999/DOVE) or CogVideoX-2b into models/diffusers/{name}/ "
        f"with {LAYOUT}.")


class MetaVSRLoadCogVideoXSR:
    DESCRIPTION = ("Loads a CogVideoX-family one-step super-resolution model (DOVE, MetaSR fine-tunes with "
                   "metadata tokens, CogVideoX-2b/5b/1.5-5B) from models/diffusers/. Connect it to "
                   "'MetaVSR Super-Resolve'. Output is 4x the input size.")
    CATEGORY = "MetaVSR/receiver"
    RETURN_TYPES = (SR_MODEL_TYPE,)
    RETURN_NAMES = ("sr_model",)
    OUTPUT_TOOLTIPS = ("Receiver for 'MetaVSR Super-Resolve' (x4; metadata kinds from metasr.json).",)
    FUNCTION = "load"
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
        from ..models.metasr import MetaSRModelError, load
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
        key = (os.path.abspath(path), os.path.getmtime(path), dtype, str(device), offload)
        pipe = _CACHE.get(key)
        if pipe is None:
            _CACHE.clear()
            try:
                pipe = load(path, dtype=dtype, device=device, offload=offload, offload_device=offload_device())
            except MetaSRModelError as e:  # missing / damaged / mismatched file: the message names it
                raise _check.MetaVSRInputError(f"model: {e}") from None
            _CACHE[key] = pipe
        view = copy.copy(pipe)  # settings are per node; the weights are shared
        view.tile, view.tile_overlap = int(tile_size), int(tile_overlap)
        view.chunk, view.chunk_overlap = int(chunk_frames), int(chunk_overlap)
        view.vae_tiling, view.seed, view.timestep = bool(vae_tiling), int(seed), int(timestep)
        if metadata_kinds != "auto":
            view.metadata_kinds = () if metadata_kinds == "none" else tuple(metadata_kinds.split("+"))
        return (view,)


NODE_CLASS_MAPPINGS = {"MetaVSRLoadCogVideoXSR": MetaVSRLoadCogVideoXSR}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRLoadCogVideoXSR": "MetaVSR Load CogVideoX SR"}
