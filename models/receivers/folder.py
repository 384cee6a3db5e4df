"""Checks of a diffusers-style model folder, shared by the receivers that load one (CogVideoX, Stream-DiffVSR).

A damaged or hostile folder must fail with a :class:`ModelFolderError` naming the offending file and
the fix, never with a raw JSON / safetensors / torch error, and before anything is loaded:

- JSON files are read with a size cap and must be UTF-8 JSON holding an object (:func:`read_json`);
- weight files are found the way diffusers finds them (:func:`weight_files`: a sharded safetensors
  index, a single safetensors file, a single ``.bin``) and opened header-only
  (:func:`safetensors_layout`, :func:`bin_layout`): a truncated / zero-byte / random file, a Git LFS
  pointer, a ``.bin`` that is not a torch.save zip of tensors, or an index naming missing shards is refused;
- strict weights (:func:`check_strict`): the model a ``config.json`` describes is built on the ``meta``
  device and its state-dict keys and shapes must equal those the files hold, so no parameter is ever
  left randomly initialised; a loader adds its own size check of the config first.

Every helper that raises takes ``error``: the exception class to raise (a loader passes its own
subclass of :class:`ModelFolderError`, so its callers keep catching the name they know). Pure
python / torch here: no diffusers import (the model classes are passed in), safetensors only when a
file is read.
"""
import glob
import inspect
import json
import math
import os
import warnings
import zipfile

import torch

from ..weights_file import REPORT, mismatch_report

SAFE_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = SAFE_NAME + ".index.json"
BIN_NAME = "diffusion_pytorch_model.bin"
MAX_JSON_BYTES = 64 << 20      # configs and shard indices are kilobytes; refuse to parse more
MAX_BUFFER_VALUES = 1 << 27    # positional tables a config may imply beyond its parameter count


class ModelFolderError(ValueError):
    """A model folder is missing, incomplete or damaged; the message names the file and the fix."""


def short(v, n: int = 80) -> str:
    """``repr(v)`` cut to ``n`` characters, so a hostile value cannot flood a message."""
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


def is_oom(e: BaseException) -> bool:
    """Out-of-memory is not a file problem: let it through unchanged."""
    return isinstance(e, MemoryError) or "can't allocate memory" in str(e) or \
        type(e).__name__ == "OutOfMemoryError"


def read_json(file: str, fix: str, error=ModelFolderError) -> dict:
    """The JSON object in ``file``, or ``error`` naming it and ending with ``fix``."""
    if os.path.isdir(file):
        raise error(f"{file} is a directory where a JSON file is expected; remove it and {fix}.")
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as e:
        raise error(f"{file} cannot be read ({e.strerror or e}); check its permissions or {fix}.") from None
    if len(raw) > MAX_JSON_BYTES:
        raise error(f"{file} is larger than {MAX_JSON_BYTES >> 20} MB, which no config file is; {fix}.")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise error(f"{file} is not UTF-8 text (binary or damaged); {fix}.") from None
    except json.JSONDecodeError as e:
        what = "is empty" if not raw.strip() else f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        raise error(f"{file} {what}; {fix}.") from None
    except RecursionError:
        raise error(f"{file} nests JSON too deeply to be a config; {fix}.") from None
    if not isinstance(obj, dict):
        raise error(f"{file} must hold a JSON object {{...}}, found {type(obj).__name__} {short(obj, 40)}; {fix}.")
    return obj


def redownload(sub_dir: str) -> str:
    """The fix for a damaged file of a model subfolder."""
    return f"download {os.path.basename(sub_dir)}/ of the model again"


def weight_files(sub_dir: str, error=ModelFolderError):
    """``(files, index_file)``: the weight files diffusers reads for a subfolder, in its order of
    preference (sharded safetensors index, single safetensors, single .bin); ``([], None)`` if none."""
    fix = redownload(sub_dir)
    index = os.path.join(sub_dir, INDEX_NAME)
    if os.path.lexists(index):
        wm = read_json(index, fix, error).get("weight_map")
        if not isinstance(wm, dict) or not wm or not all(isinstance(k, str) and isinstance(v, str)
                                                          for k, v in wm.items()):
            raise error(f"{index} has no usable \"weight_map\" (an object mapping tensor names to "
                        f"shard file names); {fix}.")
        shards = sorted(set(wm.values()))
        bad = [s for s in shards if os.path.basename(s) != s or s in ("", ".", "..")]
        if bad:
            raise error(f"{index} names shard files outside its folder ({short(bad)}); {fix}.")
        missing = [s for s in shards if not os.path.isfile(os.path.join(sub_dir, s))]
        if missing:
            raise error(f"{index} lists {len(missing)} shard file(s) that are not in {sub_dir} "
                        f"({', '.join(missing[:REPORT])}{', ...' if len(missing) > REPORT else ''}); "
                        f"the download is incomplete: {fix}.")
        return [os.path.join(sub_dir, s) for s in shards], index
    for name in (SAFE_NAME, BIN_NAME):
        p = os.path.join(sub_dir, name)
        if os.path.lexists(p):
            return [p], None
    return [], None


def require_files(path: str, subs, layout_text: str, what: str, error=ModelFolderError) -> dict:
    """``{sub: (files, index_file)}`` for the subfolders that hold weights, after checking that every
    file is there; else ``error`` naming all the missing ones at once (a partial download lacks several).

    ``subs``: ``(subfolder, config file name, holds weights)`` triples; ``what``: what belongs at
    ``path`` (for the message when it does not exist); ``layout_text``: the expected layout."""
    if not path or not os.path.isdir(path):
        raise error(f"model folder {path!r} does not exist. Put {what} containing: {layout_text}.")
    missing, plans = [], {}
    for sub, cfg, weighted in subs:
        f = os.path.join(path, sub, cfg)
        if os.path.isdir(f):
            raise error(f"{f} is a directory where a JSON file is expected; remove it and "
                        f"{redownload(os.path.join(path, sub))}.")
        if not os.path.isfile(f):
            missing.append(f"{sub}/{cfg}")
        if weighted:
            plans[sub] = weight_files(os.path.join(path, sub), error)
            if not plans[sub][0]:
                other = sorted(os.path.basename(p) for ext in ("safetensors", "bin")
                               for p in glob.glob(os.path.join(path, sub, f"*.{ext}")))
                hint = (f" ({sub}/ holds {', '.join(other[:REPORT])}, but diffusers reads only {SAFE_NAME}, "
                        f"{INDEX_NAME} + shards, or {BIN_NAME})") if other else ""
                missing.append(f"{sub}/{SAFE_NAME}{hint}")
    if missing:
        raise error(f"model folder {path!r} is incomplete: missing {', '.join(missing)}. Expected: {layout_text}.")
    return plans


def lfs_pointer(file: str) -> bool:
    """``file`` is a Git LFS pointer (a clone without ``git lfs pull``), not the file itself."""
    try:
        with open(file, "rb") as f:
            return f.read(40).startswith(b"version https://git-lfs")
    except OSError:
        return False


def unreadable(file: str, why: str, error=ModelFolderError) -> ModelFolderError:
    """The error for a weight file that cannot be read: an LFS pointer, an empty file, or ``why``."""
    if lfs_pointer(file):
        return error(f"{file} is a Git LFS pointer, not the weights: run 'git lfs pull' in the "
                     f"model folder, or download the file itself.")
    size = os.path.getsize(file) if os.path.isfile(file) else 0
    if size == 0 and not os.path.isdir(file):
        return error(f"{file} is empty (0 bytes; an interrupted download?): delete it and download it again.")
    return error(f"{file} {why}; it is truncated or damaged (an interrupted download?): delete it "
                 f"and download it again.")


def safetensors_layout(file: str, error=ModelFolderError) -> dict:
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
        if is_oom(e):
            raise
        raise unreadable(file, f"is not a readable safetensors file ({type(e).__name__}: {e})", error) from None


def pt_state(file: str, error=ModelFolderError, unwrap: str = None,
             what: str = "a diffusers weight file: delete it and download the model again") -> dict:
    """The state dict of a torch.save zip checkpoint, memory-mapped (tensors are read when touched) and
    loaded ``weights_only`` (no pickle code runs); ``unwrap``: a key the dict may sit under (a
    training checkpoint's "state_dict"). ``error`` naming the file for anything else; ``what`` ends the
    message for a file that holds no state dict."""
    if os.path.isdir(file):
        raise error(f"{file} is a directory where a checkpoint is expected; remove it and download "
                    f"the file again.")
    if not zipfile.is_zipfile(file):
        raise unreadable(file, "is not a PyTorch zip checkpoint (torch.save's format since torch 1.6)", error)
    try:
        sd = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        if is_oom(e):
            raise
        raise unreadable(file, f"cannot be read as a weights-only checkpoint ({type(e).__name__}: "
                               f"{short(str(e), 200)})", error) from None
    if unwrap and isinstance(sd, dict) and isinstance(sd.get(unwrap), dict):
        sd = sd[unwrap]
    if not isinstance(sd, dict) or not sd or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                     for k, v in sd.items()):
        raise error(f"{file} does not hold a state dict (a mapping of names to tensors); it is not {what}.")
    return sd


def bin_layout(file: str, error=ModelFolderError) -> dict:
    """``{name: (shape, dtype)}`` of a torch.save zip checkpoint, memory-mapped (nothing is read)."""
    sd = pt_state(file, error)
    out = {k: (tuple(v.shape), v.dtype) for k, v in sd.items()}
    del sd
    return out


def held(files, index, error=ModelFolderError):
    """``(layout, nbytes)`` of the tensors the weight files hold (union over shards)."""
    layout = {}
    for f in files:
        layout.update(bin_layout(f, error) if f.endswith(".bin") else safetensors_layout(f, error))
    return layout, sum(os.path.getsize(f) for f in files)


def effective(cls, cfg: dict) -> dict:
    """Config values diffusers will use: the class defaults overridden by the file."""
    c = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
         if p.default is not inspect.Parameter.empty}
    c.update({k: v for k, v in cfg.items() if not k.startswith("_")})
    return c


def check_ints(c: dict, spec: dict, file: str, error=ModelFolderError):
    """Refuse size fields of config ``c`` outside ``spec`` ``{key: (lo, hi, nullable)}``, before any
    model is built from them (a huge value would make even a meta build slow)."""
    for k, (lo, hi, nullable) in spec.items():
        v = c.get(k)
        if v is None and nullable:
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if type(v) is not int or not lo <= v <= hi:
            raise error(f"{file}: \"{k}\" is {short(v)}, not a whole number in {lo}..{hi}; the "
                        f"config is damaged: download it again.")


def expected_state(cls, cfg: dict, file: str, nbytes: int, error=ModelFolderError) -> dict:
    """``{name: shape}`` of the model ``cfg`` describes, built on the meta device (no memory)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                model = cls.from_config(cfg)
    except Exception as e:
        if is_oom(e):
            raise
        raise error(f"{file} does not describe a valid {cls.__name__} ({type(e).__name__}: "
                    f"{short(str(e), 200)}); download the config again.") from None
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    params = sum(math.prod(s) for s in shapes.values())
    buffers = sum(b.numel() for _, b in model.named_buffers())
    if buffers > max(MAX_BUFFER_VALUES, params, nbytes):
        raise error(f"{file}: its sample sizes imply positional tables of {buffers:,} values, far more "
                    f"than the model's {params:,} parameters; the config is damaged: download it again.")
    return shapes


def check_strict(path: str, sub: str, cls, cfg: dict, weights, size_check=None, error=ModelFolderError) -> None:
    """Refuse weights (``(files, layout, nbytes)`` from :func:`held`) whose tensors differ from those of
    the model ``path/sub/config.json`` describes, before anything is loaded.

    ``size_check(file, nbytes, ntensors, names, nfiles)``, if given, runs first: the loader's own check
    that the config's sizes fit the weights, so an absurd config never reaches the meta build."""
    files, layout, nbytes = weights
    file = os.path.join(path, sub, "config.json")
    names = ", ".join(files[:2]) + (f" and {len(files) - 2} more shards" if len(files) > 2 else "")
    if size_check is not None:
        size_check(file, nbytes, len(layout), names, len(files))
    report = mismatch_report(expected_state(cls, cfg, file, nbytes, error), layout)
    if report:
        raise error(f"{names} {'does' if len(files) == 1 else 'do'} not match {file}: {report}. The "
                    f"weights are incomplete or belong to another model; download {sub}/ of the model "
                    f"again (config and weights together).")


def load_info_report(info: dict):
    """diffusers' ``output_loading_info`` as one sentence, or None if it reports nothing."""
    parts = [f"{k.replace('_', ' ')}: {short(info.get(k), 200)}" for k in ("missing_keys", "unexpected_keys",
                                                                          "mismatched_keys", "error_msgs")
             if info.get(k)]
    return "; ".join(parts) or None
