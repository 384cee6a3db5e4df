"""DISTS (Ding et al., TPAMI 2020): structure and texture similarity on VGG16 features with L2 pooling.

Definition (as the authors' ``DISTS_pytorch`` 0.1): the VGG16 trunk has its max-pools replaced by L2
pooling (sqrt of a 3x3 Hanning-weighted, stride-2 blur of x^2); the input is ImageNet-normalised.
Taps: the raw 0..1 image and relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (3+64+128+256+512+512 =
1475 channels). Per channel, with global means mu, variances s^2, covariance s_xy, c1 = c2 = 1e-6:
    S1 = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1),  S2 = (2 s_xy + c2) / (s_x^2 + s_y^2 + c2)
    DISTS = 1 - sum_c (alpha_c S1_c + beta_c S2_c) / sum(alpha + beta).
Lower is more similar. Needs ``vgg16_metrics.safetensors`` (see ``features.vgg_instructions``).
"""
import os
from typing import Iterable, Optional

import torch
import torch.nn.functional as F

from . import features as fe
from .common import MIN_DEEP_SIZE, check_pair

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_CHANNELS = (3, 64, 128, 256, 512, 512)


def _l2pool(filters):
    def pool(stage, x):
        f = filters[stage]
        return torch.sqrt(F.conv2d(x * x, f, stride=2, padding=1, groups=x.shape[1]) + 1e-12)
    return pool


def _taps(img, w, filters, mean, std):
    return [img] + fe.vgg16((img - mean) / std, w, pool=_l2pool(filters))


@torch.no_grad()
def dists(x: torch.Tensor, y: torch.Tensor, weights_dirs: Optional[Iterable[str]] = None) -> torch.Tensor:
    """DISTS per frame. x, y: [B,H,W,3] float 0..1, H,W >= 32; returns [B] float32 on x's device."""
    x, y = check_pair(x, y, "dists", MIN_DEEP_SIZE)
    if x.shape[-1] != 3:
        raise ValueError(f"dists: needs RGB input (C=3), got C={x.shape[-1]}")
    dev = x.device
    w = fe.load_weights(fe.find_vgg(weights_dirs), dev)
    ab = fe.load_weights(os.path.join(fe.WEIGHTS_DIR, fe.DISTS_FILE), dev)
    total = ab["alpha"].sum() + ab["beta"].sum()
    alphas = torch.split(ab["alpha"] / total, _CHANNELS)
    betas = torch.split(ab["beta"] / total, _CHANNELS)
    filters = {s: fe.hanning_l2pool_filter(c, dev) for s, c in zip(range(1, 5), (64, 128, 256, 512))}
    mean = torch.tensor(_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(_STD, device=dev).view(1, 3, 1, 1)
    c1 = c2 = 1e-6
    out = []
    for i in range(x.shape[0]):
        fx = _taps(fe.to_nchw(x[i:i + 1]), w, filters, mean, std)
        fy = _taps(fe.to_nchw(y[i:i + 1]), w, filters, mean, std)
        s = torch.zeros((), device=dev)
        for a, b, al, be in zip(fx, fy, alphas, betas):
            mx, my = a.mean(dim=(2, 3)), b.mean(dim=(2, 3))
            vx = ((a - mx[..., None, None]) ** 2).mean(dim=(2, 3))
            vy = ((b - my[..., None, None]) ** 2).mean(dim=(2, 3))
            cxy = (a * b).mean(dim=(2, 3)) - mx * my
            s1 = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
            s2 = (2 * cxy + c2) / (vx + vy + c2)
            s = s + (al * s1[0]).sum() + (be * s2[0]).sum()
        out.append((1 - s).reshape(1))
    return torch.cat(out)
