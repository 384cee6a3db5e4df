"""Temporal-consistency metrics for video, one value per consecutive frame pair (T-1 values).

Optical flow is OpenCV's DIS (Kroeger et al., ECCV 2016; preset MEDIUM) on 8-bit BT.601 grey frames;
``flow(a, b)`` maps a pixel p of ``a`` to ``p + f(p)`` in ``b``.

- tOF (TecoGAN, Chu et al., ACM TOG 2020; reported by Stream-DiffVSR): for each pair (t-1, t)
      tOF_t = mean_p || F(x_{t-1}, x_t)(p) - F(y_{t-1}, y_t)(p) ||_2        [pixels; papers print x10]
  x = output, y = ground truth. TecoGAN used Farneback flow; we use DIS, so values are comparable in
  trend, not digit for digit.
- tLP (TecoGAN; Stream-DiffVSR):
      tLP_t = | LPIPS(x_{t-1}, x_t) - LPIPS(y_{t-1}, y_t) |                    [papers print x100]
- E_warp (Lai et al., ECCV 2018; STAR reports it x1e3, lower = more stable): for each pair (t, t+1)
      E_t = sum_p M_t(p) || x_t(p) - W(x_{t+1})(p) ||^2  /  sum_p M_t(p)
  with RGB in 0..1 (the squared norm sums the three channels), W the backward warp of frame t+1 to
  t along F(t -> t+1) (bilinear), and M_t the non-occlusion mask of Ruder et al. (forward-backward
  check |f + b'|^2 <= 0.01 (|f|^2 + |b'|^2) + 0.5, target inside the frame). The flow comes from the
  ``flow_from`` clip (ground truth, as Lai et al.) or, when it is None, from x itself (no-reference
  use on real videos, as STAR's E*_warp). Values are returned unscaled (multiply by 1e3 to match STAR).
"""
from typing import Optional

import cv2
import numpy as np
import torch

from .common import check_pair
from .lpips import lpips

_MIN_SIDE = 16


def grey_u8(frames: torch.Tensor) -> np.ndarray:
    """[T,H,W,3] float 0..1 -> [T,H,W] uint8 BT.601 luma (cv2's RGB2GRAY weights)."""
    f = frames.detach().float().cpu().clamp(0, 1).numpy()
    g = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114 if f.shape[-1] == 3 else f[..., 0]
    return np.round(g * 255).astype(np.uint8)


def _dis():
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[H,W] uint8 grey frames -> [H,W,2] float32 flow (dx, dy) from a to b (DIS, preset MEDIUM)."""
    return _dis().calc(a, b, None)


def _check_video(x, name, min_frames=2):
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"{name}: expected [T,H,W,C] frames, got {getattr(x, 'shape', type(x).__name__)}")
    t, h, w, _ = x.shape
    if t < min_frames:
        raise ValueError(f"{name}: temporal metrics need at least {min_frames} frames, got {t}")
    if h < _MIN_SIDE or w < _MIN_SIDE:
        raise ValueError(f"{name}: frames of {w}x{h} are too small for optical flow (min {_MIN_SIDE})")


def tof(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """tOF per frame pair. x (output), y (ground truth): [T,H,W,3] float 0..1; returns [T-1] float32."""
    x, y = check_pair(x, y, "tof")
    _check_video(x, "tof")
    gx, gy = grey_u8(x), grey_u8(y)
    out = []
    for t in range(1, len(gx)):
        d = dis_flow(gx[t - 1], gx[t]) - dis_flow(gy[t - 1], gy[t])
        out.append(float(np.sqrt((d.astype(np.float64) ** 2).sum(-1)).mean()))
    return torch.tensor(out, dtype=torch.float32)


def tlp(x: torch.Tensor, y: torch.Tensor, net: str = "alex", weights_dirs=None) -> torch.Tensor:
    """tLP per frame pair. x (output), y (ground truth): [T,H,W,3] float 0..1 (H,W >= 32);
    returns [T-1] float32 on x's device."""
    x, y = check_pair(x, y, "tlp")
    _check_video(x, "tlp")
    lx = lpips(x[:-1], x[1:], net=net, weights_dirs=weights_dirs)
    ly = lpips(y[:-1], y[1:], net=net, weights_dirs=weights_dirs)
    return (lx - ly).abs()


def warp_image(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def non_occlusion_mask(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Ruder et al. forward-backward check. fw: flow t->t+1, bw: flow t+1->t, both [H,W,2].
    Returns [H,W] float32, 1 where the pixel of frame t is visible in frame t+1."""
    h, w = fw.shape[:2]
    bw_at = warp_image(bw, fw)  # backward flow sampled where each pixel lands
    s = fw + bw_at
    occ = (s ** 2).sum(-1) > 0.01 * ((fw ** 2).sum(-1) + (bw_at ** 2).sum(-1)) + 0.5
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    tx, ty = gx + fw[..., 0], gy + fw[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return (~occ & inside).astype(np.float32)


def ewarp(x: torch.Tensor, flow_from: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Flow warping error per frame pair (unscaled; STAR prints x1e3).

    x:          [T,H,W,3] float 0..1, the video judged.
    flow_from:  [T,H,W,3] the clip the flow is computed on (ground truth); None: x itself.
    returns     [T-1] float32; a pair whose mask is empty (all occluded) gives 0.
    """
    if flow_from is None:
        flow_from = x
    x, flow_from = check_pair(x, flow_from, "ewarp")
    _check_video(x, "ewarp")
    g = grey_u8(flow_from)
    f = x.detach().cpu().numpy().astype(np.float32)
    out = []
    for t in range(len(f) - 1):
        fw, bw = dis_flow(g[t], g[t + 1]), dis_flow(g[t + 1], g[t])
        m = non_occlusion_mask(fw, bw)
        err = ((f[t] - warp_image(f[t + 1], fw)) ** 2).sum(-1)
        n = float(m.sum())
        out.append(float((err * m).sum() / n) if n > 0 else 0.0)
    return torch.tensor(out, dtype=torch.float32)
