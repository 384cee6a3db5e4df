"""Canny edge metadata computed on the HR frames at the sender (MetaSR Sec. 4.3)."""
import cv2
import numpy as np

from ..codec.jpeg import to_uint8


def _grey(frame: np.ndarray) -> np.ndarray:
    """[H,W,3|1] float 0..1 -> [H,W] uint8 luma (OpenCV's BT.601 weights)."""
    u8 = to_uint8(frame)
    return u8[..., 0] if u8.shape[-1] == 1 else cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY)


def canny_edges(frames: np.ndarray, low: float, high: float, dilate: int = 0,
                l2gradient: bool = False) -> np.ndarray:
    """``[T,H,W,C]`` float 0..1 -> ``[T,H,W]`` uint8 edge map (1 = edge).

    ``dilate`` grows edges by that many pixels (3x3 cross steps), which makes them survive
    downscaled coding but costs bits.
    """
    if low < 0 or high < 0:
        raise ValueError("Canny thresholds must be >= 0")
    if low > high:
        low, high = high, low  # OpenCV treats them as an unordered pair as well
    out = np.empty(frames.shape[:3], np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for t, frame in enumerate(frames):
        e = cv2.Canny(_grey(frame), float(low), float(high), L2gradient=l2gradient)
        if dilate > 0:
            e = cv2.dilate(e, kernel, iterations=int(dilate))
        out[t] = e > 0
    return out


def canny_for_density(frames: np.ndarray, target_density: float, ratio: float = 0.4,
                      dilate: int = 0, iterations: int = 14):
    """Pick the high threshold (low = ratio * high) whose edge density is closest to
    ``target_density`` (fraction of pixels that are edges, over the whole clip).

    Density falls monotonically as thresholds rise, so a bisection on ``high`` in [0, 1000]
    converges; returns ``(edges [T,H,W] uint8, low, high, density)``.
    """
    if not 0.0 <= target_density <= 1.0:
        raise ValueError(f"target_density must be in 0..1, got {target_density}")
    lo, hi = 0.0, 1000.0
    best = None
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        e = canny_edges(frames, ratio * mid, mid, dilate)
        d = float(e.mean())
        if best is None or abs(d - target_density) < abs(best[3] - target_density):
            best = (e, ratio * mid, mid, d)
        if d > target_density:
            lo = mid
        else:
            hi = mid
    return best
