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

Damaged or hostile folders fail with :class:`MetaSRModelError`, whose message names the offending file
and the fix, never with a raw JSON / safetensors / torch error:

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
import glob
import inspect
import json
import math
import os
import warnings
import zipfile

import torch

from ...metadata import KINDS as METADATA_KINDS
from ...weights_file import REPORT, is_float, mismatch_report
from .pipeline import MetaSRPipeline

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
          "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}

LAYOUT = ("transformer/config.json + transformer/diffusion_pytorch_model*.safetensors, "
          "vae/config.json + vae/diffusion_pytorch_model*.safetensors, "
          "scheduler/scheduler_config.json (optional: text_encoder/ + tokenizer/, "
          "prompt_embedding.safetensors, metasr.json)")

SAFE_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = SAFE_NAME + ".index.json"
BIN_NAME = "diffusion_pytorch_model.bin"
METASR_FILE = "metasr.json"
METASR_KEYS = ("metadata_kinds",)
MAX_JSON_BYTES = 64 << 20      # configs and shard indices are kilobytes; refuse to parse more
MAX_BUFFER_VALUES = 1 << 27    # positional tables a config may imply beyond its parameter count
_REPORT = REPORT


class MetaSRModelError(ValueError):
    """A model folder is missing, incomplete or damaged; the message names the file and the fix."""


def _short(v, n: int = 80) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


def _is_oom(e: BaseException) -> bool:
    """Out-of-memory is not a file problem: let it through unchanged."""
    return isinstance(e, MemoryError) or "can't allocate memory" in str(e) or \
        type(e).__name__ == "OutOfMemoryError"


def _read_json(file: str, fix: str) -> dict:
    """The JSON object in ``file``, or MetaSRModelError naming it."""
    if os.path.isdir(file):
        raise MetaSRModelError(f"{file} is a directory where a JSON file is expected; remove it and {fix}.")
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as e:
        raise MetaSRModelError(f"{file} cannot be read ({e.strerror or e}); check its permissions or "
                               f"{fix}.") from None
    if len(raw) > MAX_JSON_BYTES:
        raise MetaSRModelError(f"{file} is larger than {MAX_JSON_BYTES >> 20} MB, which no config file is; "
                               f"{fix}.")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MetaSRModelError(f"{file} is not UTF-8 text (binary or damaged); {fix}.") from None
    except json.JSONDecodeError as e:
        what = "is empty" if not raw.strip() else f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        raise MetaSRModelError(f"{file} {what}; {fix}.") from None
    except RecursionError:
        raise MetaSRModelError(f"{file} nests JSON too deeply to be a config; {fix}.") from None
    if not isinstance(obj, dict):
        raise MetaSRModelError(f"{file} must hold a JSON object {{...}}, found {type(obj).__name__} "
                               f"{_short(obj, 40)}; {fix}.")
    return obj


def _redownload(sub_dir: str) -> str:
    return f"download {os.path.basename(sub_dir)}/ of the model again"


def _weight_files(sub_dir: str):
    """``(files, index_file)``: the weight files diffusers reads for a subfolder, in its order of
    preference (sharded safetensors index, single safetensors, single .bin); ``([], None)`` if none."""
    fix = _redownload(sub_dir)
    index = os.path.join(sub_dir, INDEX_NAME)
    if os.path.lexists(index):
        wm = _read_json(index, fix).get("weight_map")
        if not isinstance(wm, dict) or not wm or not all(isinstance(k, str) and isinstance(v, str)
                                                          for k, v in wm.items()):
            raise MetaSRModelError(f"{index} has no usable \"weight_map\" (an object mapping tensor names to "
                                   f"shard file names); {fix}.")
        shards = sorted(set(wm.values()))
        bad = [s for s in shards if os.path.basename(s) != s or s in ("", ".", "..")]
        if bad:
            raise MetaSRModelError(f"{index} names shard files outside its folder ({_short(bad)}); {fix}.")
        missing = [s for s in shards if not os.path.isfile(os.path.join(sub_dir, s))]
        if missing:
            raise MetaSRModelError(f"{index} lists {len(missing)} shard file(s) that are not in {sub_dir} "
                                   f"({', '.join(missing[:_REPORT])}{', ...' if len(missing) > _REPORT else ''}); "
                                   f"the download is incomplete: {fix}.")
        return [os.path.join(sub_dir, s) for s in shards], index
    for name in (SAFE_NAME, BIN_NAME):
        p = os.path.join(sub_dir, name)
        if os.path.lexists(p):
            return [p], None
    return [], None


def _lfs_pointer(file: str) -> bool:
    try:
        with open(file, "rb") as f:
            return f.read(40).startswith(b"version https://git-lfs")
    except OSError:
        return False


def _unreadable(file: str, why: str) -> MetaSRModelError:
    if _lfs_pointer(file):
        return MetaSRModelError(f"{file} is a Git LFS pointer, not the weights: run 'git lfs pull' in the "
                                f"model folder, or download the file itself.")
    size = os.path.getsize(file) if os.path.isfile(file) else 0
    if size == 0 and not os.path.isdir(file):
        return MetaSRModelError(f"{file} is empty (0 bytes; an interrupted download?): delete it and "
                                f"download it again.")
    return MetaSRModelError(f"{file} {why}; it is truncated or damaged (an interrupted download?): delete it "
                            f"and download it again.")


def safetensors_layout(file: str, error=MetaSRModelError) -> dict:
    """``{name: (shape, dtype string)}`` from a safetensors header, without reading any tensor.

    Raises ``error`` naming the file for a directory, an unreadable / truncated / random / empty file.
    """
    if os.path.isdir(file):
        raise error(f"{file} is a directory where a safetensors file is expected; remove it and download "
                    f"the file again.")
    from safetensors import safe_open
    try:
        with safe_open(file, framework="pt") as f:
            out = {}
            for k in f.keys():
                s = f.get_slice(k)
                out[k] = (tuple(s.get_shape()), str(s.get_dtype()))
            return out
    except Exception as e:  # SafetensorError, OSError, ...: the file, not the code, is at fault
        if _is_oom(e):
            raise
        err = _unreadable(file, f"is not a readable safetensors file ({type(e).__name__}: {e})")
        raise error(str(err)) from None


def _bin_layout(file: str) -> dict:
    """``{name: (shape, dtype)}`` of a torch.save zip checkpoint, memory-mapped (nothing is read)."""
    if os.path.isdir(file):
        raise MetaSRModelError(f"{file} is a directory where a checkpoint is expected; remove it and download "
                               f"the file again.")
    if not zipfile.is_zipfile(file):
        raise _unreadable(file, "is not a PyTorch zip checkpoint (torch.save's format since torch 1.6)")
    try:
        sd = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        if _is_oom(e):
            raise
        raise _unreadable(file, f"cannot be read as a checkpoint ({type(e).__name__}: {_short(str(e), 200)})") \
            from None
    if not isinstance(sd, dict) or not sd or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                     for k, v in sd.items()):
        raise MetaSRModelError(f"{file} does not hold a state dict (a mapping of names to tensors); it is not a "
                               f"diffusers weight file: delete it and download the model again.")
    out = {k: (tuple(v.shape), v.dtype) for k, v in sd.items()}
    del sd
    return out


def _held(files, index):
    """``(layout, nbytes)`` of the tensors the weight files hold (union over shards)."""
    layout = {}
    for f in files:
        layout.update(_bin_layout(f) if f.endswith(".bin") else safetensors_layout(f))
    return layout, sum(os.path.getsize(f) for f in files)


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


def _effective(cls, cfg: dict) -> dict:
    """Config values diffusers will use: the class defaults overridden by the file."""
    c = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
         if p.default is not inspect.Parameter.empty}
    c.update({k: v for k, v in cfg.items() if not k.startswith("_")})
    return c


def _check_ints(c: dict, spec: dict, file: str):
    for k, (lo, hi, nullable) in spec.items():
        v = c.get(k)
        if v is None and nullable:
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if type(v) is not int or not lo <= v <= hi:
            raise MetaSRModelError(f"{file}: \"{k}\" is {_short(v)}, not a whole number in {lo}..{hi}; the "
                                   f"config is damaged: download it again.")


def _check_size(kind: str, cls, cfg: dict, file: str, nbytes: int, ntensors: int, weights: str, nfiles: int = 1):
    """Refuse a config that implies far more parameters or layers than the weight files can hold."""
    c = _effective(cls, cfg)
    if kind == "transformer":
        _check_ints(c, _T_INTS, file)
        inner = c["num_attention_heads"] * c["attention_head_dim"]
        params = c["num_layers"] * 4 * inner * inner  # q, k, v, out of every layer: a lower bound
        tensors = c["num_layers"] * 10                 # a CogVideoX block holds 24 tensors
        what = f"num_layers={c['num_layers']}, {c['num_attention_heads']} heads x {c['attention_head_dim']}"
        if c["max_text_seq_length"] * c["text_embed_dim"] > MAX_BUFFER_VALUES:
            raise MetaSRModelError(f"{file}: max_text_seq_length x text_embed_dim = {c['max_text_seq_length']} x "
                                   f"{c['text_embed_dim']} is implausibly large; download the config again.")
    else:
        _check_ints(c, _V_INTS, file)
        boc = c.get("block_out_channels")
        if not isinstance(boc, (list, tuple)) or not 1 <= len(boc) <= 8 or \
                not all(type(x) is int and 1 <= x <= 4096 for x in boc):
            raise MetaSRModelError(f"{file}: \"block_out_channels\" is {_short(boc)}, not a list of 1..8 whole "
                                   f"numbers in 1..4096; download the config again.")
        sf = c.get("scaling_factor")
        if isinstance(sf, bool) or not isinstance(sf, (int, float)) or not math.isfinite(sf) or sf <= 0:
            raise MetaSRModelError(f"{file}: \"scaling_factor\" is {_short(sf)}, not a positive number; download "
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


def _expected_state(cls, cfg: dict, file: str, nbytes: int) -> dict:
    """``{name: shape}`` of the model ``cfg`` describes, built on the meta device (no memory)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                model = cls.from_config(cfg)
    except Exception as e:
        if _is_oom(e):
            raise
        raise MetaSRModelError(f"{file} does not describe a valid {cls.__name__} ({type(e).__name__}: "
                               f"{_short(str(e), 200)}); download the config again.") from None
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    params = sum(math.prod(s) for s in shapes.values())
    buffers = sum(b.numel() for _, b in model.named_buffers())
    if buffers > max(MAX_BUFFER_VALUES, params, nbytes):
        raise MetaSRModelError(f"{file}: its sample sizes imply positional tables of {buffers:,} values, far more "
                               f"than the model's {params:,} parameters; the config is damaged: download it again.")
    return shapes


def metadata_kinds(path: str) -> tuple:
    """Metadata kinds of a folder from its ``metasr.json`` (absent: none); see the module doc."""
    file = os.path.join(path, METASR_FILE)
    if not os.path.lexists(file):
        return ()
    example = '{"metadata_kinds": ["edges"]}'
    fix = f"write it as {example} (kinds: {', '.join(METADATA_KINDS)}), or delete it for a model without metadata"
    cfg = _read_json(file, fix)
    unknown = [k for k in cfg if k not in METASR_KEYS and not k.startswith("_")]
    if unknown:
        raise MetaSRModelError(f"{file}: unknown key(s) {_short(unknown)}; the only key read is \"metadata_kinds\" "
                               f"(keys starting with '_' are ignored): {fix}.")
    kinds = cfg.get("metadata_kinds", [])
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise MetaSRModelError(f"{file}: \"metadata_kinds\" must be a list of names, found {_short(kinds)}; {fix}.")
    bad = [k for k in kinds if k not in METADATA_KINDS]
    if bad:
        raise MetaSRModelError(f"{file}: unknown metadata kind(s) {_short(bad)}; known kinds are "
                               f"{', '.join(METADATA_KINDS)}: {fix}.")
    dup = sorted({k for k in kinds if kinds.count(k) > 1})
    if dup:
        raise MetaSRModelError(f"{file}: metadata kind(s) {dup} are listed twice; list each kind once: {fix}.")
    return tuple(kinds)


def _inspect(path: str) -> dict:
    """File-level checks of a folder; returns the parsed configs and the weight layouts."""
    if not path or not os.path.isdir(path):
        raise MetaSRModelError(
            f"model folder {path!r} does not exist. Put a CogVideoX / DOVE diffusers folder under "
            f"ComfyUI/models/diffusers/<name>/ containing: {LAYOUT}.")
    missing, plans = [], {}
    for sub, cfg in (("transformer", "config.json"), ("vae", "config.json"),
                     ("scheduler", "scheduler_config.json")):
        f = os.path.join(path, sub, cfg)
        if os.path.isdir(f):
            raise MetaSRModelError(f"{f} is a directory where a JSON file is expected; remove it and "
                                   f"{_redownload(os.path.join(path, sub))}.")
        if not os.path.isfile(f):
            missing.append(f"{sub}/{cfg}")
        if sub != "scheduler":
            plans[sub] = _weight_files(os.path.join(path, sub))
            if not plans[sub][0]:
                other = sorted(os.path.basename(p) for ext in ("safetensors", "bin")
                               for p in glob.glob(os.path.join(path, sub, f"*.{ext}")))
                hint = (f" ({sub}/ holds {', '.join(other[:_REPORT])}, but diffusers reads only {SAFE_NAME}, "
                        f"{INDEX_NAME} + shards, or {BIN_NAME})") if other else ""
                missing.append(f"{sub}/{SAFE_NAME}{hint}")
    if missing:
        raise MetaSRModelError(f"model folder {path!r} is incomplete: missing {', '.join(missing)}. "
                               f"Expected: {LAYOUT}.")
    out = {"kinds": metadata_kinds(path)}
    for sub, name in (("transformer", "config.json"), ("vae", "config.json"),
                      ("scheduler", "scheduler_config.json")):
        out[sub] = _read_json(os.path.join(path, sub, name), _redownload(os.path.join(path, sub)))
    cls = out["transformer"].get("_class_name", "CogVideoXTransformer3DModel")
    if cls != "CogVideoXTransformer3DModel":
        raise MetaSRModelError(f"model folder {path!r} holds a {_short(cls)} (in "
                               f"{os.path.join(path, 'transformer', 'config.json')}), not a CogVideoX "
                               f"transformer; choose a CogVideoX-2b/5b/1.5-5B, DOVE or MetaSR folder.")
    vcls = out["vae"].get("_class_name", "AutoencoderKLCogVideoX")
    if vcls != "AutoencoderKLCogVideoX":
        raise MetaSRModelError(f"{os.path.join(path, 'vae', 'config.json')} describes a {_short(vcls)}, not the "
                               f"CogVideoX VAE (AutoencoderKLCogVideoX); choose a CogVideoX / DOVE / MetaSR folder.")
    for sub in ("transformer", "vae"):
        files, index = plans[sub]
        layout, nbytes = _held(files, index)
        out[sub + "_weights"] = (files, layout, nbytes)
    return out


def check_folder(path: str) -> None:
    """Raise :class:`MetaSRModelError` naming every missing file of a CogVideoX diffusers folder, or the
    first damaged one (JSON that does not parse, an unreadable weight file, a bad metasr.json).
    Builds no model; :func:`load` also checks the configs against the weights."""
    _inspect(path)


def _check_weights(path: str, sub: str, cls, cfg: dict, weights) -> None:
    files, layout, nbytes = weights
    file = os.path.join(path, sub, "config.json")
    names = ", ".join(files[:2]) + (f" and {len(files) - 2} more shards" if len(files) > 2 else "")
    _check_size(sub, cls, cfg, file, nbytes, len(layout), names, len(files))
    report = mismatch_report(_expected_state(cls, cfg, file, nbytes), layout)
    if report:
        raise MetaSRModelError(f"{names} {'does' if len(files) == 1 else 'do'} not match {file}: {report}. The "
                               f"weights are incomplete or belong to another model; download {sub}/ of the model "
                               f"again (config and weights together).")


def _load_info_report(info: dict):
    parts = [f"{k.replace('_', ' ')}: {_short(info.get(k), 200)}" for k in ("missing_keys", "unexpected_keys",
                                                                           "mismatched_keys", "error_msgs")
             if info.get(k)]
    return "; ".join(parts) or None


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
                if _is_oom(e):
                    raise
                raise MetaSRModelError(f"could not load the T5 in {enc} / {tok} ({type(e).__name__}: "
                                       f"{_short(str(e), 200)}); download text_encoder/ and tokenizer/ again, or "
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
            layouts[f] = safetensors_layout(f)
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
                if _is_oom(e):
                    raise
                raise _unreadable(f, f"cannot be read ({type(e).__name__}: {e})") from None
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
        raise MetaSRModelError(f"{sched_file}: \"num_train_timesteps\" is {_short(steps)}, not a whole number in "
                               f"1..100000; download the scheduler config again.")
    classes = {"transformer": CogVideoXTransformer3DModel, "vae": AutoencoderKLCogVideoX}
    for sub, cls in classes.items():
        _check_weights(path, sub, cls, info[sub], info[sub + "_weights"])
    kw = dict(torch_dtype=dtype, local_files_only=True, output_loading_info=True)
    models = {}
    for sub, cls in classes.items():
        try:
            models[sub], loading_info = cls.from_pretrained(path, subfolder=sub, **kw)
        except Exception as e:
            if _is_oom(e):
                raise
            raise MetaSRModelError(f"could not load {os.path.join(path, sub)} ({type(e).__name__}: "
                                   f"{_short(str(e), 300)}). Expected: {LAYOUT}.") from None
        report = _load_info_report(loading_info)
        if report:  # the checks above make this unreachable; never run a half-initialised model
            raise MetaSRModelError(f"{os.path.join(path, sub)}: diffusers reported {report}; download {sub}/ "
                                   f"of the model again.")
    transformer, vae = models["transformer"], models["vae"]
    try:
        scheduler = CogVideoXDPMScheduler.from_pretrained(path, subfolder="scheduler", local_files_only=True)
        # DOVE's scheduler: DPM with trailing spacing (only get_velocity's alphas are used)
        scheduler = CogVideoXDPMScheduler.from_config(scheduler.config, timestep_spacing="trailing")
    except Exception as e:
        if _is_oom(e):
            raise
        raise MetaSRModelError(f"{sched_file} does not describe a valid scheduler ({type(e).__name__}: "
                               f"{_short(str(e), 200)}); download the scheduler config again.") from None
    if transformer.config.use_learned_positional_embeddings:
        raise MetaSRModelError(f"{path!r} is an image-to-video CogVideoX (learned positions); use a "
                               f"text-to-video CogVideoX, DOVE or a MetaSR fine-tune.")
    transformer.eval().requires_grad_(False)
    vae.eval().requires_grad_(False)
    emb = prompt_embedding(path, transformer.config, device, dtype)
    return MetaSRPipeline(transformer, vae, scheduler, emb, device=device, dtype=dtype, offload=offload,
                          name=os.path.basename(os.path.normpath(path)), metadata_kinds=info["kinds"],
                          offload_device=offload_device)
