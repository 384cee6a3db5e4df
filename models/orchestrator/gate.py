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

Dense text fails the level test although its map is right: glyph strokes cover the whole page, so
the map's mean gradient is the page's (level ~ 1.0-1.2). A second test asks whether the map is
where it is *by chance*: ``z`` = (level at its place - mean level of the map moved 8-12 px in 24
directions) / their standard deviation. A map that passes ``z >= min_z`` and is at its sharp peak
(``peak >= min_z_peak``) also passes.

The map passes either test, per frame (a frame without edges passes: nothing to misuse). The level
test's thresholds were set on crops of scikit-image's astronaut, camera and coffee, the z test's on
rendered text pages and cartoons (``models/orchestrator/mixed_set.py``); ``bench/gate.py`` measures
them there and on held-out images and renders. Edge maps only.

A second stage, where the receiver can be run (MetaVSR Verify Metadata with its ``sr_model``
connected): the frame is super-resolved with and without the map, both outputs are brought back to
LR size, and the map is dropped when the with-map output fits the received LR more than
``MAX_INCONSISTENCY`` worse (:func:`inconsistency`, :func:`second_stage`). A wrong map that the
first stage lets through makes the receiver draw edges the LR does not have; a right one rarely
does. It costs true maps too (``bench/gate.py --damage``).

Status: short of the 95 % targets. On held-out photo crops it accepts 84 % of true maps and rejects
91 % of moved ones (in soft images the LR fixes an edge only to about +-2 HR px), every random map
and 95 % of another frame's maps; on held-out text pages and cartoons 88 % / 95 % / 98 % / 98 %
(``python bench/gate.py``; the level test alone kept 40 % of the true maps of text pages).

    check_edges(lr [T,h,w,3] 0..1, edges [T,H,W] 0/1) -> GateResult(accepted, level, peak, z: [T])
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

MIN_LEVEL = 1.5
MIN_PEAK = 0.96     # a little below 1: thin lines and textures put a true map's best move near it
SHIFTS = tuple((dx, dy) for r in (2, 3) for dx, dy in
               ((r, 0), (-r, 0), (0, r), (0, -r), (r, r), (-r, r), (r, -r), (-r, -r)))
MARGIN = 4          # border pixels left out (moved maps would read outside the frame)
# the alignment test's null: the map moved 8-12 px (24 moves), where it no longer sits on its edges
FAR = tuple((dx, dy) for dx in range(-12, 13, 4) for dy in range(-12, 13, 4) if max(abs(dx), abs(dy)) >= 8)
FAR_MARGIN = 13
MIN_Z, MIN_Z_PEAK = 2.0, 0.99
MAX_INCONSISTENCY = 1.05   # second stage: the with-edges output may fit the LR at most 5 % worse


@dataclass(frozen=True)
class GateResult:
    """Per frame: ``accepted`` (bool), ``level``, ``peak``, ``z`` and, after the second stage,
    ``inconsistency`` (NaN where it did not run; see the module doc)."""
    accepted: np.ndarray
    level: np.ndarray
    peak: np.ndarray
    z: np.ndarray
    inconsistency: Optional[np.ndarray] = None

    @property
    def all_accepted(self) -> bool:
        return bool(self.accepted.all())

    def table(self) -> str:
        inc = self.inconsistency
        rows = [f"{'frame':>5}  {'level':>6}  {'peak':>6}  {'z':>6}" + ("  {:>6}".format("fit") if inc is not None else "")
                + "  decision"]
        for i, (a, lv, pk, z) in enumerate(zip(self.accepted, self.level, self.peak, self.z)):
            fit = f"  {inc[i]:6.3f}" if inc is not None else ""
            rows.append(f"{i:>5}  {lv:6.2f}  {pk:6.3f}  {z:6.2f}{fit}  {'metadata' if a else 'pixel-only'}")
        return "\n".join(rows)


def gradient(lr_frame: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """[h,w,3] 0..1 -> [H,W] float32: Sobel magnitude of the bicubic-upsampled, lightly smoothed luma."""
    grey = cv2.cvtColor(np.ascontiguousarray(lr_frame, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    up = cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    up = cv2.GaussianBlur(up, (0, 0), 1.0)
    gx = cv2.Sobel(up, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(up, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def _levels(g: np.ndarray, edges: np.ndarray, m: int, moves):
    """Mean of ``g`` under the map at its place and moved by each of ``moves`` (border ``m`` left
    out), or None when the map has no pixel inside."""
    h, w = g.shape
    core = edges[m:h - m, m:w - m] > 0
    if not core.any():
        return None
    # the map moved by (dx, dy): its pixel (y, x) now reads g at (y + dy, x + dx)
    lv = [float(g[m + dy:h - m + dy, m + dx:w - m + dx][core].mean()) for dx, dy in ((0, 0),) + tuple(moves)]
    return lv[0], np.array(lv[1:]), float(g[m:h - m, m:w - m].mean()) + 1e-12


def scores(g: np.ndarray, edges: np.ndarray) -> Tuple[float, float, float]:
    """(level, peak, z) of one edge map [H,W] on one gradient map [H,W] (see the module doc)."""
    near = _levels(g, edges, MARGIN, SHIFTS)
    if near is None:
        return float("nan"), float("nan"), float("nan")
    own, moved, mean = near
    far = _levels(g, edges, FAR_MARGIN, FAR) if min(g.shape) > 2 * FAR_MARGIN + 1 else None
    z = float("nan") if far is None else (far[0] - far[1].mean()) / (far[1].std() + 1e-6 * far[2])
    return own / mean, own / (moved.max() + 1e-12), float(z)


def check_edges(lr: np.ndarray, edges: np.ndarray, min_level: float = MIN_LEVEL,
                min_peak: float = MIN_PEAK, min_z: float = MIN_Z, min_z_peak: float = MIN_Z_PEAK) -> GateResult:
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
    acc, lev, pk, zs = np.zeros(t, bool), np.zeros(t), np.zeros(t), np.zeros(t)
    for i in range(t):
        e = edges[i if edges.shape[0] == t else 0]
        lv, p, z = scores(gradient(lr[i], (H, W)), e)
        lev[i], pk[i], zs[i] = lv, p, z
        acc[i] = bool(np.isnan(lv) or (lv >= min_level and p >= min_peak) or (z >= min_z and p >= min_z_peak))
    return GateResult(acc, lev, pk, zs)


def inconsistency(lr: np.ndarray, sr_with: np.ndarray, sr_without: np.ndarray) -> np.ndarray:
    """Second stage, per frame: how much worse the with-metadata output fits the received LR than the
    pixel-only output, both brought back to LR size by the link's x4 bicubic downscale:
    MSE(down(sr_with), lr) / MSE(down(sr_without), lr). ``lr`` [T,h,w,3], outputs [T,H,W,3]."""
    from ..codec.resize import downscale
    lr = np.asarray(lr, dtype=np.float32)
    s = sr_with.shape[1] // lr.shape[1]
    d1 = ((downscale(np.asarray(sr_with, np.float32), s, "bicubic") - lr) ** 2).mean(axis=(1, 2, 3))
    d0 = ((downscale(np.asarray(sr_without, np.float32), s, "bicubic") - lr) ** 2).mean(axis=(1, 2, 3))
    return (d1 / np.maximum(d0, 1e-12)).astype(np.float64)


def second_stage(result: GateResult, ratio: np.ndarray, max_ratio: float = MAX_INCONSISTENCY) -> GateResult:
    """``result`` with the frames whose with-metadata output fits the LR more than ``max_ratio``
    worse than pixel-only (:func:`inconsistency`; NaN = not run, kept as decided) rejected too."""
    ratio = np.asarray(ratio, dtype=np.float64)
    if ratio.shape != result.accepted.shape:
        raise ValueError(f"gate: {ratio.shape[0]} consistency ratios for {result.accepted.shape[0]} frames")
    keep = result.accepted & ~(ratio > max_ratio)
    return GateResult(keep, result.level, result.peak, result.z, ratio)
