"""Load a CogVideoX-family diffusers folder (CogVideoX-2b / 5b / 1.5-5B, DOVE, MetaSR fine-tunes).

Expected layout (local files only, nothing is downloaded)::

    <folder>/
      transformer/config.json + diffusion_pytorch_model*.safetensors (or .bin, sharded with an index)
      vae/config.json         + diffusion_pytorch_model*.safetensors
      scheduler/scheduler_config.json
      model_index.json                    (optional; written by diffusers)
      text_encoder/ + tokenizer/          (optional T5, used if present and `transformers` is installed)
      prompt_embedding.safetensors        (optional; or prompt_embeddings/*.safetensors — DOVE ships the
                                           empty-prompt T5 embedding under key 'prompt_embedding')
      metasr.json                         (optional; {"metadata_kinds": ["edges", "depth"]} for
                                           MetaSR fine-tunes trained with metadata tokens)

The empty prompt is encoded once. Without a T5 and without an embedding file a zero embedding is
used: DOVE conditions on the empty prompt only, and a zero text input is what a model fine-tuned
with a zero prompt expects, but it is *not* what DOVE was trained with — results degrade; a warning
says so.
"""
import glob
import json
import os
import warnings

import torch

from .pipeline import MetaSRPipeline

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
          "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}

LAYOUT = ("transformer/config.json + transformer/diffusion_pytorch_model*.safetensors, "
          "vae/config.json + vae/diffusion_pytorch_model*.safetensors, "
          "scheduler/scheduler_config.json (optional: text_encoder/ + tokenizer/, "
          "prompt_embedding.safetensors, metasr.json)")


class MetaSRModelError(ValueError):
    """A model folder is missing or incomplete; the message lists what is expected where."""


def _weights(sub: str) -> list:
    return [p for ext in ("safetensors", "bin") for p in glob.glob(os.path.join(sub, f"*.{ext}"))]


def check_folder(path: str) -> None:
    """Raise :class:`MetaSRModelError` naming every missing file of a CogVideoX diffusers folder."""
    if not path or not os.path.isdir(path):
        raise MetaSRModelError(
            f"model folder {path!r} does not exist. Put a CogVideoX / DOVE diffusers folder under "
            f"ComfyUI/models/diffusers/<name>/ containing: {LAYOUT}.")
    missing = []
    for sub, cfg in (("transformer", "config.json"), ("vae", "config.json"),
                     ("scheduler", "scheduler_config.json")):
        if not os.path.isfile(os.path.join(path, sub, cfg)):
            missing.append(f"{sub}/{cfg}")
        if sub != "scheduler" and not _weights(os.path.join(path, sub)):
            missing.append(f"{sub}/diffusion_pytorch_model.safetensors")
    if missing:
        raise MetaSRModelError(f"model folder {path!r} is incomplete: missing {', '.join(missing)}. "
                               f"Expected: {LAYOUT}.")
    with open(os.path.join(path, "transformer", "config.json")) as f:
        cls = json.load(f).get("_class_name", "CogVideoXTransformer3DModel")
    if cls != "CogVideoXTransformer3DModel":
        raise MetaSRModelError(f"model folder {path!r} holds a {cls}, not a CogVideoX transformer; "
                               f"choose a CogVideoX-2b/5b/1.5-5B, DOVE or MetaSR folder.")


def prompt_embedding(path: str, transformer_config, device, dtype) -> torch.Tensor:
    """Empty-prompt embedding ``[1, L, text_dim]``: T5 if present, else a stored file, else zeros."""
    enc, tok = os.path.join(path, "text_encoder"), os.path.join(path, "tokenizer")
    if os.path.isdir(enc) and os.path.isdir(tok):
        try:
            import transformers  # optional, only for folders that ship a T5
        except ImportError:
            transformers = None
        if transformers is not None:
            tokenizer = transformers.AutoTokenizer.from_pretrained(tok, local_files_only=True)
            t5 = transformers.T5EncoderModel.from_pretrained(enc, torch_dtype=dtype, local_files_only=True)
            ids = tokenizer("", padding="max_length", max_length=transformer_config.max_text_seq_length,
                            truncation=True, add_special_tokens=True, return_tensors="pt").input_ids
            with torch.no_grad():
                emb = t5.to(device)(ids.to(device))[0].to("cpu", dtype)
            del t5
            return emb
    files = sorted(glob.glob(os.path.join(path, "*.safetensors"))
                   + glob.glob(os.path.join(path, "prompt_embeddings", "*.safetensors")))
    for f in files:
        from safetensors import safe_open
        with safe_open(f, "pt") as st:
            if "prompt_embedding" in st.keys():
                emb = st.get_tensor("prompt_embedding")
                if emb.ndim == 2:
                    emb = emb[None]
                if emb.shape[-1] != transformer_config.text_embed_dim:
                    raise MetaSRModelError(f"{f}: prompt_embedding has width {emb.shape[-1]}, the "
                                           f"transformer expects {transformer_config.text_embed_dim}.")
                return emb[:1].to(dtype)
    warnings.warn(f"MetaSR: {path} has no text_encoder/tokenizer (or transformers is not installed) and "
                  f"no prompt_embedding.safetensors; using a zero prompt embedding. DOVE was trained "
                  f"with the empty-prompt T5 embedding: copy DOVE's pretrained_models/prompt_embeddings/"
                  f"*.safetensors into the folder for faithful results.")
    return torch.zeros(1, transformer_config.max_text_seq_length, transformer_config.text_embed_dim,
                       dtype=dtype)


def load(path: str, dtype="bf16", device=None, offload: str = "none",
         offload_device="cpu") -> MetaSRPipeline:
    """Load a folder (see module doc) into a :class:`MetaSRPipeline`.

    dtype: "bf16" | "fp16" | "fp32" (or a torch dtype); device: compute device (default cuda if
    available); offload: "none" | "model" | "sequential".
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
    check_folder(path)
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise MetaSRModelError(f"dtype {dtype!r} is not one of bf16, fp16, fp32.")
        dtype = DTYPES[dtype]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    kw = dict(torch_dtype=dtype, local_files_only=True)
    try:
        transformer = CogVideoXTransformer3DModel.from_pretrained(path, subfolder="transformer", **kw)
        vae = AutoencoderKLCogVideoX.from_pretrained(path, subfolder="vae", **kw)
        scheduler = CogVideoXDPMScheduler.from_pretrained(path, subfolder="scheduler", local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise MetaSRModelError(f"could not load {path!r} ({e}). Expected: {LAYOUT}.") from e
    # DOVE's scheduler: DPM with trailing spacing (only get_velocity's alphas are used)
    scheduler = CogVideoXDPMScheduler.from_config(scheduler.config, timestep_spacing="trailing")
    if transformer.config.use_learned_positional_embeddings:
        raise MetaSRModelError(f"{path!r} is an image-to-video CogVideoX (learned positions); use a "
                               f"text-to-video CogVideoX, DOVE or a MetaSR fine-tune.")
    transformer.eval().requires_grad_(False)
    vae.eval().requires_grad_(False)
    kinds = ()
    meta_file = os.path.join(path, "metasr.json")
    if os.path.isfile(meta_file):
        with open(meta_file) as f:
            kinds = tuple(json.load(f).get("metadata_kinds", ()))
    emb = prompt_embedding(path, transformer.config, device, dtype)
    return MetaSRPipeline(transformer, vae, scheduler, emb, device=device, dtype=dtype, offload=offload,
                          name=os.path.basename(os.path.normpath(path)), metadata_kinds=kinds,
                          offload_device=offload_device)
