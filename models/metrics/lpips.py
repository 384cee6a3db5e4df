"""LPIPS v0.1 (Zhang et al., CVPR 2018): learned perceptual distance on AlexNet or VGG16 features.

Definition (as the authors' ``lpips`` package, version 0.1): inputs in 0..1 are mapped to -1..1,
shifted/scaled per channel (shift [-.030,-.088,-.188], scale [.458,.448,.450]); for each tap l the
features are unit-normalised along channels, their squared difference is weighted by the linear head
w_l (1x1 conv, no bias) and averaged over space; LPIPS = sum over taps. Lower is more similar.
AlexNet taps relu1..relu5; VGG16 taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
"""
import os
from typing import Iterable, Optional

import torch

from . import features as fe
from .common import MIN_DEEP_SIZE, check_pair

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _weights(net: str, device, weights_dirs):
    if net == "alex":
        return fe.load_weights(os.path.join(fe.WEIGHTS_DIR, fe.ALEX_FILE), device)
    if net == "vgg":
        return fe.load_weights(fe.find_vgg(weights_dirs), device)
    raise ValueError(f"lpips: net must be 'alex' or 'vgg', got {net!r}")


def _unit(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return f / (torch.sqrt((f * f).sum(dim=1, keepdim=True)) + eps)


@torch.no_grad()
def lpips(x: torch.Tensor, y: torch.Tensor, net: str = "alex",
          weights_dirs: Optional[Iterable[str]] = None) -> torch.Tensor:
    """LPIPS distance per frame.

    x, y:          [B,H,W,3] float 0..1 (same shape, H,W >= 32); runs on x's device.
    net:           "alex" (weights ship with the pack) or "vgg" (needs vgg16_metrics.safetensors,
                   see ``features.vgg_instructions``).
    weights_dirs:  extra folders to search for the VGG file (ComfyUI's models/metavsr_metrics).
    returns        [B] float32 on x's device.
    """
    x, y = check_pair(x, y, "lpips", MIN_DEEP_SIZE)
    if x.shape[-1] != 3:
        raise ValueError(f"lpips: needs RGB input (C=3), got C={x.shape[-1]}")
    w = _weights(net, x.device, weights_dirs)
    trunk = fe.alexnet if net == "alex" else fe.vgg16
    shift = torch.tensor(_SHIFT, device=x.device).view(1, 3, 1, 1)
    scale = torch.tensor(_SCALE, device=x.device).view(1, 3, 1, 1)
    out = []
    for i in range(x.shape[0]):  # one frame at a time keeps memory bounded for long clips
        a = (fe.to_nchw(x[i:i + 1]) * 2 - 1 - shift) / scale
        b = (fe.to_nchw(y[i:i + 1]) * 2 - 1 - shift) / scale
        d = 0.0
        for k, (fa, fb) in enumerate(zip(trunk(a, w), trunk(b, w))):
            diff = (_unit(fa) - _unit(fb)) ** 2
            d = d + torch.nn.functional.conv2d(diff, w[f"lin.{k}.weight"]).mean(dim=(1, 2, 3))
        out.append(d)
    return torch.cat(out)
