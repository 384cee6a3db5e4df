"""Load a CogVideoX-family diffusers folder (CogVideoX-2b / 5b / 1.5-5B, DOVE, MetaSR fine-tunes).

Expected layout (local files only, nothing is downloaded)::

    <folder>/
      transformer/config.json + diffusion_pytorch_model.safetensors (or a sharded
                                diffusion_pytorch_model.safetensors.index.json + its shards, or a
                                single diffusion_pytorch_model.bin in torch.save's zip format)
      vae/config.json         + the same choice of weight files
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

Damaged or hostile folders fail with :class:`MetaSRModelError` (a ``ModelFolderError``), whose message
names the offending file and the fix, never with a raw JSON / safetensors / torch error. The generic
checks (JSON, weight files, strict weights) live in ``models/receivers/folder.py``, shared with the other
diffusers-style receivers; this module adds the CogVideoX ones (class names, size limits, metasr.json):

- every JSON file (``config.json``, ``scheduler_config.json``, ``metasr.json``, a shard index) must be
  UTF-8 JSON holding an object;
- the weight files diffusers will read are opened header-only (``safe_open``; the safetensors library
  itself refuses a header or tensor that claims more bytes than the file has, so a small bogus file
  never makes it allocate much); a truncated / zero-byte / random file, a Git LFS pointer, a ``.bin``
  that is not a torch.save zip checkpoint of tensors, or a shard index naming missing shards is refused;
- strict weights: the model each ``config.json`` describes is built on the ``meta`` device (no memory)
  and its state-dict keys and shapes must equal those the weight files hold (for a sharded folder the
  union of the shards listed by the index); missing, unexpected, mis-shaped or non-float tensors are
  listed (first few of each, with counts) *before* anything is loaded, so no parameter is ever left
  randomly initialised; diffusers' own loading report is checked again afterwards;
- resource sanity: before that meta build, the size fields of each config must be whole numbers in
  a plausible range, and the parameter count the config implies (a lower bound: attention weights of
  every transformer layer, one 3x3x3 convolution per VAE resnet) must fit in the bytes the weight
  files hold, and the layer count in the number of tensors they hold; positional tables the config
  implies (non-persistent buffers) are capped too;
- ``metasr.json``: a JSON object; ``"metadata_kinds"`` (optional, default none) must be a list of
  distinct names from ``models.metadata.KINDS`` (a string such as ``"edges"`` is refused, not
  split into letters); keys starting with ``_`` are ignored (comments, tool versions); any other key is
  an error, since a misspelt ``"metadata_kind"`` would otherwise silently give a model without metadata.

:func:`check_folder` runs the file-level checks (no diffusers import, no model built); :func:`load`
adds the config-against-weights checks and loads.
"""
import functools
import glob
import math
import os
import warnings

import torch

from ...metadata import KINDS as METADATA_KINDS
from ...weights_file import is_float, mismatch_report  # noqa: F401 (mismatch_report: imported from here by callers)
from ..folder import (BIN_NAME, INDEX_NAME, MAX_BUFFER_VALUES, MAX_JSON_BYTES, SAFE_NAME,  # noqa: F401 (kept names)
                      ModelFolderError, check_ints, check_strict, effective, expected_state, held, is_oom,
                      load_info_report, read_json, redownload, require_files, safetensors_layout, short,
                      unreadable)
from .pipeline import MetaSRPipeline

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
          "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}

LAYOUT = ("transformer/config.json + transformer/diffusion_pytorch_model*.safetensors, "
          "vae/config.json + vae/diffusion_pytorch_model*.safetensors, "
          "scheduler/scheduler_config.json (optional: text_encoder/ + tokenizer/, "
          "prompt_embedding.safetensors, metasr.json)")
SUBFOLDERS = (("transformer", "config.json", True), ("vae", "config.json", True),
              ("scheduler", "scheduler_config.json", False))

METASR_FILE = "metasr.json"
METASR_KEYS = ("metadata_kinds",)


class MetaSRModelError(ModelFolderError):
    """A CogVideoX model folder is missing, incomplete or damaged; the message names the file and the fix.

    A subclass, not an alias: the folder checks are called with ``error=MetaSRModelError``, so what this
    loader raises keeps its class name (callers and the hostile-input tests match on it), while
    ``except ModelFolderError`` catches every receiver's folder errors."""


_expected_state = functools.partial(expected_state, error=MetaSRModelError)  # the name the tests use


_T_INTS = {"num_attention_heads": (1, 1024, False), "attention_head_dim": (1, 1024, False),
           "in_channels": (1, 1024, False), "out_channels": (1, 1024, True), "time_embed_dim": (1, 1 << 16, False),
           "text_embed_dim": (1, 1 << 16, False), "num_layers": (1, 1024, False), "sample_width": (1, 1 << 14, False),
           "sample_height": (1, 1 << 14, False), "sample_frames": (1, 1 << 14, False), "patch_size": (1, 64, False),
           "patch_size_t": (1, 64, True), "max_text_seq_length": (1, 1 << 14, False),
           "temporal_compression_ratio": (1, 64, False)}
_V_INTS = {"in_channels": (1, 64, False), "out_channels": (1, 64, False), "latent_channels": (1, 1024, False),
           "layers_per_block": (1, 64, False), "norm_num_groups": (1, 1024, False),
           "temporal_compression_ratio": (1, 64, False), "sample_height": (1, 1 << 16, False),
           "sample_width": (1, 1 << 16, False)}


def _check_size(kind: str, cls, cfg: dict, file: str, nbytes: int, ntensors: int, weights: str, nfiles: int = 1):
    """Refuse a config that implies far more parameters or layers than the weight files can hold."""
    c = effective(cls, cfg)
    if kind == "transformer":
        check_ints(c, _T_INTS, file, MetaSRModelError)
        inner = c["num_attention_heads"] * c["attention_head_dim"]
        params = c["num_layers"] * 4 * inner * inner  # q, k, v, out of every layer: a lower bound
        tensors = c["num_layers"] * 10                 # a CogVideoX block holds 24 tensors
        what = f"num_layers={c['num_layers']}, {c['num_attention_heads']} heads x {c['attention_head_dim']}"
        if c["max_text_seq_length"] * c["text_embed_dim"] > MAX_BUFFER_VALUES:
            raise MetaSRModelError(f"{file}: max_text_seq_length x text_embed_dim = {c['max_text_seq_length']} x "
                                   f"{c['text_embed_dim']} is implausibly large; download the config again.")
    else:
        check_ints(c, _V_INTS, file, MetaSRModelError)
        boc = c.get("block_out_channels")
        if not isinstance(boc, (list, tuple)) or not 1 <= len(boc) <= 8 or \
                not all(type(x) is int and 1 <= x <= 4096 for x in boc):
            raise MetaSRModelError(f"{file}: \"block_out_channels\" is {short(boc)}, not a list of 1..8 whole "
                                   f"numbers in 1..4096; download the config again.")
        sf = c.get("scaling_factor")
        if isinstance(sf, bool) or not isinstance(sf, (int, float)) or not math.isfinite(sf) or sf <= 0:
            raise MetaSRModelError(f"{file}: \"scaling_factor\" is {short(sf)}, not a positive number; download "
                                   f"the config again.")
        params = sum(c["layers_per_block"] * 27 * ch * ch for ch in boc)  # one 3x3x3 conv per encoder resnet
        tensors = len(boc) * c["layers_per_block"] * 2
        what = f"block_out_channels={list(boc)}, layers_per_block={c['layers_per_block']}"
    if params > nbytes or tensors > ntensors:
        raise MetaSRModelError(
            f"{file} describes a model of at least {params:,} parameters in at least {tensors} tensors ({what}), "
            f"but {weights} {'holds' if nfiles == 1 else 'hold'} only {nbytes:,} bytes in {ntensors} tensors: this "
            f"config.json does not belong to these weights (or a download is incomplete); download {kind}/ of the "
            f"model again.")


def metadata_kinds(path: str) -> tuple:
    """Metadata kinds of a folder from its ``metasr.json`` (absent: none); see the module doc."""
    file = os.path.join(path, METASR_FILE)
    if not os.path.lexists(file):
        return ()
    example = '{"metadata_kinds": ["edges"]}'
    fix = f"write it as {example} (kinds: {', '.join(METADATA_KINDS)}), or delete it for a model without metadata"
    cfg = read_json(file, fix, MetaSRModelError)
    unknown = [k for k in cfg if k not in METASR_KEYS and not k.startswith("_")]
    if unknown:
        raise MetaSRModelError(f"{file}: unknown key(s) {short(unknown)}; the only key read is \"metadata_kinds\" "
                               f"(keys starting with '_' are ignored): {fix}.")
    kinds = cfg.get("metadata_kinds", [])
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise MetaSRModelError(f"{file}: \"metadata_kinds\" must be a list of names, found {short(kinds)}; {fix}.")
    bad = [k for k in kinds if k not in METADATA_KINDS]
    if bad:
        raise MetaSRModelError(f"{file}: unknown metadata kind(s) {short(bad)}; known kinds are "
                               f"{', '.join(METADATA_KINDS)}: {fix}.")
    dup = sorted({k for k in kinds if kinds.count(k) > 1})
    if dup:
        raise MetaSRModelError(f"{file}: metadata kind(s) {dup} are listed twice; list each kind once: {fix}.")
    return tuple(kinds)


def _inspect(path: str) -> dict:
    """File-level checks of a folder; returns the parsed configs and the weight layouts."""
    plans = require_files(path, SUBFOLDERS, LAYOUT, "a CogVideoX / DOVE diffusers folder under "
                          "ComfyUI/models/diffusers/<name>/", MetaSRModelError)
    out = {"kinds": metadata_kinds(path)}
    for sub, name, _ in SUBFOLDERS:
        out[sub] = read_json(os.path.join(path, sub, name), redownload(os.path.join(path, sub)), MetaSRModelError)
    cls = out["transformer"].get("_class_name", "CogVideoXTransformer3DModel")
    if cls != "CogVideoXTransformer3DModel":
        raise MetaSRModelError(f"model folder {path!r} holds a {short(cls)} (in "
                               f"{os.path.join(path, 'transformer', 'config.json')}), not a CogVideoX "
                               f"transformer; choose a CogVideoX-2b/5b/1.5-5B, DOVE or MetaSR folder.")
    vcls = out["vae"].get("_class_name", "AutoencoderKLCogVideoX")
    if vcls != "AutoencoderKLCogVideoX":
        raise MetaSRModelError(f"{os.path.join(path, 'vae', 'config.json')} describes a {short(vcls)}, not the "
                               f"CogVideoX VAE (AutoencoderKLCogVideoX); choose a CogVideoX / DOVE / MetaSR folder.")
    for sub in ("transformer", "vae"):
        files, index = plans[sub]
        layout, nbytes = held(files, index, MetaSRModelError)
        out[sub + "_weights"] = (files, layout, nbytes)
    return out


def check_folder(path: str) -> None:
    """Raise :class:`MetaSRModelError` naming every missing file of a CogVideoX diffusers folder, or the
    first damaged one (JSON that does not parse, an unreadable weight file, a bad metasr.json).
    Builds no model; :func:`load` also checks the configs against the weights."""
    _inspect(path)


def prompt_embedding(path: str, transformer_config, device, dtype) -> torch.Tensor:
    """Empty-prompt embedding ``[1, L, text_dim]``: T5 if present, else a stored file, else zeros."""
    enc, tok = os.path.join(path, "text_encoder"), os.path.join(path, "tokenizer")
    if os.path.isdir(enc) and os.path.isdir(tok):
        try:
            import transformers  # optional, only for folders that ship a T5
        except ImportError:
            transformers = None
        if transformers is not None:
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(tok, local_files_only=True)
                t5 = transformers.T5EncoderModel.from_pretrained(enc, torch_dtype=dtype, local_files_only=True)
            except Exception as e:
                if is_oom(e):
                    raise
                raise MetaSRModelError(f"could not load the T5 in {enc} / {tok} ({type(e).__name__}: "
                                       f"{short(str(e), 200)}); download text_encoder/ and tokenizer/ again, or "
                                       f"remove both and add DOVE's prompt_embedding.safetensors.") from None
            ids = tokenizer("", padding="max_length", max_length=transformer_config.max_text_seq_length,
                            truncation=True, add_special_tokens=True, return_tensors="pt").input_ids
            with torch.no_grad():
                emb = t5.to(device)(ids.to(device))[0].to("cpu", dtype)
            del t5
            return emb
    files = sorted(glob.glob(os.path.join(path, "*.safetensors"))
                   + glob.glob(os.path.join(path, "prompt_embeddings", "*.safetensors")))
    layouts = {}
    for f in files:  # every candidate is checked, so the outcome does not depend on file names
        try:
            layouts[f] = safetensors_layout(f, MetaSRModelError)
        except MetaSRModelError as e:
            raise MetaSRModelError(f"{e} (The loader reads every *.safetensors in the folder and in "
                                   f"prompt_embeddings/ to find the prompt embedding: delete a stray or partial "
                                   f"file.)") from None
    for f, layout in layouts.items():
        if "prompt_embedding" in layout:
            shape, dt = layout["prompt_embedding"]
            if len(shape) not in (2, 3) or 0 in shape or not is_float(dt):
                raise MetaSRModelError(f"{f}: prompt_embedding is {dt} {list(shape)}; expected a floating-point "
                                       f"[L, {transformer_config.text_embed_dim}] or [1, L, "
                                       f"{transformer_config.text_embed_dim}] tensor (DOVE's file).")
            if shape[-1] != transformer_config.text_embed_dim:
                raise MetaSRModelError(f"{f}: prompt_embedding has width {shape[-1]}, the "
                                       f"transformer expects {transformer_config.text_embed_dim}.")
            from safetensors import safe_open
            try:
                with safe_open(f, "pt") as st:
                    emb = st.get_tensor("prompt_embedding")
            except Exception as e:
                if is_oom(e):
                    raise
                raise unreadable(f, f"cannot be read ({type(e).__name__}: {e})", MetaSRModelError) from None
            if emb.ndim == 2:
                emb = emb[None]
            if not torch.isfinite(emb).all():
                raise MetaSRModelError(f"{f}: prompt_embedding holds NaN or Inf values; the file is damaged: "
                                       f"download it again.")
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
    available); offload: "none" | "model" | "sequential". Raises :class:`MetaSRModelError` naming the
    file for a missing, damaged or mismatched one (see the module doc).
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
    info = _inspect(path)
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise MetaSRModelError(f"dtype {dtype!r} is not one of bf16, fp16, fp32.")
        dtype = DTYPES[dtype]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sched_file = os.path.join(path, "scheduler", "scheduler_config.json")
    steps = info["scheduler"].get("num_train_timesteps", 1000)
    if type(steps) is not int or not 1 <= steps <= 100_000:
        raise MetaSRModelError(f"{sched_file}: \"num_train_timesteps\" is {short(steps)}, not a whole number in "
                               f"1..100000; download the scheduler config again.")
    classes = {"transformer": CogVideoXTransformer3DModel, "vae": AutoencoderKLCogVideoX}
    for sub, cls in classes.items():
        check_strict(path, sub, cls, info[sub], info[sub + "_weights"],
                     functools.partial(_check_size, sub, cls, info[sub]), MetaSRModelError)
    kw = dict(torch_dtype=dtype, local_files_only=True, output_loading_info=True)
    models = {}
    for sub, cls in classes.items():
        try:
            models[sub], loading_info = cls.from_pretrained(path, subfolder=sub, **kw)
        except Exception as e:
            if is_oom(e):
                raise
            raise MetaSRModelError(f"could not load {os.path.join(path, sub)} ({type(e).__name__}: "
                                   f"{short(str(e), 300)}). Expected: {LAYOUT}.") from None
        report = load_info_report(loading_info)
        if report:  # the checks above make this unreachable; never run a half-initialised model
            raise MetaSRModelError(f"{os.path.join(path, sub)}: diffusers reported {report}; download {sub}/ "
                                   f"of the model again.")
    transformer, vae = models["transformer"], models["vae"]
    try:
        scheduler = CogVideoXDPMScheduler.from_pretrained(path, subfolder="scheduler", local_files_only=True)
        # DOVE's scheduler: DPM with trailing spacing (only get_velocity's alphas are used)
        scheduler = CogVideoXDPMScheduler.from_config(scheduler.config, timestep_spacing="trailing")
    except Exception as e:
        if is_oom(e):
            raise
        raise MetaSRModelError(f"{sched_file} does not describe a valid scheduler ({type(e).__name__}: "
                               f"{short(str(e), 200)}); download the scheduler config again.") from None
    if transformer.config.use_learned_positional_embeddings:
        raise MetaSRModelError(f"{path!r} is an image-to-video CogVideoX (learned positions); use a "
                               f"text-to-video CogVideoX, DOVE or a MetaSR fine-tune.")
    transformer.eval().requires_grad_(False)
    vae.eval().requires_grad_(False)
    emb = prompt_embedding(path, transformer.config, device, dtype)
    return MetaSRPipeline(transformer, vae, scheduler, emb, device=device, dtype=dtype, offload=offload,
                          name=os.path.basename(os.path.normpath(path)), metadata_kinds=info["kinds"],
                          offload_device=offload_device)
