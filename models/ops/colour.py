"""Colour correction of a restored video towards its LR input: the two fixes diffusion SR methods use
(StableSR's, which STAR ships in ``video_super_resolution/color_fix.py``) as pure torch functions.

- :func:`adain`: per frame and channel, the output's mean and standard deviation are replaced by the
  LR frame's (STAR's default after sampling); sizes may differ.
- :func:`wavelet`: the output keeps its own high frequencies and takes the low band (5-level
  dilated-binomial "a trous" decomposition) of the LR frame upsampled to its size (bicubic), so
  colours follow the input without flattening detail.

Frames are ``[T, C, H, W]`` float 0..1; results are clamped to 0..1, as STAR clamps.
"""
import torch
import torch.nn.functional as F

_BINOMIAL = ((0.0625, 0.125, 0.0625), (0.125, 0.25, 0.125), (0.0625, 0.125, 0.0625))


def _mean_std(x: torch.Tensor, eps: float = 1e-5):
    """Per frame and channel of [T, C, H, W]: mean and sqrt(unbiased variance + eps) (StableSR's)."""
    flat = x.flatten(2)
    return flat.mean(dim=2)[..., None, None], (flat.var(dim=2) + eps).sqrt()[..., None, None]


def adain(out: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
    """[T,C,H,W] output, [T,C,h,w] LR (any size) -> the output with the LR's per-channel statistics."""
    m_o, s_o = _mean_std(out.float())
    m_l, s_l = _mean_std(lr.float())
    return ((out.float() - m_o) / s_o * s_l + m_l).clamp(0, 1)


def _blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    c = x.shape[1]
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, (radius,) * 4, mode="replicate"), k, groups=c, dilation=radius)


def wavelet_split(x: torch.Tensor, levels: int = 5):
    """[N,C,H,W] -> (high, low): low after ``levels`` blurs of radius 1, 2, 4, ...; high = x - low."""
    low = x
    for i in range(levels):
        low = _blur(low, 2 ** i)
    return x - low, low


def wavelet(out: torch.Tensor, lr: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """[T,C,H,W] output, [T,C,h,w] LR -> output high band + low band of the bicubic-upsampled LR."""
    out = out.float()
    up = F.interpolate(lr.float(), size=out.shape[-2:], mode="bicubic", align_corners=False)
    high, _ = wavelet_split(out, levels)
    _, low = wavelet_split(up, levels)
    return (high + low).clamp(0, 1)


FIXES = {"none": lambda out, lr: out.float().clamp(0, 1), "adain": adain, "wavelet": wavelet}
