"""SSIM (Wang et al., IEEE TIP 2004) per frame.

Conventions: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = data range (1 for RGB on
0..1, 255 for Y; see ``psnr.prepare``), population (not sample) covariances, statistics computed only
where the window fits inside the frame ("valid"), SSIM map averaged over space and then over channels.
This equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=L, channel_axis=-1)`` and BasicSR's ``calculate_ssim``.
"""
import math

import torch
import torch.nn.functional as F

from .psnr import prepare

WINDOW = 11
SIGMA = 1.5


def _gauss(device, dtype):
    r = WINDOW // 2
    g = torch.tensor([math.exp(-(i * i) / (2 * SIGMA ** 2)) for i in range(-r, r + 1)], dtype=dtype, device=device)
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, space: str = "rgb", crop_border: int = 0) -> torch.Tensor:
    """SSIM per frame. x, y: [B,H,W,C] float 0..1 with H,W >= 11 (after cropping); returns [B] float32."""
    x, y, L = prepare(x, y, space, crop_border, "ssim")
    b, h, w, c = x.shape
    if h < WINDOW or w < WINDOW:
        raise ValueError(f"ssim: frames of {w}x{h} are smaller than the {WINDOW}x{WINDOW} window")
    g = _gauss(x.device, x.dtype)
    gh, gw = g.view(1, 1, WINDOW, 1), g.view(1, 1, 1, WINDOW)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    out = []
    for i in range(b):  # per frame: bounded memory on long clips
        a = x[i].permute(2, 0, 1).reshape(c, 1, h, w)
        r = y[i].permute(2, 0, 1).reshape(c, 1, h, w)

        def blur(t):
            return F.conv2d(F.conv2d(t, gh), gw)
        mx, my = blur(a), blur(r)
        sxx = blur(a * a) - mx * mx
        syy = blur(r * r) - my * my
        sxy = blur(a * r) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        out.append(m.mean(dim=(1, 2, 3)).mean())
    return torch.stack(out).float()
