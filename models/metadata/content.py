"""Content analysis at the sender: what a clip holds, per frame and per segment, so that the choice of
metadata can follow the content (MetaSR Sec. 1: text wants sharp edges, flat cartoons may want
nothing, low light and motion change what pays).

Per frame (``frame_scores``), all cheap and local (OpenCV):

- ``text``: share of the frame covered by text-like marks -- connected components of both polarities
  of an adaptive threshold, glyph-sized (6..H/6 px high), not too elongated or too solid, that line up
  with at least two others of similar height on a row (x 4, clipped to 1);
- ``edges``: Canny (100, 200) density, the MetaSR edge setting;
- ``motion``: mean DIS optical-flow magnitude from the previous frame, px (0 for a first frame);
- ``flat``: share of 8 x 8 blocks with a luma std under 2 / 255;
- ``colours``: colours (5 bits a channel) that cover 90 % of the pixels;
- ``luma``: mean BT.601 luma, 0..1;
- ``faces``: frontal faces found by a Haar cascade, when one is available (OpenCV 5 wheels no longer
  ship them: pass ``cascade=`` a haarcascade_frontalface_default.xml); -1 when there is none.

Segments (``scene_cuts``): a cut where the grey-level histograms of consecutive frames differ by more
than ``cut`` in Hellinger (Bhattacharyya) distance. ``bucket`` labels a segment from its mean scores:
text, faces, low-light, flat (with few colours), motion or natural (first that applies, in that order).

Frames are ``[T,H,W,3]`` float 0..1 numpy arrays.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import cv2
import numpy as np

from ..codec.jpeg import to_uint8
from ..metrics.temporal import dis_flow
from .canny import _grey

SCORES = ("text", "edges", "motion", "flat", "colours", "luma", "faces")
CUT = 0.5
TEXT_MIN, FLAT_MIN, FLAT_COLOURS, LOW_LIGHT, MOTION_MIN = 0.15, 0.45, 48, 0.2, 3.0
COVER = 0.9
BUCKETS = ("text", "faces", "low-light", "flat", "motion", "natural")


def text_score(grey: np.ndarray) -> float:
    """Share of the frame covered by glyph-like marks in lines (x 4, at most 1).

    A mark is a connected component of either polarity of an adaptive threshold that is glyph-sized
    (6..H/6 px high, aspect 0.1..4), drawn with a thin, even stroke (its distance-transform values
    inside: max at most a quarter of its height, spread / mean under 0.7 -- blobs and pebbles fail
    here) and set off from its surround; a glyph is in a line when it chains with at least two others
    of similar height on the same row, each gap under 1.2 glyph heights."""
    h, w = grey.shape
    marks = []
    for polarity in (cv2.THRESH_BINARY, cv2.THRESH_BINARY_INV):
        bw = cv2.adaptiveThreshold(grey, 1, cv2.ADAPTIVE_THRESH_MEAN_C, polarity, 15, 12)
        dist = cv2.distanceTransform(bw, cv2.DIST_L2, 3)
        n, labels, stats, cent = cv2.connectedComponentsWithStats(bw, connectivity=8)
        for i in range(1, n):
            x, y, cw, ch, area = (int(v) for v in stats[i])
            if not 6 <= ch <= max(6, h // 6) or cw < 2 or not 0.1 <= cw / ch <= 4:
                continue
            if not 0.12 <= area / (cw * ch) <= 0.85:
                continue
            d = dist[y:y + ch, x:x + cw][labels[y:y + ch, x:x + cw] == i]
            if d.max() > ch / 4 or d.std() > 0.7 * d.mean():
                continue
            marks.append((x, x + cw, cent[i][1], ch, area))
    if len(marks) < 3:
        return 0.0
    m = np.array(sorted(marks), dtype=np.float64)           # by left edge
    x0, x1, cy, ch, area = m.T
    n = len(m)
    # link each mark to the nearest mark to its right on the same row with a similar height
    right = np.full(n, -1)
    for a in range(n):
        cand = np.where((x0 > x0[a]) & (x0 - x1[a] < 1.2 * ch[a]) & (np.abs(cy - cy[a]) < ch[a] / 2)
                        & (np.maximum(ch, ch[a]) < 1.5 * np.minimum(ch, ch[a])))[0]
        if cand.size:
            right[a] = cand[np.argmin(x0[cand])]
    left_count = np.zeros(n, int)
    for a in range(n):
        if right[a] >= 0:
            left_count[right[a]] += 1
    in_line = np.zeros(n, bool)
    for a in np.where(left_count == 0)[0]:                   # walk each chain from its head
        chain = [a]
        while right[chain[-1]] >= 0 and len(chain) <= n:
            chain.append(right[chain[-1]])
        if len(chain) >= 3:
            in_line[chain] = True
    return float(min(1.0, 4.0 * area[in_line].sum() / (h * w)))


def flat_score(grey: np.ndarray, block: int = 8, tol: float = 2.0) -> float:
    h, w = (s // block * block for s in grey.shape)
    if h == 0 or w == 0:
        return 0.0
    b = grey[:h, :w].astype(np.float32).reshape(h // block, block, w // block, block)
    return float((b.std(axis=(1, 3)) < tol).mean())


def colour_count(frame: np.ndarray, cover: float = COVER) -> int:
    """How many colours (5 bits a channel) it takes to cover ``cover`` of the pixels: a cartoon
    stays at its palette after lossy coding (the coding noise adds many rare colours), a photo
    needs hundreds."""
    q = (to_uint8(frame) >> 3).astype(np.int32)
    _, counts = np.unique(q[..., 0] << 10 | q[..., 1] << 5 | q[..., 2], return_counts=True)
    counts = np.sort(counts)[::-1]
    return int(np.searchsorted(np.cumsum(counts), cover * counts.sum()) + 1)


def _cascade(path: Optional[str]):
    cands = [path] if path else [os.path.join(getattr(cv2, "data", None).haarcascades, "haarcascade_frontalface_default.xml")
                                 if getattr(cv2, "data", None) else None]
    for p in cands:
        if p and os.path.isfile(p):
            c = cv2.CascadeClassifier(p)
            if not c.empty():
                return c
    if path:
        raise ValueError(f"cascade: {path!r} is not a readable Haar cascade XML")
    return None


def frame_scores(frames: np.ndarray, cascade: Optional[str] = None) -> Dict[str, np.ndarray]:
    """``[T,H,W,3]`` -> {score: [T]} (see the module doc)."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[1:3]) < 8:
        raise ValueError(f"content analysis: expected [T,H,W,3] frames of at least 8x8, got {frames.shape}")
    faces = _cascade(cascade)
    out = {k: np.zeros(len(frames)) for k in SCORES}
    prev = None
    for t, f in enumerate(frames):
        g = _grey(f)
        out["text"][t] = text_score(g)
        out["edges"][t] = float((cv2.Canny(g, 100, 200) > 0).mean())
        out["motion"][t] = 0.0 if prev is None else float(np.linalg.norm(dis_flow(prev, g), axis=-1).mean())
        out["flat"][t] = flat_score(g)
        out["colours"][t] = colour_count(f)
        out["luma"][t] = float(g.mean()) / 255.0
        out["faces"][t] = -1 if faces is None else len(faces.detectMultiScale(g, 1.1, 5, minSize=(24, 24)))
        prev = g
    return out


def hellinger(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of the 32-bin grey histograms of two [H,W] uint8 frames (0 same, 1 disjoint)."""
    ha = cv2.calcHist([a], [0], None, [32], [0, 256]).ravel()
    hb = cv2.calcHist([b], [0], None, [32], [0, 256]).ravel()
    return float(cv2.compareHist(ha, hb, cv2.HISTCMP_BHATTACHARYYA))


def scene_cuts(frames: np.ndarray, cut: float = CUT) -> List[int]:
    """First frame of every segment (always 0)."""
    greys = [_grey(f) for f in np.asarray(frames, dtype=np.float32)]
    return [0] + [t for t in range(1, len(greys)) if hellinger(greys[t - 1], greys[t]) > cut]


def bucket(s: Dict[str, float]) -> str:
    """The first label that applies: text, faces, low-light, flat (flat blocks *and* few colours:
    a flat sky in a photo is not a cartoon), motion, natural."""
    if s["text"] >= TEXT_MIN:
        return "text"
    if s["faces"] > 0:
        return "faces"
    if s["luma"] < LOW_LIGHT:
        return "low-light"
    if s["flat"] >= FLAT_MIN and s["colours"] <= FLAT_COLOURS:
        return "flat"
    if s["motion"] >= MOTION_MIN:
        return "motion"
    return "natural"


@dataclass(frozen=True)
class Segment:
    start: int
    stop: int
    label: str
    scores: Dict[str, float] = field(default_factory=dict)


def analyse(frames: np.ndarray, cut: float = CUT, cascade: Optional[str] = None):
    """``(per-frame scores {name: [T]}, [Segment])``: segments between scene cuts, each with its
    mean scores (motion over its frames after the first) and bucket."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim == 3:
        frames = frames[None]
    per = frame_scores(frames, cascade)
    starts = scene_cuts(frames, cut)
    segs = []
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else len(frames)
        mean = {k: float(v[s:e].mean()) for k, v in per.items()}
        mean["motion"] = float(per["motion"][s + 1:e].mean()) if e - s > 1 else 0.0
        segs.append(Segment(s, e, bucket(mean), mean))
    return per, segs


def table(per: Dict[str, np.ndarray], segs: List[Segment]) -> str:
    head = f"{'frames':>9}  {'label':<9}" + "".join(f"{k:>9}" for k in SCORES)
    rows = [head, "-" * len(head)]
    for s in segs:
        vals = "".join(f"{s.scores[k]:9.0f}" if k in ("colours", "faces") else f"{s.scores[k]:9.3f}" for k in SCORES)
        rows.append(f"{s.start:>4}-{s.stop - 1:<4}  {s.label:<9}{vals}")
    return "\n".join(rows)
