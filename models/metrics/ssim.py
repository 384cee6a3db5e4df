"""SSIM (Wang et al., IEEE TIP 2004) per frame.

Conventions: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = data range (1 for RGB on
0..1, 255 for Y; see ``psnr.prepare``), population (not sample) covariances, statistics computed only
where the window fits inside the frame ("valid"), SSIM map averaged over space and then over channels.
This equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=L, channel_axis=-1)`` and BasicSR's ``calculate_ssim``.
"""
import torch
import torch.nn.functional as F

from ..codec.resize import gaussian_kernel1d
from .psnr import prepare

WINDOW = 11
SIGMA = 1.5


def _gauss(device, dtype):
    return torch.from_numpy(gaussian_kernel1d(WINDOW, SIGMA)).to(device=device, dtype=dtype)


def ssim(x: torch.Tensor, y: torch.Tensor, space: str = "rgb", crop_border: int = 0) -> torch.Tensor:
    """SSIM per frame. x, y: [B,H,W,C] float 0..1 with H,W >= 11 (after cropping); returns [B] float32."""
    x, y, L = prepare(x, y, space, crop_border, "ssim")
    b, h, w, c = x.shape
    if h < WINDOW or w < WINDOW:
        raise ValueError(f"ssim: frames of {w}x{h} are smaller than the {WINDOW}x{WINDOW} window")
    # float32 on data centred per channel: the variances then lose no precision to cancellation,
    # and one stacked convolution serves all five local statistics
    x, y = x.float(), y.float()
    g = _gauss(x.device, torch.float32)
    gh, gw = g.view(1, 1, WINDOW, 1), g.view(1, 1, 1, WINDOW)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    out = []
    for i in range(b):  # per frame: bounded memory on long clips
        a = x[i].permute(2, 0, 1).reshape(c, 1, h, w)
        r = y[i].permute(2, 0, 1).reshape(c, 1, h, w)
        m = a.mean(dim=(2, 3), keepdim=True)
        a0, r0 = a - m, r - m
        st = torch.cat([a0, r0, a0 * a0, r0 * r0, a0 * r0]).view(1, 5 * c, h, w)
        # depthwise (grouped) convolution: several times faster on CPU than a batch of 1-channel maps
        st = F.conv2d(F.conv2d(st, gh.expand(5 * c, 1, WINDOW, 1), groups=5 * c),
                      gw.expand(5 * c, 1, 1, WINDOW), groups=5 * c)
        ma, mr, saa, srr, sar = st.view(5 * c, 1, h - WINDOW + 1, w - WINDOW + 1).split(c)
        sxx, syy, sxy = saa - ma * ma, srr - mr * mr, sar - ma * mr
        mx, my = ma + m, mr + m
        s_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        out.append(s_map.double().mean(dim=(1, 2, 3)).mean())
    return torch.stack(out).float()
