"""Down- and upscaling for the sender (base layer) and the receiver's naive baseline.

``patchwise`` is CaDM's patch-wise resolution downscaling (Sec. 3.2.1): zero-pad ceil(s/2) pixels,
Gaussian-blur to smooth across patch junctions, then shrink each s x s patch to one pixel by a
weighted average. Pixels outside the frame carry zero weight in that average (the padding only
guarantees complete patches and blur support), so borders are not darkened.
"""
import math

import cv2
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
    patch lies inside the padded frame. The in-frame weight of a pixel is separable (a 1-D blur of
    ones along each axis), so normalising costs two short 1-D convolutions.
    """
    s = int(factor)
    frames = np.asarray(frames, np.float32)
    if s == 1:
        return frames.copy()
    p = math.ceil(s / 2)
    k = gaussian_kernel1d(2 * p + 1, sigma)
    t, h, w, c = frames.shape
    wy = np.convolve(np.pad(np.ones(h, np.float32), p), k, "valid")  # in-frame weight per row
    wx = np.convolve(np.pad(np.ones(w, np.float32), p), k, "valid")
    den = wy.reshape(h // s, s).mean(1)[:, None] * wx.reshape(w // s, s).mean(1)[None, :]
    out = np.empty((t, h // s, w // s, c), np.float32)
    for i, frame in enumerate(frames):
        padded = cv2.copyMakeBorder(frame, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
        blurred = cv2.sepFilter2D(padded, -1, k, k, borderType=cv2.BORDER_CONSTANT)[p:p + h, p:p + w]
        blurred = blurred.reshape(h, w, c)
        out[i] = blurred.reshape(h // s, s, w // s, s, c).mean(axis=(1, 3)) / den[..., None]
    return out


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
