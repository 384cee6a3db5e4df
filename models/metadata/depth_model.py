"""Depth at the sender from a local depth-estimation model folder (Depth-Anything, DPT, any model
``transformers``' AutoModelForDepthEstimation loads), so the depth metadata needs no other node.

A folder holds ``config.json`` and the weights (``model.safetensors``), optionally
``preprocessor_config.json`` (``image_mean`` / ``image_std`` / ``size`` are read from it; the
Depth-Anything defaults otherwise). Loading is local only (``local_files_only``); nothing downloads.
``transformers`` is optional: without it :func:`load` says how to install it.

Both families predict relative inverse depth (larger = nearer), so the map is normalised per frame
to 0..1 with near = 1, the convention of ComfyUI's depth nodes and of ``models/metadata/depth.py``.
"""
import json
import os
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

MEAN, STD, SIZE = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 518


class DepthModelError(ValueError):
    """A depth model folder that cannot be used; the message names the folder and the fix."""


def _preprocess(path: str) -> dict:
    p = os.path.join(path, "preprocessor_config.json")
    cfg = {}
    if os.path.isfile(p):
        try:
            with open(p, encoding="utf-8") as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise DepthModelError(f"{p}: not readable JSON ({e}); fix or delete it (defaults are used "
                                  f"without it).") from e
    size = cfg.get("size", SIZE)
    if isinstance(size, dict):
        size = size.get("shortest_edge") or size.get("height") or SIZE
    mean, std = cfg.get("image_mean", MEAN), cfg.get("image_std", STD)
    if not (isinstance(size, int) and 14 <= size <= 4096 and len(mean) == 3 and len(std) == 3):
        raise DepthModelError(f"{p}: size {size!r} / image_mean / image_std are not a usable preprocessing; "
                              f"fix the file or delete it.")
    return dict(size=int(size), mean=tuple(map(float, mean)), std=tuple(map(float, std)))


def load(path: str, device="cpu"):
    """The model of a local folder, on ``device``, in eval mode, with its preprocessing as
    ``model.metavsr_pre``."""
    if not os.path.isdir(path):
        raise DepthModelError(f"{path}: not a folder; put a depth model (config.json + model.safetensors, "
                              f"e.g. Depth-Anything-V2-Small in transformers format) in ComfyUI/models/depth/<name>/.")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise DepthModelError(f"{path}: no config.json; the folder must be a transformers model folder "
                              f"(config.json + model.safetensors).")
    try:
        from transformers import AutoModelForDepthEstimation
    except ImportError as e:
        raise DepthModelError(f"depth models need the transformers package ({e}); pip install transformers") from e
    pre = _preprocess(path)
    try:
        model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise DepthModelError(f"{path}: transformers could not load it as a depth model ({type(e).__name__}: "
                              f"{str(e)[:300]}); check config.json and the weight file.") from e
    model = model.to(device).eval()
    model.metavsr_pre = pre
    return model


def _multiple(model) -> int:
    cfg = model.config
    bb = getattr(cfg, "backbone_config", None)
    return int(getattr(bb, "patch_size", None) or getattr(cfg, "patch_size", None) or 14)


@torch.no_grad()
def estimate(model, frames, progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """``frames`` ``[T,H,W,3]`` float 0..1 -> ``[T,H,W]`` float32 0..1, near = 1 (per frame min-max
    of the predicted inverse depth). The network sees each frame with its shorter side at the
    folder's size (sides rounded to the patch size), its output is resized back bicubically."""
    x = torch.as_tensor(np.asarray(frames, dtype=np.float32))
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"depth estimation: frames must be [T,H,W,3], got {tuple(x.shape)}")
    pre = getattr(model, "metavsr_pre", dict(size=SIZE, mean=MEAN, std=STD))
    t, h, w, _ = x.shape
    k = _multiple(model)
    s = pre["size"] / min(h, w)
    th, tw = max(k, int(round(h * s / k)) * k), max(k, int(round(w * s / k)) * k)
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    mean = torch.tensor(pre["mean"], device=dev).view(1, 3, 1, 1)
    std = torch.tensor(pre["std"], device=dev).view(1, 3, 1, 1)
    out = np.empty((t, h, w), np.float32)
    for i in range(t):
        f = x[i:i + 1].permute(0, 3, 1, 2).to(dev)
        f = F.interpolate(f, size=(th, tw), mode="bicubic", align_corners=False).clamp(0, 1)
        d = model(pixel_values=((f - mean) / std).to(dtype)).predicted_depth.float()
        d = F.interpolate(d[:, None], size=(h, w), mode="bicubic", align_corners=False)[0, 0]
        lo, hi = d.min(), d.max()
        out[i] = ((d - lo) / (hi - lo)).cpu().numpy() if hi > lo else np.zeros((h, w), np.float32)
        if progress is not None:
            progress(i + 1, t)
    return np.clip(out, 0, 1)
