"""The operational orchestrator: the sender holds the HR, so it simulates the receiver on every
candidate and keeps, per segment, the one of least J = D + lambda R (MetaSR Sec. 3.4 / 4.3).

    table = evaluate(segments, receiver, grid(...), regime)    # every candidate run once, cached
    picks = choose(table, lam)                                  # min J per segment at one lambda
    picks, lam = meet_budget(table, max_bits)                   # best quality within a bit budget
    curve = sweep(table); fixed = fixed_curves(table)           # RD of orchestrated vs fixed choices

D is additive over segments: the metric's distortion (``metrics.rd.distortion``: MSE in 8-bit units
for PSNR, 1 - SSIM, LPIPS / DISTS as they are) times the segment's HR pixels, so the best choice for
a set is the best choice per segment at a common lambda. R is the real bits: JPEG base layer, the
metadata stream and one byte per segment naming its option (:data:`candidates.SIGNAL_BITS`; the
same record for fixed and orchestrated choices, one container format). A set's
quality is the metric of its pooled distortion (PSNR of the total MSE; pixel-weighted mean for the
others).

Candidate runs are cached by (segment content, regime, seed, receiver, candidate); a cache with a
path is written atomically after each segment, so an interrupted run resumes where it stopped and
no result is lost. ``executor`` is anything with ``map(fn, items)`` (a ``concurrent.futures``
executor, a multiprocessing or Ray pool): base-layer qualities of a segment run on it in parallel.
"""
import hashlib
import json
import os
import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import atomic, link
from ..codec.resize import upscale
from ..metrics import distortion, metric as metric_info
from ..receivers.base import RunOptions
from .candidates import SIGNAL_BITS, Candidate, send

Table = Dict[str, List[dict]]       # segment name -> one row per candidate (see ``evaluate``)


class Cache:
    """Candidate results by key; with ``path`` a JSON file, loaded at start and rewritten atomically
    by :meth:`flush`. Thread-safe."""

    VERSION = 1

    def __init__(self, path: Optional[str] = None):
        self.path = path
        self._rows: Dict[str, dict] = {}
        self._lock = threading.Lock()
        if path and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"cache {path}: not a readable orchestrator cache ({e}); delete it to "
                                 f"start afresh") from e
            if not isinstance(data, dict) or data.get("version") != self.VERSION or not isinstance(
                    data.get("rows"), dict):
                raise ValueError(f"cache {path}: written by another version; delete it to start afresh")
            self._rows = data["rows"]

    def get(self, key: str) -> Optional[dict]:
        with self._lock:
            row = self._rows.get(key)
            return None if row is None else dict(row)

    def put(self, key: str, row: dict) -> None:
        with self._lock:
            self._rows[key] = dict(row)

    def __len__(self):
        return len(self._rows)

    def flush(self) -> None:
        if self.path:
            with self._lock:
                snapshot = dict(version=self.VERSION, rows=dict(self._rows))
            atomic.write_json(self.path, snapshot)


def digest(frames: np.ndarray, depth: Optional[np.ndarray] = None) -> str:
    """Content key of a segment: SHA-1 of its float32 frames (and depth), with their shapes."""
    h = hashlib.sha1()
    for a in (frames, depth):
        if a is not None:
            a = np.ascontiguousarray(a, dtype=np.float32)
            h.update(repr(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:20]


CACHE_VERSION = "3"    # 2: edge rates count the gate signature; 3: it carries the map's CRC (32 bytes)


def _key(seg_digest, regime, seed, receiver_name, cand: Candidate, metrics, options) -> str:
    return "|".join((CACHE_VERSION, seg_digest, regime, str(seed), receiver_name, cand.label, ",".join(metrics),
                     repr(options)))


def _frames(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] % link.SCALE or x.shape[2] % link.SCALE:
        raise ValueError(f"segment frames must be [T,H,W,3] with H, W multiples of {link.SCALE}, got "
                         f"{np.shape(x)}")
    return x


def evaluate(segments: Dict[str, np.ndarray], receiver, candidates: Sequence[Candidate], regime: str = "NN",
             metrics: Sequence[str] = ("psnr",), seed: int = 0, options: RunOptions = RunOptions(),
             depth: Optional[Dict[str, np.ndarray]] = None, cache: Optional[Cache] = None, executor=None,
             progress: Optional[Callable[[int, int, str], None]] = None) -> Table:
    """Run ``receiver`` on every candidate of every segment and measure it against the HR.

    segments: ``{name: [T,H,W,3] float 0..1}`` (H, W multiples of 4); depth: ``{name: [T,H,W]}``.
    Returns ``{name: [row per candidate]}``, a row being ``quality``, ``option`` (label), ``kind``,
    ``bits`` (base + metadata; the signalling byte is added by the selection), ``base_bits``,
    ``meta_bits``, ``pixels`` (HR pixels), each metric's mean over the segment's frames and, as
    ``bicubic_<metric>``, the same for the bicubic upscale of the received base layer.
    """
    if not candidates:
        raise ValueError("evaluate: no candidates")
    kinds = set(getattr(receiver, "metadata_kinds", ()))
    for c in candidates:
        if c.option.metadata_kind and c.option.metadata_kind not in kinds:
            raise ValueError(f"candidate {c.label}: the receiver does not take {c.option.kind} metadata "
                             f"(it takes {sorted(kinds) or 'none'}); build candidates with grid(accepts=...)")
    cache = cache if cache is not None else Cache()
    name_r = str(getattr(receiver, "name", type(receiver).__name__))
    qualities = sorted({c.quality for c in candidates})
    total, done = len(segments) * len(candidates), 0
    table: Table = {}
    for i_seg, (seg_name, seg) in enumerate(segments.items()):
        hr = _frames(seg)
        d = None if depth is None else depth.get(seg_name)
        key_d = digest(hr, d)
        keys = {c: _key(key_d, regime, seed, name_r, c, metrics, options) for c in candidates}
        todo = [c for c in candidates if cache.get(keys[c]) is None]
        sent = {}
        for o in dict.fromkeys(c.option for c in todo):  # metadata does not depend on the base layer
            sent[o] = send(o, hr, d)

        def run_quality(q, todo=todo, hr=hr, sent=sent, keys=keys):
            base = link.send_base(hr, q, regime, seed)
            # what a sender without the receiver can measure: the predictive table's baseline
            bic = {f"bicubic_{k}": v for k, v in link.measure(
                upscale(base.received, link.SCALE, "bicubic"), hr, metrics).items()}
            for c in (c for c in todo if c.quality == q):
                meta, mbits, _ = sent[c.option]
                sr = link.receive(receiver, base.received, meta, options)
                row = dict(quality=q, option=c.option.label, kind=c.option.kind, base_bits=base.bits,
                           meta_bits=mbits, bits=base.bits + mbits, pixels=int(np.prod(hr.shape[:3])),
                           **bic, **link.measure(sr, hr, metrics))
                cache.put(keys[c], row)
            return q

        qs = [q for q in qualities if any(c.quality == q for c in todo)]
        for q in (executor.map(run_quality, qs) if executor is not None else map(run_quality, qs)):
            done += sum(1 for c in todo if c.quality == q)
            if progress is not None:
                progress(done, total, f"{seg_name} {regime} q{q}")
        done = (i_seg + 1) * len(candidates)  # cached candidates count as done
        cache.flush()
        table[seg_name] = [dict(cache.get(keys[c]), candidate=c.label) for c in candidates]
    return table


# ----------------------------------------------------------------------------- selection
def _rd(rows: List[dict], key: str, signal_bits: int) -> Tuple[np.ndarray, np.ndarray]:
    r = np.array([row["bits"] + signal_bits for row in rows], dtype=np.float64)
    d = np.array([float(distortion(row[key], key)) * row["pixels"] for row in rows], dtype=np.float64)
    return r, d


def choose(table: Table, lam: float, key: str = "psnr", signal_bits: int = SIGNAL_BITS) -> Dict[str, int]:
    """Per segment, the index of its row of least J = D + lam R (ties: fewer bits)."""
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"choose: lambda must be finite and >= 0, got {lam}")
    picks = {}
    for name, rows in table.items():
        r, d = _rd(rows, key, signal_bits)
        j = d + lam * r
        picks[name] = int(np.lexsort((r, j))[0])
    return picks


def pooled(key: str, mean_distortion: float) -> float:
    """The metric's value for a mean per-pixel distortion (inverse of ``metrics.rd.distortion``)."""
    if key == "psnr":
        return float(10 * np.log10(255.0 ** 2 / max(mean_distortion, 1e-12)))
    if key == "ssim":
        return 1.0 - mean_distortion
    return mean_distortion


def point(table: Table, picks: Dict[str, int], key: str = "psnr", signal_bits: int = SIGNAL_BITS) -> dict:
    """The set's operating point for per-segment picks: total ``bits``, ``bpp`` (per HR pixel), the
    pooled metric ``key`` and each segment's chosen candidate."""
    bits = dist = pixels = 0.0
    for name, i in picks.items():
        row = table[name][i]
        r, d = _rd([row], key, signal_bits)
        bits += r[0]
        dist += d[0]
        pixels += row["pixels"]
    return {"bits": int(bits), "bpp": bits / pixels, key: pooled(key, dist / pixels),
            "choice": {n: table[n][i]["candidate"] for n, i in picks.items()}}


def lambda_grid(table: Table, key: str = "psnr", n: int = 24, signal_bits: int = SIGNAL_BITS) -> np.ndarray:
    """``n`` log-spaced lambdas spanning the slopes of the segments' RD hulls (from the cheapest to
    the best candidates)."""
    slopes = []
    for rows in table.values():
        r, d = _rd(rows, key, signal_bits)
        dr = r[:, None] - r[None, :]
        dd = d[None, :] - d[:, None]          # D saved per bit spent, row -> column pairs
        s = dd[dr > 0] / dr[dr > 0]
        s = s[s > 0]
        if s.size:
            slopes += [s.min(), s.max()]
    if not slopes:
        return np.array([0.0])
    lo, hi = np.log10(min(slopes)), np.log10(max(slopes))
    return np.logspace(lo - 0.1, hi + 0.1, n)


def sweep(table: Table, key: str = "psnr", lambdas: Optional[Sequence[float]] = None,
          signal_bits: int = SIGNAL_BITS) -> List[dict]:
    """The orchestrated RD curve: one point per lambda (each with its ``lambda``), by rate."""
    lambdas = lambda_grid(table, key, signal_bits=signal_bits) if lambdas is None else lambdas
    pts = [dict(point(table, choose(table, float(lam), key, signal_bits), key, signal_bits), **{"lambda": float(lam)})
           for lam in lambdas]
    return sorted(pts, key=lambda p: (p["bits"], -metric_info(key).sign * p[key]))


def fixed_curves(table: Table, key: str = "psnr", signal_bits: int = SIGNAL_BITS) -> Dict[str, List[dict]]:
    """Each option used on every segment, swept over the base-layer qualities: ``{option label:
    [points by quality]}``. The segment records of a fixed choice carry the same option byte (the
    receiver reads one container format either way); ``signal_bits=0`` leaves it out."""
    first = next(iter(table.values()))
    labels = list(dict.fromkeys(row["option"] for row in first))
    curves = {}
    for label in labels:
        pts = []
        for q in sorted({row["quality"] for row in first if row["option"] == label}):
            picks = {}
            for name, rows in table.items():
                idx = [i for i, row in enumerate(rows) if row["option"] == label and row["quality"] == q]
                if not idx:
                    raise ValueError(f"segment {name!r} lacks candidate q{q}/{label}; every segment needs "
                                     f"the same candidates")
                picks[name] = idx[0]
            pts.append(dict(point(table, picks, key, signal_bits), quality=q))
        curves[label] = pts
    return curves


def meet_budget(table: Table, max_bits: float, key: str = "psnr", signal_bits: int = SIGNAL_BITS,
                iterations: int = 60) -> Tuple[Dict[str, int], float]:
    """The best pooled quality whose total bits stay within ``max_bits``: bisection on lambda (the
    total rate falls as lambda grows) for the smallest lambda that meets the budget. Returns
    (picks, lambda); raises ValueError when even the cheapest candidates exceed the budget."""
    def total(lam):
        return point(table, choose(table, lam, key, signal_bits), key, signal_bits)["bits"]

    grid = lambda_grid(table, key, signal_bits=signal_bits)
    hi = float(grid[-1]) * 10
    while total(hi) > max_bits:
        hi *= 10
        if hi > 1e30:
            cheapest = total(hi)
            raise ValueError(f"budget {max_bits:.0f} bits is below the cheapest choice ({cheapest} bits); "
                             f"raise the budget or add lower base-layer qualities")
    if total(0.0) <= max_bits:
        return choose(table, 0.0, key, signal_bits), 0.0
    lo = float(grid[0]) / 10
    if total(lo) <= max_bits:
        lo = 0.0
    for _ in range(iterations):  # in log space: lambdas span many decades
        mid = np.sqrt(lo * hi) if lo > 0 else hi / 2
        if total(mid) <= max_bits:
            hi = mid
        else:
            lo = mid
        if lo > 0 and hi / lo < 1 + 1e-9:
            break
    return choose(table, hi, key, signal_bits), hi
