"""Loading STAR: the U-Net + ControlNet checkpoint, the SVD temporal-decoder VAE and the text embeddings,
from local files only (nothing downloads).

Files (ComfyUI folder names in brackets; the README has the whole layout)::

    [star]      light_deg.pt | heavy_deg.pt          the released checkpoints (SherryX/STAR,
                                                     I2VGen-XL-based/), torch.save'd state dicts
                <name>.safetensors                   the same converted (tools/convert_star.py), with
                                                     the model config in its metadata ("star_config")
                <name>.json (optional)               a config beside a .pt (tests' tiny models)
    [diffusers] <vae>/config.json + diffusion_pytorch_model[.fp16].safetensors
                                                     AutoencoderKLTemporalDecoder (the "vae" folder
                                                     of stabilityai/stable-video-diffusion-img2vid)
    [star]      <prompts>.safetensors (optional)     "positive" / "negative" [1, L, 1024] text
                                                     embeddings (OpenCLIP ViT-H/14, penultimate layer
                                                     + final LayerNorm); ComfyUI's own CLIP (type
                                                     stable_diffusion) gives the same

A checkpoint is read header-first: ``.pt`` files memory-mapped with ``weights_only=True`` (no pickle
code runs; the state dict may sit under "state_dict", as the authors allow), safetensors header-only.
Its keys and shapes must be exactly those of the model its config describes (missing or mis-shaped
tensors are refused, listed; tensors the model does not have are reported and ignored: the authors
load with ``strict=False``), before any weight is copied.
"""
import json
import os
from typing import Optional, Tuple

import torch

from ...weights_file import mismatch_report
from ..folder import ModelFolderError, is_oom, pt_state, read_json, short, unreadable
from .unet import STARConfig, STARUNet, key_shapes

CHECKPOINT_EXT = (".pt", ".pth", ".ckpt", ".safetensors")
CONFIG_KEY = "star_config"        # safetensors metadata key holding STARConfig.to_dict() as JSON
VAE_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
TEXT_WIDTH = 1024
MAX_TEXT_TOKENS = 77 * 8


class STARModelError(ModelFolderError):
    """A STAR checkpoint, VAE folder or embedding file is missing, damaged or of another model."""


# --------------------------------------------------------------------------- the checkpoint
def _pt_state(path: str) -> dict:
    return pt_state(path, STARModelError, unwrap="state_dict",
                    what="a STAR checkpoint: download light_deg.pt or heavy_deg.pt again")


def _safetensors_header(path: str) -> Tuple[dict, dict]:
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt") as f:
            layout = {k: (tuple(f.get_slice(k).get_shape()), str(f.get_slice(k).get_dtype())) for k in f.keys()}
            return layout, dict(f.metadata() or {})
    except Exception as e:
        if is_oom(e):
            raise
        raise unreadable(path, f"is not a readable safetensors file ({type(e).__name__}: {e})", STARModelError) from None


def checkpoint_config(path: str, metadata: Optional[dict] = None) -> STARConfig:
    """The config of a checkpoint: its safetensors metadata, else ``<stem>.json`` beside it, else the
    released model's."""
    raw, where = None, None
    if metadata and CONFIG_KEY in metadata:
        raw, where = metadata[CONFIG_KEY], f"{path} (metadata {CONFIG_KEY!r})"
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise STARModelError(f"{where} is not JSON; convert the checkpoint again with "
                                 f"tools/convert_star.py.") from None
    else:
        side = os.path.splitext(path)[0] + ".json"
        if os.path.isfile(side):
            raw, where = read_json(side, "delete it to use the released model's config", STARModelError), side
    if raw is None:
        return STARConfig()
    if not isinstance(raw, dict):
        raise STARModelError(f"{where} must hold a JSON object; delete it to use the released model's config.")
    try:
        cfg = STARConfig.from_dict(raw)
        ints = (cfg.dim, cfg.head_dim, cfg.num_heads, cfg.context_dim, cfg.num_res_blocks, cfg.groups)
        if not all(isinstance(v, int) and 0 < v <= 8192 for v in ints) or not 1 <= len(cfg.dim_mult) <= 6 \
                or cfg.dim % cfg.groups or cfg.dim % cfg.head_dim:
            raise ValueError("sizes out of range")
    except (TypeError, ValueError) as e:
        raise STARModelError(f"{where} is not a valid STAR config ({e}); delete it to use the released "
                             f"model's config.") from None
    return cfg


def inspect_checkpoint(path: str) -> Tuple[STARConfig, dict, list]:
    """``(config, {name: (shape, dtype)} the model will use, [ignored extra names])``, nothing copied;
    raises :class:`STARModelError` for a missing / damaged / mismatched file."""
    if not os.path.isfile(path):
        raise STARModelError(f"STAR checkpoint {path!r} does not exist; put light_deg.pt or heavy_deg.pt "
                             f"(huggingface.co/SherryX/STAR, I2VGen-XL-based/) into ComfyUI/models/STAR/.")
    if not path.lower().endswith(CHECKPOINT_EXT):
        raise STARModelError(f"{path}: a STAR checkpoint ends in {', '.join(CHECKPOINT_EXT)}.")
    if os.path.getsize(path) == 0:
        raise unreadable(path, "is empty", STARModelError)
    if path.endswith(".safetensors"):
        layout, meta = _safetensors_header(path)
    else:
        sd = _pt_state(path)
        layout, meta = {k: (tuple(v.shape), v.dtype) for k, v in sd.items()}, None
        del sd
    cfg = checkpoint_config(path, meta)
    expected = key_shapes(cfg)
    extra = sorted(set(layout) - set(expected))
    report = mismatch_report(expected, {k: v for k, v in layout.items() if k in expected})
    if report:
        hint = (" (is it a STAR checkpoint? the released ones are light_deg.pt and heavy_deg.pt)"
                if len(extra) > len(expected) // 2 else "")
        raise STARModelError(f"{path} does not match the STAR model{' of its config' if meta or cfg != STARConfig() else ''}"
                             f": {report}{hint}.")
    return cfg, layout, extra


def load_unet(path: str, dtype: torch.dtype = torch.float16, device="cpu") -> Tuple[STARUNet, list]:
    """``(model in eval mode on device, [ignored extra keys])``; tensors are cast to ``dtype`` one at a
    time (an 8 GB fp32 .pt never needs twice its size in RAM)."""
    cfg, _, extra = inspect_checkpoint(path)
    with torch.device("meta"):
        model = STARUNet(cfg)
    names = set(key_shapes(cfg))
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            state = {k: f.get_tensor(k).to(dtype) for k in f.keys() if k in names}
    else:
        state = {k: v.to(dtype) for k, v in _pt_state(path).items() if k in names}
    model.load_state_dict(state, strict=True, assign=True)
    del state
    return model.to(device).eval().requires_grad_(False), extra


def save_safetensors(model_or_state, cfg: STARConfig, out: str, dtype: Optional[torch.dtype] = torch.float16) -> str:
    """Write a state dict (or a model's) as safetensors with the config in its metadata, atomically
    (temporary file beside ``out``, then renamed)."""
    from safetensors.torch import save_file
    state = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
    names = set(key_shapes(cfg))
    tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
               for k, v in state.items() if k in names}
    tmp = out + ".tmp"
    try:
        save_file(tensors, tmp, metadata={CONFIG_KEY: json.dumps(cfg.to_dict()), "format": "pt"})
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out


# --------------------------------------------------------------------------- the VAE
def vae_weights(folder: str) -> Optional[str]:
    for name in VAE_FILES:
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    return None


def load_vae(folder: str, dtype: torch.dtype = torch.float16, device="cpu"):
    """diffusers ``AutoencoderKLTemporalDecoder`` from a local folder, checked strictly first."""
    from diffusers import AutoencoderKLTemporalDecoder
    layout_text = (f"config.json + {VAE_FILES[0]} (or {VAE_FILES[1]}): the vae/ folder of "
                   f"stabilityai/stable-video-diffusion-img2vid")
    if not os.path.isdir(folder):
        raise STARModelError(f"VAE folder {folder!r} does not exist; put {layout_text} into ComfyUI/models/diffusers/.")
    cfg_file = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_file):
        raise STARModelError(f"{folder} has no config.json; it needs {layout_text}.")
    cfg = read_json(cfg_file, "download the vae/ folder again", STARModelError)
    if cfg.get("_class_name") not in (None, "AutoencoderKLTemporalDecoder"):
        raise STARModelError(f"{cfg_file} describes a {short(cfg.get('_class_name'))}, not the SVD temporal "
                             f"decoder VAE (AutoencoderKLTemporalDecoder) STAR was trained with; use {layout_text}.")
    weights = vae_weights(folder)
    if weights is None:
        raise STARModelError(f"{folder} holds no {' or '.join(VAE_FILES)}; it needs {layout_text}.")
    layout, _ = _safetensors_header(weights)
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in AutoencoderKLTemporalDecoder.from_config(cfg).state_dict().items()}
    except Exception as e:
        if is_oom(e):
            raise
        raise STARModelError(f"{cfg_file} is not a valid AutoencoderKLTemporalDecoder config ({type(e).__name__}: "
                             f"{short(str(e), 160)}); download the vae/ folder again.") from None
    report = mismatch_report(expected, layout)
    if report:
        raise STARModelError(f"{weights} does not match {cfg_file}: {report}; download the vae/ folder again.")
    from safetensors.torch import load_file
    vae = AutoencoderKLTemporalDecoder.from_config(cfg)
    vae.load_state_dict({k: v.to(dtype) for k, v in load_file(weights).items()}, strict=True)
    return vae.to(device=device, dtype=dtype).eval().requires_grad_(False)


# --------------------------------------------------------------------------- text embeddings
def load_text(path: str) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``(positive [1, L, 1024], negative [1, L', 1024] or None)`` float32 from an embeddings file."""
    if not os.path.isfile(path):
        raise STARModelError(f"text embeddings {path!r} do not exist; connect a CLIP Text Encode instead, or "
                             f"save them with models.receivers.star.loading.save_text.")
    layout, _ = _safetensors_header(path)
    if "positive" not in layout:
        raise STARModelError(f"{path} has no 'positive' tensor (it holds {', '.join(sorted(layout)[:5]) or 'nothing'}).")
    for k, (shape, _) in layout.items():
        if k in ("positive", "negative") and (len(shape) != 3 or shape[0] != 1 or shape[2] != TEXT_WIDTH
                                             or not 1 <= shape[1] <= MAX_TEXT_TOKENS):
            raise STARModelError(f"{path}: {k!r} is {list(shape)}, expected [1, tokens <= {MAX_TEXT_TOKENS}, "
                                 f"{TEXT_WIDTH}] (OpenCLIP ViT-H/14 text states).")
    from safetensors.torch import load_file
    t = load_file(path)
    neg = t.get("negative")
    return t["positive"].float(), None if neg is None else neg.float()


def save_text(path: str, positive: torch.Tensor, negative: Optional[torch.Tensor] = None) -> str:
    from safetensors.torch import save
    from ...atomic import write_bytes
    d = {"positive": positive.float().contiguous()}
    if negative is not None:
        d["negative"] = negative.float().contiguous()
    return write_bytes(path, save(d))
