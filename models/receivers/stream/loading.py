"""Load a Stream-DiffVSR folder (the released ``Jamichsu/Stream-DiffVSR`` layout), local files only.

    <folder>/
      unet/config.json        + diffusion_pytorch_model.safetensors   (diffusers UNet2DConditionModel,
                                                                      the SD x4 upscaler layout)
      controlnet/config.json  + diffusion_pytorch_model.safetensors   (diffusers ControlNetModel: ARTG)
      vae/config.json         + diffusion_pytorch_model.safetensors   (TemporalAutoencoderTiny: ours, tae.py)
      scheduler/scheduler_config.json                                (DDIMScheduler config)
      text_encoder/ + tokenizer/      (CLIP; used once for the empty prompt if `transformers` is installed)
      empty_prompt_embeds.safetensors (else: key "prompt_embeds", [1, 77, cross_attention_dim])

Every config is read from the folder; nothing about the released sizes is assumed. The checks of
``folder.py`` run before anything is loaded (JSON that parses, weight headers readable, every tensor
present with its shape, nothing unexpected), so a damaged download fails with a
:class:`ModelFolderError` naming the file, never with a half-random model.
"""
import os
from typing import Optional

import torch

from ...sampling import ddim_from_config
from ...weights_file import mismatch_report
from .. import folder
from ..folder import ModelFolderError
from .receiver import StreamDiffVSR, StreamSettings
from .tae import TAEConfig, TemporalTAE

LAYOUT = ("unet/, controlnet/ and vae/ (each config.json + diffusion_pytorch_model.safetensors), "
          "scheduler/scheduler_config.json, and the empty-prompt embedding: text_encoder/ + tokenizer/ "
          "(CLIP, needs the transformers package) or empty_prompt_embeds.safetensors")
EMBED_FILE = "empty_prompt_embeds.safetensors"
EMBED_KEY = "prompt_embeds"
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
_SUBS = (("unet", "config.json", True), ("controlnet", "config.json", True), ("vae", "config.json", True),
         ("scheduler", "scheduler_config.json", False))
_INTS = {"in_channels": (1, 64, False), "layers_per_block": (1, 16, False),
         "cross_attention_dim": (1, 8192, False), "norm_num_groups": (1, 1024, False)}
_OWN_INTS = {"UNet2DConditionModel": {"out_channels": (1, 64, False)},
             "ControlNetModel": {"conditioning_channels": (1, 16, False)}}


class _TAEFactory:
    """``folder.expected_state`` builds a model with ``cls.from_config(cfg)``; this is that for ours."""
    __name__ = "TemporalAutoencoderTiny"

    @staticmethod
    def from_config(cfg: dict) -> TemporalTAE:
        return TemporalTAE(TAEConfig.from_dict(cfg))


def _size_check(cls):
    def check(file, nbytes, ntensors, names, nfiles):
        c = folder.effective(cls, folder.read_json(file, folder.redownload(os.path.dirname(file))))
        folder.check_ints(c, dict(_INTS, **_OWN_INTS.get(cls.__name__, {})), file)
        boc = c.get("block_out_channels")
        if not isinstance(boc, (list, tuple)) or not 1 <= len(boc) <= 8 or \
                not all(type(x) is int and 1 <= x <= 8192 for x in boc):
            raise ModelFolderError(f"{file}: \"block_out_channels\" is {folder.short(boc)}, not a list of 1..8 "
                                   f"whole numbers; download the config again.")
        params = sum(c["layers_per_block"] * 9 * ch * ch for ch in boc)  # one 3x3 conv per resnet: a lower bound
        if params > nbytes or len(boc) * c["layers_per_block"] > ntensors:
            raise ModelFolderError(f"{file} describes a model of at least {params:,} parameters, but {names} "
                                   f"holds only {nbytes:,} bytes in {ntensors} tensors: config and weights do not "
                                   f"belong together; download {os.path.basename(os.path.dirname(file))}/ again.")
    return check


def _inspect(path: str) -> dict:
    plans = folder.require_files(path, _SUBS, LAYOUT, "a Stream-DiffVSR folder under ComfyUI/models/diffusers/<name>/")
    out = {}
    for sub, name, _ in _SUBS:
        out[sub] = folder.read_json(os.path.join(path, sub, name), folder.redownload(os.path.join(path, sub)))
    for sub, (files, index) in plans.items():
        layout, nbytes = folder.held(files, index)
        out[sub + "_weights"] = (files, layout, nbytes)
    vcls = out["vae"].get("_class_name", "TemporalAutoencoderTiny")
    if vcls != "TemporalAutoencoderTiny":
        raise ModelFolderError(f"{os.path.join(path, 'vae', 'config.json')} describes a {folder.short(vcls)}, not "
                               f"Stream-DiffVSR's TemporalAutoencoderTiny; choose a Stream-DiffVSR folder.")
    return out


def check_folder(path: str) -> None:
    """File-level checks (no diffusers import, no model built): :class:`ModelFolderError` naming every
    missing file, or the first damaged one."""
    _inspect(path)


def _vae(path: str, cfg: dict, weights) -> TemporalTAE:
    file = os.path.join(path, "vae", "config.json")
    try:
        TAEConfig.from_dict(cfg).validate()
    except (ValueError, TypeError) as e:
        raise ModelFolderError(f"{file}: {e}; download vae/ of the model again.") from None
    files, layout, nbytes = weights
    report = mismatch_report(folder.expected_state(_TAEFactory, cfg, file, nbytes), layout)
    if report:
        raise ModelFolderError(f"{files[0]} does not match {file}: {report}. The weights are incomplete or belong "
                               f"to another model; download vae/ of the model again.")
    model = TemporalTAE(TAEConfig.from_dict(cfg))
    state = {}
    for f in files:
        if f.endswith(".bin"):
            state.update(torch.load(f, map_location="cpu", weights_only=True))
        else:
            from safetensors.torch import load_file
            state.update(load_file(f))
    model.load_state_dict(state, strict=True)
    return model


def prompt_embedding(path: str, width: int) -> torch.Tensor:
    """The empty-prompt embedding ``[1, L, width]``, from CLIP once if the folder ships it and
    transformers is installed, else from ``empty_prompt_embeds.safetensors``."""
    enc, tok = os.path.join(path, "text_encoder"), os.path.join(path, "tokenizer")
    file = os.path.join(path, EMBED_FILE)
    emb = None
    if os.path.isdir(enc) and os.path.isdir(tok):
        try:
            from transformers import CLIPTextModel, CLIPTokenizer
        except Exception:
            CLIPTextModel = None
        if CLIPTextModel is not None:
            try:
                tokenizer = CLIPTokenizer.from_pretrained(tok, local_files_only=True)
                text = CLIPTextModel.from_pretrained(enc, local_files_only=True).eval()
                ids = tokenizer("", padding="max_length", max_length=tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids
                with torch.no_grad():
                    emb = text(ids)[0].float()
                del text
            except Exception as e:
                if folder.is_oom(e):
                    raise
                raise ModelFolderError(f"{enc} could not be used to encode the empty prompt ({type(e).__name__}: "
                                       f"{folder.short(str(e), 200)}); download text_encoder/ and tokenizer/ again, "
                                       f"or put {EMBED_FILE} in the folder instead.") from None
    if emb is None:
        if not os.path.isfile(file):
            raise ModelFolderError(
                f"{path!r} has no empty-prompt embedding: put {EMBED_FILE} (key \"{EMBED_KEY}\", [1, 77, {width}]) "
                f"in it, or text_encoder/ + tokenizer/ with the transformers package installed "
                f"(`pip install transformers`).")
        layout = folder.safetensors_layout(file)
        if EMBED_KEY not in layout:
            raise ModelFolderError(f"{file} has no tensor \"{EMBED_KEY}\" (it holds {folder.short(sorted(layout))}); "
                                   f"write the empty-prompt embedding under that key.")
        from safetensors import safe_open
        with safe_open(file, framework="pt") as f:
            emb = f.get_tensor(EMBED_KEY).float()
    if emb.ndim == 2:
        emb = emb[None]
    if emb.ndim != 3 or emb.shape[0] != 1 or emb.shape[-1] != width or not bool(torch.isfinite(emb).all()):
        raise ModelFolderError(f"the empty-prompt embedding of {path!r} is {tuple(emb.shape)}, expected [1, L, {width}] "
                               f"finite values (the U-Net's cross_attention_dim); it belongs to another model.")
    return emb


def load(path: str, dtype="fp16", device=None, settings: StreamSettings = StreamSettings(),
         compile_models: bool = False, name: Optional[str] = None) -> StreamDiffVSR:
    """A :class:`StreamDiffVSR` from ``path``. dtype "fp16" | "bf16" | "fp32"; device default cuda when
    present; ``compile_models``: ``torch.compile`` the U-Net and ControlNet (first frames are slow)."""
    from diffusers import ControlNetModel, UNet2DConditionModel
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ModelFolderError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}.")
        dtype = DTYPES[dtype]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    info = _inspect(path)
    classes = {"unet": UNet2DConditionModel, "controlnet": ControlNetModel}
    for sub, cls in classes.items():
        folder.check_strict(path, sub, cls, info[sub], info[sub + "_weights"], _size_check(cls))
    sched = os.path.join(path, "scheduler", "scheduler_config.json")
    try:
        plan = ddim_from_config(info["scheduler"], settings.steps)
    except ValueError as e:
        raise ModelFolderError(f"{sched}: {e}.") from None
    vae = _vae(path, info["vae"], info["vae_weights"])
    models = {}
    for sub, cls in classes.items():
        try:
            models[sub], loading_info = cls.from_pretrained(path, subfolder=sub, torch_dtype=dtype,
                                                            local_files_only=True, output_loading_info=True)
        except Exception as e:
            if folder.is_oom(e):
                raise
            raise ModelFolderError(f"could not load {os.path.join(path, sub)} ({type(e).__name__}: "
                                   f"{folder.short(str(e), 300)}). Expected: {LAYOUT}.") from None
        report = folder.load_info_report(loading_info)
        if report:
            raise ModelFolderError(f"{os.path.join(path, sub)}: diffusers reported {report}; download {sub}/ again.")
    unet, controlnet = models["unet"], models["controlnet"]
    lat = vae.config.latent_channels
    if unet.config.in_channels != lat + 3:
        raise ModelFolderError(f"{os.path.join(path, 'unet', 'config.json')}: in_channels {unet.config.in_channels} is "
                               f"not the latent's {lat} + 3 LR channels; this is not a Stream-DiffVSR U-Net.")
    hint_channels = controlnet.config.conditioning_channels
    if hint_channels not in (3, 4) or (settings.edge_hint and hint_channels != 4):
        want = "4 (RGB + edges) for the edge hint" if settings.edge_hint else "3 (the warped RGB frame)"
        raise ModelFolderError(f"{os.path.join(path, 'controlnet', 'config.json')}: conditioning_channels is "
                               f"{hint_channels}, this setting needs {want}; turn edge_hint off for the released "
                               f"weights (it needs a model fine-tuned with edges).")
    emb = prompt_embedding(path, unet.config.cross_attention_dim)
    for m in (unet, controlnet, vae):
        m.to(device=device, dtype=dtype).eval().requires_grad_(False)
    if compile_models:
        unet, controlnet = torch.compile(unet), torch.compile(controlnet)
    return StreamDiffVSR(unet, controlnet, vae, plan, emb, device=device, dtype=dtype, settings=settings,
                         name=name or os.path.basename(os.path.normpath(path)))
