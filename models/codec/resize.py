"""Down- and upscaling for the sender (base layer) and the receiver's naive baseline.

``patchwise`` is CaDM's patch-wise resolution downscaling (Sec. 3.2.1): zero-pad ceil(s/2) pixels,
Gaussian-blur to smooth across patch junctions, then shrink each s x s patch to one pixel by a
weighted average. Pixels outside the frame carry zero weight in that average (the padding only
guarantees complete patches and blur support), so borders are not darkened.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

DOWN_METHODS = ("bicubic", "area", "patchwise")
UP_METHODS = ("bicubic", "bilinear", "nearest")


def _nchw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def gaussian_kernel1d(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian; sigma <= 0 picks OpenCV's rule 0.3((size-1)/2 - 1) + 0.8."""
    if sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(r ** 2) / (2 * sigma ** 2))
    return (k / k.sum()).astype(np.float32)


def patchwise_downscale(frames: np.ndarray, factor: int, sigma: float = 0.0) -> np.ndarray:
    """CaDM patch-wise downscale ``[T,H,W,C]`` -> ``[T,H/s,W/s,C]`` float32 (H, W divisible by s).

    The blur kernel spans 2*ceil(s/2)+1 taps, exactly the padded margin, so every tap of every
    patch lies inside the padded frame.
    """
    s = int(factor)
    if s == 1:
        return np.asarray(frames, np.float32).copy()
    p = math.ceil(s / 2)
    k = torch.from_numpy(gaussian_kernel1d(2 * p + 1, sigma))
    x = _nchw(frames)
    n, c, h, w = x.shape
    ones = torch.ones(1, 1, h, w)
    xp = F.pad(x, (p, p, p, p))  # zeros
    mp = F.pad(ones, (p, p, p, p))

    def blur(t):
        ch = t.shape[1]
        t = F.conv2d(t, k.view(1, 1, -1, 1).expand(ch, 1, -1, 1), groups=ch)
        return F.conv2d(t, k.view(1, 1, 1, -1).expand(ch, 1, 1, -1), groups=ch)

    num = F.avg_pool2d(blur(xp), s)   # blur shrinks the padded frame back to H x W
    den = F.avg_pool2d(blur(mp), s)
    return _nhwc(num / den)


def downscale(frames: np.ndarray, factor: int, method: str = "bicubic", sigma: float = 0.0) -> np.ndarray:
    """``[T,H,W,C]`` float 0..1 -> ``[T,H/s,W/s,C]`` float32; H and W must be multiples of s.

    bicubic: antialiased bicubic (Keys a=-0.5, kernel stretched by s, as PIL/MATLAB imresize);
    area: mean of each s x s block; patchwise: CaDM (see module doc). bicubic may ring slightly
    outside 0..1 and is clipped, as any 8-bit image pipeline would.
    """
    s = int(factor)
    if method not in DOWN_METHODS:
        raise ValueError(f"unknown downscale method {method!r}; use one of {DOWN_METHODS}")
    t, h, w, c = frames.shape
    if s < 1 or h % s or w % s:
        raise ValueError(f"frame size {w}x{h} is not divisible by factor {s}")
    if method == "patchwise":
        return patchwise_downscale(frames, s, sigma)
    x = _nchw(frames)
    if method == "area":
        y = F.avg_pool2d(x, s)
    else:
        y = F.interpolate(x, size=(h // s, w // s), mode="bicubic", align_corners=False,
                          antialias=True).clamp(0, 1)
    return _nhwc(y)


def upscale(frames: np.ndarray, factor: int, method: str = "bicubic") -> np.ndarray:
    """``[T,H,W,C]`` float 0..1 -> ``[T,sH,sW,C]`` float32 (half-pixel centres; bicubic clipped)."""
    if method not in UP_METHODS:
        raise ValueError(f"unknown upscale method {method!r}; use one of {UP_METHODS}")
    s = int(factor)
    x = _nchw(frames)
    _, _, h, w = x.shape
    if method == "nearest":
        y = x.repeat_interleave(s, 2).repeat_interleave(s, 3)
    else:
        y = F.interpolate(x, size=(h * s, w * s), mode=method, align_corners=False).clamp(0, 1)
    return _nhwc(y)
