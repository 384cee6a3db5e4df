"""How much of a transmitted edge map a receiver's output reproduces (a diagnostic, not a ranking metric).

PSNR says how good a reconstruction is, not where edge metadata went unused. Two measures do:

* :func:`near_edge_error`: the share of the squared error within ``radius`` HR pixels of the map's
  edges, and the mean squared error near and far from them. On the HN channel about three quarters
  of the embedded receiver's error sits within 4 px of the transmitted edges (``bench/edge_use.py``),
  so that is where metadata can pay.
* :func:`edge_contrast`: at every edge pixel of the map, the output's luma gradient projected on the
  HR's, over the HR's squared magnitude (both after a Gaussian of ``sigma`` HR pixels, so a step one
  pixel off still counts): 1 = the edge is there with its contrast and polarity, 0 = it is missing
  (a flat or blurred-away output), below 0 = drawn with the wrong polarity. A binary edge map says
  where a transition is, not which side is darker; run on the received LR's bicubic upscale at a
  coarser ``sigma``, the same ratio tells whether the LR shows that polarity itself.

Shapes: ``sr`` and ``hr`` ``[H,W,3]`` float 0..1, ``edges`` ``[H,W]`` (nonzero = edge).
"""
import cv2
import numpy as np

def _check(sr, hr, edges):
    sr, hr, edges = np.asarray(sr, np.float32), np.asarray(hr, np.float32), np.asarray(edges)
    if sr.shape != hr.shape or sr.ndim != 3 or sr.shape[-1] != 3:
        raise ValueError(f"sr and hr must both be [H,W,3], got {sr.shape} and {hr.shape}")
    if edges.shape != hr.shape[:2]:
        raise ValueError(f"edges must be [H,W] = {hr.shape[:2]}, got {edges.shape}")
    return sr, hr, edges != 0


def near_edge_error(sr, hr, edges, radius: int = 4) -> dict:
    """``{share, mse_near, mse_far, near_fraction}``: where the squared error of ``sr`` sits relative
    to the edges (``near`` = within ``radius`` pixels, a square neighbourhood)."""
    sr, hr, e = _check(sr, hr, edges)
    near = cv2.dilate(e.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)) > 0
    se = ((sr - hr) ** 2).mean(-1)
    total = float(se.sum())
    return dict(share=float(se[near].sum()) / total if total > 0 else 0.0,
                mse_near=float(se[near].mean()) if near.any() else 0.0,
                mse_far=float(se[~near].mean()) if (~near).any() else 0.0,
                near_fraction=float(near.mean()))


def _gradient(img, sigma):
    y = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)  # BT.601, the Canny sender's grey
    if sigma > 0:
        y = cv2.GaussianBlur(y, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    return (cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101),
            cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101))


def edge_contrast(sr, hr, edges, sigma: float = 1.0, min_gradient: float = 0.05) -> dict:
    """``{median, reproduced, wrong_polarity, pixels}`` over the edge pixels whose HR gradient is at
    least ``min_gradient`` (luma per pixel, Sobel-scaled; weaker ones say nothing about contrast):
    the median projected-gradient ratio, the fraction with ratio >= 0.5 and the fraction < 0."""
    sr, hr, e = _check(sr, hr, edges)
    sx, sy = _gradient(sr, sigma)
    hx, hy = _gradient(hr, sigma)
    mag2 = hx * hx + hy * hy
    use = e & (mag2 >= min_gradient ** 2)
    if not use.any():
        return dict(median=float("nan"), reproduced=float("nan"), wrong_polarity=float("nan"), pixels=0)
    ratio = (sx[use] * hx[use] + sy[use] * hy[use]) / mag2[use]
    return dict(median=float(np.median(ratio)), reproduced=float(np.mean(ratio >= 0.5)),
                wrong_polarity=float(np.mean(ratio < 0)), pixels=int(use.sum()))
