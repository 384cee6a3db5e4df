"""STAR nodes: the loader (U-Net + ControlNet checkpoint, SVD VAE) and the prompt / sampler node that
gives it its text (from ComfyUI's CLIP Text Encode, or an embeddings file) and its sampler settings.
The result is the shared ``METAVSR_SR_MODEL`` that "MetaVSR Super-Resolve" runs.

Files: checkpoints and embedding files in ``models/STAR/`` (ComfyUI folder name ``star``), the VAE as a
diffusers folder in ``models/diffusers/``; extra_model_paths.yaml honoured. Layout:
``models/receivers/star/loading.py`` and the README.
"""
import json
import os

import torch

from ..models.receivers.base import SR_MODEL_TYPE, Configured, ReceiverInputError, RunOptions
from . import _check
from ._comfy import offload_device, register_model_folder, torch_device
from ._declare import node
from ._models import ModelCache, comfy_folders, entries, find

OFFERED_CHECKPOINTS = ("light_deg.pt", "heavy_deg.pt")   # the release's names, listed before they exist
OFFERED_VAE = ("stable-video-diffusion-vae",)
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
_CACHE = ModelCache()
register_model_folder("star", "STAR")


def _is_checkpoint(path):
    from ..models.receivers.star.loading import CHECKPOINT_EXT
    if not (os.path.isfile(path) and path.lower().endswith(CHECKPOINT_EXT)):
        return False
    if path.endswith(".safetensors"):   # embedding files live beside the checkpoints
        from safetensors import safe_open
        try:
            with safe_open(path, framework="pt") as f:
                return "positive" not in f.keys()
        except Exception:
            return True                  # a damaged checkpoint is still listed: loading it says what is wrong
    return True


def _is_text(path):
    if not (os.path.isfile(path) and path.endswith(".safetensors")):
        return False
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt") as f:
            return "positive" in f.keys()
    except Exception:
        return False


def _is_svd_vae(path):
    cfg = os.path.join(path, "config.json")
    if not os.path.isfile(cfg) or os.path.getsize(cfg) > 1 << 20:
        return False
    try:
        with open(cfg) as f:
            return json.load(f).get("_class_name") == "AutoencoderKLTemporalDecoder"
    except (OSError, ValueError, AttributeError):
        return False


def checkpoints() -> list:
    return sorted(set(OFFERED_CHECKPOINTS) | set(entries(comfy_folders("star"), _is_checkpoint)))


def vae_folders() -> list:
    return sorted(set(OFFERED_VAE) | set(entries(comfy_folders("diffusers"), _is_svd_vae)))


def text_files() -> list:
    return ["none"] + entries(comfy_folders("star"), _is_text)


def _where(kind):
    roots = comfy_folders(kind)
    return ", ".join(roots) or f"ComfyUI/models/{'STAR' if kind == 'star' else kind} (not found)"


@node("MetaVSR/receiver",
      (SR_MODEL_TYPE, "sr_model", "STAR without text: connect it to 'MetaVSR STAR Prompt', then to 'MetaVSR "
                                  "Super-Resolve'."),
      function="load")
class MetaVSRLoadSTAR:
    """Loads STAR (text-to-video-prior video SR, I2VGen-XL-based: a video U-Net with LIEM and a
    ControlNet on the LR latent) from models/STAR/ and its SVD temporal VAE from models/diffusers/.
    Frames run in overlapping, cross-faded chunks and tiles, so long and large videos fit in memory.
    Output is 4x the input."""
    NEEDS_WEIGHTS = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "checkpoint": (checkpoints(), {"tooltip": "light_deg.pt / heavy_deg.pt (huggingface.co/SherryX/STAR, "
                                           "I2VGen-XL-based/) or a .safetensors conversion, in models/STAR/."}),
            "vae": (vae_folders(), {"tooltip": "The vae/ folder of stabilityai/stable-video-diffusion-img2vid "
                                               "(AutoencoderKLTemporalDecoder), in models/diffusers/."}),
            "dtype": (list(DTYPES), {"default": "fp16", "tooltip": "Compute precision; STAR runs in fp16. "
                                                                   "On a CPU fp32 is used."}),
            "offload": (["none", "model", "sequential"], {"default": "model", "tooltip":
                        "none: everything stays on the GPU (fastest); model: the U-Net and the VAE take "
                        "turns on the GPU; sequential: also the U-Net stage by stage (least VRAM)."}),
            "chunk_frames": ("INT", {"default": 32, "min": 0, "max": 1024, "tooltip":
                             "U-Net window in frames (0 = the whole clip); STAR is trained on 32."}),
            "chunk_overlap": ("INT", {"default": 16, "min": 0, "max": 512, "tooltip":
                              "Frames shared by neighbouring chunks, cross-faded (STAR cuts them at the middle)."}),
            "tile_size": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 64, "tooltip":
                          "U-Net window in output pixels (0 = the whole frame); windows overlap and cross-fade."}),
            "tile_overlap": ("INT", {"default": 128, "min": 0, "max": 2048, "step": 16, "tooltip":
                             "Overlap of neighbouring tiles in output pixels."}),
            "vae_tile_size": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 64, "tooltip":
                              "VAE tile side in output pixels (0 = whole frames); tiles cross-fade. Use ~1024 "
                              "for 4K outputs or small GPUs."}),
        }}

    def load(self, checkpoint, vae, dtype="fp16", offload="model", chunk_frames=32, chunk_overlap=16, tile_size=0,
             tile_overlap=128, vae_tile_size=0):
        from ..models.receivers import star
        if dtype not in DTYPES:
            raise _check.MetaVSRInputError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}.")
        if offload not in ("none", "model", "sequential"):
            raise _check.MetaVSRInputError(f"offload: {offload!r} is not one of none, model, sequential.")
        for name, v, hi in (("chunk_frames", chunk_frames, 1024), ("chunk_overlap", chunk_overlap, 512),
                            ("tile_size", tile_size, 8192), ("tile_overlap", tile_overlap, 2048),
                            ("vae_tile_size", vae_tile_size, 8192)):
            _check.number(name, v, 0, hi, integer=True)
        ckpt = find(checkpoint, comfy_folders("star"))
        if ckpt is None or not os.path.isfile(ckpt):
            raise _check.MetaVSRInputError(
                f"checkpoint: no file {checkpoint!r} in {_where('star')}. Download light_deg.pt or heavy_deg.pt "
                f"(huggingface.co/SherryX/STAR, folder I2VGen-XL-based) into ComfyUI/models/STAR/.")
        vae_dir = find(vae, comfy_folders("diffusers"))
        if vae_dir is None or not os.path.isdir(vae_dir):
            raise _check.MetaVSRInputError(
                f"vae: no folder {vae!r} in {_where('diffusers')}. Download the vae/ folder of "
                f"stabilityai/stable-video-diffusion-img2vid (config.json + diffusion_pytorch_model"
                f"[.fp16].safetensors) into ComfyUI/models/diffusers/{OFFERED_VAE[0]}/.")
        device = torch_device()
        if device.type == "cpu":
            dtype = "fp32"
        vae_file = star.loading.vae_weights(vae_dir) or vae_dir
        key = (dtype, str(device), offload, os.path.abspath(vae_file), os.path.getmtime(vae_file))

        def build():
            try:
                unet, extra = star.load_unet(ckpt, DTYPES[dtype], "cpu")
            except star.STARModelError as e:
                raise _check.MetaVSRInputError(f"checkpoint: {e}") from None
            try:
                v = star.load_vae(vae_dir, DTYPES[dtype], "cpu")
            except star.STARModelError as e:
                raise _check.MetaVSRInputError(f"vae: {e}") from None
            model = star.STAR(unet, v, None, None, device=device, dtype=DTYPES[dtype], offload=offload,
                              offload_device=offload_device(), name=f"STAR {os.path.basename(ckpt)}")
            model.ignored_keys = extra
            return model
        try:
            model = _CACHE.get(ckpt, key, build)
            settings = dict(chunk=int(chunk_frames), chunk_overlap=int(chunk_overlap), tile=int(tile_size),
                            tile_overlap=int(tile_overlap), vae_tile=int(vae_tile_size))
            return (Configured(model.configured(**settings), RunOptions()),)
        except star.STARInputError as e:
            raise _check.MetaVSRInputError(str(e)) from None


def conditioning_tensor(name: str, cond, truncate: bool) -> torch.Tensor:
    """ComfyUI CONDITIONING ``[[tensor [1, L, D], {...}], ...]`` -> [1, L, 1024] float32 (first entry)."""
    try:
        t = cond[0][0]
    except (TypeError, IndexError, KeyError):
        raise _check.MetaVSRInputError(f"{name}: not a CONDITIONING; connect a CLIP Text Encode node.") from None
    if not isinstance(t, torch.Tensor) or t.ndim != 3:
        raise _check.MetaVSRInputError(f"{name}: not a CONDITIONING; connect a CLIP Text Encode node.")
    if t.shape[-1] != 1024:
        raise _check.MetaVSRInputError(
            f"{name}: the text encoder gives {t.shape[-1]}-wide states; STAR needs OpenCLIP ViT-H/14 (1024): load "
            f"it with Load CLIP, type stable_diffusion (the text encoder of SD 2.x), or a checkpoint of SD 2.x.")
    t = t[:1].float().cpu()
    return t[:, :77] if truncate else t


@node("MetaVSR/receiver",
      (SR_MODEL_TYPE, "sr_model", "STAR with its text and sampler settings, for 'MetaVSR Super-Resolve'."),
      ("STRING", "info", "The sampler as it will run (steps, start, guidance, colour fix, memory)."))
class MetaVSRSTARPrompt:
    """Gives STAR its text and sampler settings. Connect CLIP Text Encode outputs (SD 2.x's OpenCLIP text
    encoder): the positive prompt should end with STAR's quality suffix (the workflow's does) and the
    negative is STAR's. Or pick an embeddings file in models/STAR/. Sampler: STAR's 'fast' schedule (15
    steps from t = 899), classifier-free guidance with rescale, colour fix against the LR input."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "sr_model": (SR_MODEL_TYPE, {"tooltip": "From MetaVSR Load STAR."}),
                "mode": (["fast", "normal"], {"default": "fast", "tooltip":
                         "fast: STAR's 4 steps to t = 500 then 11 (15 in all, what it was tuned for); normal: "
                         "'steps' evenly spaced (trailing)."}),
                "steps": ("INT", {"default": 15, "min": 1, "max": 200, "tooltip": "Steps in normal mode."}),
                "cfg": ("FLOAT", {"default": 7.5, "min": 0.0, "max": 30.0, "step": 0.1, "tooltip":
                        "Classifier-free guidance scale (STAR: 7.5)."}),
                "rescale": ("FLOAT", {"default": 0.2, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                            "Guidance rescale towards the positive branch's std (STAR: 0.2)."}),
                "noise_level": ("INT", {"default": 900, "min": 2, "max": 1000, "tooltip":
                                "SDEdit start: the LR latent is noised to t = noise_level - 1 (STAR: 900). "
                                "Lower keeps more of the input."}),
                "colour_fix": (["adain", "wavelet", "none"], {"default": "adain", "tooltip":
                               "Match the output's colours to the LR: adain (STAR's), wavelet (keeps detail), none."}),
                "seed": ("INT", {"default": 666, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip":
                         "Seed of the VAE sample, the SDEdit noise and the sampler noise (STAR uses 666)."}),
                "truncate_77": ("BOOLEAN", {"default": True, "tooltip":
                                "Keep the first 77 tokens, as STAR's tokenizer does (ComfyUI encodes long "
                                "prompts as several 77-token chunks)."}),
                "canvas": ("BOOLEAN", {"default": False, "tooltip":
                           "STAR's white 1280x720 canvas around smaller outputs (its released behaviour); off "
                           "pads only to a multiple of 8."}),
            },
            "optional": {
                "positive": ("CONDITIONING", {"tooltip": "CLIP Text Encode of the prompt + STAR's suffix."}),
                "negative": ("CONDITIONING", {"tooltip": "CLIP Text Encode of STAR's negative prompt."}),
                "embeddings": (text_files(), {"tooltip": "Or: saved 'positive'/'negative' embeddings in "
                                                         "models/STAR/ (used when positive is not connected)."}),
            },
        }

    def run(self, sr_model, mode="fast", steps=15, cfg=7.5, rescale=0.2, noise_level=900, colour_fix="adain",
            seed=666, truncate_77=True, canvas=False, positive=None, negative=None, embeddings="none"):
        from ..models.receivers import star
        if not isinstance(sr_model, Configured) or not isinstance(sr_model.receiver, star.STAR):
            raise _check.MetaVSRInputError("sr_model: connect MetaVSR Load STAR (this node configures STAR only).")
        steps = _check.number("steps", steps, 1, 200, integer=True)
        noise_level = _check.number("noise_level", noise_level, 2, 1000, integer=True)
        cfg = _check.number("cfg", cfg, 0, 30)
        rescale = _check.number("rescale", rescale, 0, 1)
        if positive is not None:
            pos = conditioning_tensor("positive", positive, bool(truncate_77))
            neg = conditioning_tensor("negative", negative, bool(truncate_77)) if negative is not None else None
        elif embeddings and embeddings != "none":
            path = find(embeddings, comfy_folders("star"))
            if path is None:
                raise _check.MetaVSRInputError(f"embeddings: no file {embeddings!r} in {_where('star')}.")
            try:
                pos, neg = star.load_text(path)
            except star.STARModelError as e:
                raise _check.MetaVSRInputError(f"embeddings: {e}") from None
        else:
            raise _check.MetaVSRInputError("positive: connect CLIP Text Encode (SD 2.x's CLIP; see the README), or "
                                           "pick an embeddings file.")
        if neg is None and cfg != 1.0:
            raise _check.MetaVSRInputError("negative: classifier-free guidance needs a negative prompt; connect "
                                           "CLIP Text Encode of STAR's negative prompt, or set cfg to 1.")
        try:
            model = sr_model.receiver.configured(positive=pos, negative=neg, mode=mode, steps=int(steps),
                                                 guidance=float(cfg), rescale=float(rescale),
                                                 noise_level=int(noise_level), colour_fix=colour_fix,
                                                 canvas=bool(canvas))
            options = sr_model.options.replace(seed=int(seed))
        except ReceiverInputError as e:
            raise _check.MetaVSRInputError(str(e)) from None
        return (Configured(model, options), model.describe())


NODE_CLASS_MAPPINGS = {"MetaVSRLoadSTAR": MetaVSRLoadSTAR, "MetaVSRSTARPrompt": MetaVSRSTARPrompt}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRLoadSTAR": "MetaVSR Load STAR", "MetaVSRSTARPrompt": "MetaVSR STAR Prompt"}
