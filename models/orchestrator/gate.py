"""The verification gate at the receiver (MetaSR Sec. 3.4: V = v(Y, M); metadata that does not agree
with the received frames is dropped, so a receiver never does worse than pixel-only because of it).

The receiver has the LR frames Y and the decoded edge map M (HR size). Edges the sender found on the
HR image sit on the intensity ridges that survive downscaling, so on the gradient magnitude G of the
LR upsampled to HR (bicubic, Gaussian sigma 1, Sobel) an honest map has two properties that a
corrupted one lacks:

- *level*: the mean of G on the map's pixels, over the mean of G (``level``), is well above 1; random
  edges (and edges of another scene) land on average gradient, level ~ 1;
- *alignment*: the map sits where G agrees with it best. ``peak`` = level at the map's own position over
  the best level of the map moved by 2-3 px in 16 directions; an honest map is at its peak (> 1), one
  displaced by 2-3 px finds a better position among the moves (< 1), one displaced further loses level.

The map passes when ``level >= min_level`` and ``peak >= min_peak``, per frame (a frame without edges
passes: nothing to misuse). Thresholds were set on crops of scikit-image's astronaut, camera and
coffee; ``bench/gate.py`` measures them there and on held-out images. Edge maps only.

Status: a first stage. On held-out crops it accepts 82 % of true maps and rejects 91 % of moved ones
(82 % at 2 px: in soft images the LR fixes an edge only to about +-2 HR px), every random map and
95 % of another frame's maps -- short of the 95 % targets, so no node uses it yet.

    check_edges(lr [T,h,w,3] 0..1, edges [T,H,W] 0/1) -> GateResult(accepted [T], level [T], peak [T])
"""
from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

MIN_LEVEL = 1.5
MIN_PEAK = 0.96     # a little below 1: thin lines and textures put a true map's best move near it
SHIFTS = tuple((dx, dy) for r in (2, 3) for dx, dy in
               ((r, 0), (-r, 0), (0, r), (0, -r), (r, r), (-r, r), (r, -r), (-r, -r)))
MARGIN = 4          # border pixels left out (moved maps would read outside the frame)


@dataclass(frozen=True)
class GateResult:
    """Per frame: ``accepted`` (bool), ``level`` and ``peak`` (see the module doc)."""
    accepted: np.ndarray
    level: np.ndarray
    peak: np.ndarray

    @property
    def all_accepted(self) -> bool:
        return bool(self.accepted.all())

    def table(self) -> str:
        rows = [f"{'frame':>5}  {'level':>6}  {'peak':>6}  decision"]
        for i, (a, lv, pk) in enumerate(zip(self.accepted, self.level, self.peak)):
            rows.append(f"{i:>5}  {lv:6.2f}  {pk:6.3f}  {'metadata' if a else 'pixel-only'}")
        return "\n".join(rows)


def gradient(lr_frame: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """[h,w,3] 0..1 -> [H,W] float32: Sobel magnitude of the bicubic-upsampled, lightly smoothed luma."""
    grey = cv2.cvtColor(np.ascontiguousarray(lr_frame, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    up = cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    up = cv2.GaussianBlur(up, (0, 0), 1.0)
    gx = cv2.Sobel(up, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(up, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def scores(g: np.ndarray, edges: np.ndarray) -> Tuple[float, float]:
    """(level, peak) of one edge map [H,W] on one gradient map [H,W] (see the module doc)."""
    h, w = g.shape
    m = MARGIN
    core = edges[m:h - m, m:w - m] > 0
    if not core.any():
        return float("nan"), float("nan")
    mean = float(g[m:h - m, m:w - m].mean()) + 1e-12

    def level(dx, dy):
        # the map moved by (dx, dy): its pixel (y, x) now reads g at (y + dy, x + dx)
        return float(g[m + dy:h - m + dy, m + dx:w - m + dx][core].mean()) / mean
    own = level(0, 0)
    return own, own / (max(level(dx, dy) for dx, dy in SHIFTS) + 1e-12)


def check_edges(lr: np.ndarray, edges: np.ndarray, min_level: float = MIN_LEVEL,
                min_peak: float = MIN_PEAK) -> GateResult:
    """Gate decoded edge maps ``edges`` [T,H,W] (or one [H,W]; a single map serves every frame) against
    the received LR frames ``lr`` [T,h,w,3] float 0..1 (H, W a multiple of h, w)."""
    lr = np.asarray(lr, dtype=np.float32)
    if lr.ndim == 3:
        lr = lr[None]
    edges = np.asarray(edges)
    if edges.ndim == 2:
        edges = edges[None]
    if edges.ndim == 4 and edges.shape[-1] == 1:
        edges = edges[..., 0]
    if lr.ndim != 4 or lr.shape[-1] != 3 or edges.ndim != 3:
        raise ValueError(f"gate: expected lr [T,h,w,3] and edges [T,H,W], got {lr.shape} and {edges.shape}")
    t, h, w, _ = lr.shape
    if edges.shape[0] not in (1, t):
        raise ValueError(f"gate: {edges.shape[0]} edge maps for {t} frames; give one map or one per frame")
    H, W = edges.shape[1:]
    if H % h or W % w or H // h != W // w or H < h:
        raise ValueError(f"gate: edge maps {W}x{H} are not an integer multiple of the LR frames {w}x{h}")
    acc, lev, pk = np.zeros(t, bool), np.zeros(t), np.zeros(t)
    for i in range(t):
        e = edges[i if edges.shape[0] == t else 0]
        lv, p = scores(gradient(lr[i], (H, W)), e)
        lev[i], pk[i] = lv, p
        acc[i] = bool(np.isnan(lv) or (lv >= min_level and p >= min_peak))
    return GateResult(acc, lev, pk)
