"""Rate-distortion tools: Bjontegaard deltas, the RDO cost J = D + lambda R, and convex-hull selection.

Bjontegaard (VCEG-M33, 2001; updated piecewise-cubic method of JCTVC-L1100 / JVET-T2010):
- BD-rate: fit log10(rate) as a function of quality for each curve, integrate both over the common
  quality interval, average the difference d; BD-rate = (10^d - 1) * 100 % (negative = test b
  needs fewer bits than anchor a for the same quality).
- BD-quality (BD-PSNR for PSNR): fit quality as a function of log10(rate), average b - a over the
  common log-rate interval (units of the quality axis, dB for PSNR).
``method="pchip"`` (default): shape-preserving piecewise-cubic Hermite interpolation (scipy
PchipInterpolator), needs >= 2 points; ``method="cubic"``: the classic least-squares cubic polynomial,
needs >= 4 points. Quality may be any higher-is-better score; for lower-is-better metrics (LPIPS,
DISTS) pass the negated value, or use :func:`bd_summary` / :func:`hull`, which take the direction.

Peak deltas (:func:`peak_deltas`): the largest quality gain at matched rate and the largest rate
saving at matched quality over the same common intervals, on the same interpolants. MetaSR states its
results this way ("up to 1.0 dB PSNR ... up to 50 % bitrate saving at matched quality", Sec. 4.3); a
Bjontegaard delta is the mean of the same gap, so the peak is always at least the BD figure.

Non-overlapping curves: when the quality (BD-rate) or rate (BD-quality) ranges do not overlap the
functions raise ``NoOverlapError`` (a ValueError) rather than extrapolating.
"""
from typing import Sequence, Tuple

import numpy as np
from scipy.interpolate import PchipInterpolator

METHODS = ("pchip", "cubic")


class NoOverlapError(ValueError):
    """The two RD curves share no interval on the integration axis; no Bjontegaard delta exists."""


def _curve(rate, q, method, who):
    r = np.asarray(rate, dtype=np.float64).ravel()
    v = np.asarray(q, dtype=np.float64).ravel()
    if r.shape != v.shape:
        raise ValueError(f"{who}: {r.size} rates but {v.size} quality values")
    need = 2 if method == "pchip" else 4
    if r.size < need:
        raise ValueError(f"{who}: method {method!r} needs at least {need} points, got {r.size}")
    if not (np.isfinite(r).all() and np.isfinite(v).all()):
        raise ValueError(f"{who}: rates and qualities must be finite")
    if (r <= 0).any():
        raise ValueError(f"{who}: rates must be > 0 (log scale)")
    return np.log10(r), v


def _fit(x, y, method, who):
    """y(x) interpolated from the points: a scipy PchipInterpolator or a cubic ``np.poly1d``."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    if method == "pchip":
        if (np.diff(x) <= 0).any():
            raise ValueError(f"{who}: repeated values on the interpolation axis ({x}); pchip needs them distinct")
        return PchipInterpolator(x, y)
    if method == "cubic":
        return np.poly1d(np.polyfit(x, y, 3))
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _fit_integral(x, y, lo, hi, method, who):
    """Integral over [lo, hi] of y(x) interpolated from the points."""
    f = _fit(x, y, method, who)
    if method == "pchip":
        return float(f.integrate(lo, hi))
    p = f.integ()
    return float(p(hi) - p(lo))


def _common(xa, xb, what):
    lo, hi = max(xa.min(), xb.min()), min(xa.max(), xb.max())
    if not hi > lo:
        raise NoOverlapError(f"{what}: the curves do not overlap ([{xa.min():.4g}, {xa.max():.4g}] vs "
                             f"[{xb.min():.4g}, {xb.max():.4g}]); add operating points that cover a common range")
    return lo, hi


def _delta(xa, ya, xb, yb, method, what):
    lo, hi = _common(xa, xb, what)
    ia = _fit_integral(xa, ya, lo, hi, method, f"{what} anchor")
    ib = _fit_integral(xb, yb, lo, hi, method, f"{what} test")
    return (ib - ia) / (hi - lo)


def bd_rate(rate_a: Sequence[float], q_a: Sequence[float], rate_b: Sequence[float], q_b: Sequence[float],
            method: str = "pchip") -> float:
    """Bjontegaard delta rate of curve b against anchor a, in percent. Raises NoOverlapError."""
    if method not in METHODS:
        raise ValueError(f"bd_rate: method must be one of {METHODS}, got {method!r}")
    la, qa = _curve(rate_a, q_a, method, "bd_rate anchor")
    lb, qb = _curve(rate_b, q_b, method, "bd_rate test")
    d = _delta(qa, la, qb, lb, method, "bd_rate")
    return float((10.0 ** d - 1.0) * 100.0)


def bd_quality(rate_a: Sequence[float], q_a: Sequence[float], rate_b: Sequence[float], q_b: Sequence[float],
               method: str = "pchip") -> float:
    """Bjontegaard delta quality of b against a (b - a, quality units: dB for PSNR, so BD-PSNR).
    Raises NoOverlapError."""
    if method not in METHODS:
        raise ValueError(f"bd_quality: method must be one of {METHODS}, got {method!r}")
    la, qa = _curve(rate_a, q_a, method, "bd_quality anchor")
    lb, qb = _curve(rate_b, q_b, method, "bd_quality test")
    return float(_delta(la, qa, lb, qb, method, "bd_quality"))


def bd_summary(anchor: Tuple[Sequence[float], Sequence[float]], test: Tuple[Sequence[float], Sequence[float]],
               higher_is_better: bool = True, method: str = "pchip") -> dict:
    """Both Bjontegaard deltas of ``test`` against ``anchor`` (each ``(rates, qualities)``) for a
    metric of either direction: ``{"rate_percent": x | None, "quality": x | None}`` (quality in the
    metric's own units and sign), with ``"rate_percent_note"`` / ``"quality_note"`` saying why a delta
    is missing (curves sharing no range are reported, not extrapolated; too few points; ...)."""
    sign = 1.0 if higher_is_better else -1.0
    (ra, qa), (rb, qb) = anchor, test
    qa, qb = [sign * v for v in qa], [sign * v for v in qb]
    out = {}
    for key, fn, scale in (("rate_percent", bd_rate, 1.0), ("quality", bd_quality, sign)):
        try:
            out[key] = scale * fn(ra, qa, rb, qb, method)
        except NoOverlapError as e:
            out[key] = None
            out[key + "_note"] = ("not computed: the two curves share no "
                                  + ("quality" if key == "rate_percent" else "rate")
                                  + f" range, so it would need extrapolation ({e})")
        except ValueError as e:
            out[key] = None
            out[key + "_note"] = f"not computed: {e}"
    return out


def peak_deltas(anchor: Tuple[Sequence[float], Sequence[float]], test: Tuple[Sequence[float], Sequence[float]],
                higher_is_better: bool = True, method: str = "pchip", samples: int = 2001) -> dict:
    """The largest gaps between two RD curves (each ``(rates, qualities)``) over their common ranges,
    on the interpolants the Bjontegaard deltas integrate (quality over log10 rate; log10 rate over
    quality), sampled at ``samples`` points:

    ``quality_gain`` (test - anchor at matched rate, in the metric's units and sign, so a higher-is-better
    gain is > 0 and an LPIPS gain < 0) with ``quality_gain_at_rate``, and ``rate_saving_percent``
    (``(1 - rate_test / rate_anchor) * 100`` at matched quality, > 0 = fewer bits) with
    ``rate_saving_at_quality``. A missing figure is ``None`` with a ``*_note`` saying why."""
    if method not in METHODS:
        raise ValueError(f"peak_deltas: method must be one of {METHODS}, got {method!r}")
    sign = 1.0 if higher_is_better else -1.0
    out = {}
    try:
        la, qa = _curve(anchor[0], [sign * v for v in anchor[1]], method, "peak_deltas anchor")
        lb, qb = _curve(test[0], [sign * v for v in test[1]], method, "peak_deltas test")
    except ValueError as e:
        for key in ("quality_gain", "rate_saving_percent"):
            out[key] = None
            out[key + "_note"] = f"not computed: {e}"
        return out
    for key, (xa, ya, xb, yb), axis in (("quality_gain", (la, qa, lb, qb), "rate"),
                                        ("rate_saving_percent", (qa, la, qb, lb), "quality")):
        try:
            lo, hi = _common(xa, xb, f"peak {key}")
            t = np.linspace(lo, hi, int(samples))
            gap = _fit(xb, yb, method, f"peak {key} test")(t) - _fit(xa, ya, method, f"peak {key} anchor")(t)
            if key == "quality_gain":
                i = int(np.argmax(gap))
                out[key], out["quality_gain_at_rate"] = sign * float(gap[i]), float(10.0 ** t[i])
            else:
                i = int(np.argmin(gap))  # the most negative log-rate difference = the largest saving
                out[key], out["rate_saving_at_quality"] = float((1.0 - 10.0 ** gap[i]) * 100.0), sign * float(t[i])
        except NoOverlapError as e:
            out[key] = None
            out[key + "_note"] = f"not computed: the two curves share no {axis} range ({e})"
        except ValueError as e:
            out[key] = None
            out[key + "_note"] = f"not computed: {e}"
    return out


def hull(rate: Sequence[float], quality: Sequence[float], higher_is_better: bool = True) -> np.ndarray:
    """:func:`convex_hull` for a metric of either direction (lower-is-better ones are negated)."""
    sign = 1.0 if higher_is_better else -1.0
    return convex_hull(rate, [sign * q for q in quality])


def distortion(quality, metric: str) -> np.ndarray:
    """Turn a quality score into a distortion D (lower is better) for J = D + lambda R.

    "mse": as is; "psnr": MSE in 8-bit units, 255^2 10^(-PSNR/10); "ssim": 1 - SSIM;
    "lpips", "dists": as is (already distances).
    """
    q = np.asarray(quality, dtype=np.float64)
    if metric in ("mse", "lpips", "dists"):
        return q
    if metric == "psnr":
        return 255.0 ** 2 * 10.0 ** (-q / 10.0)
    if metric == "ssim":
        return 1.0 - q
    raise ValueError(f"distortion: metric must be mse, psnr, ssim, lpips or dists, got {metric!r}")


def rdo_cost(rate, distortion_values, lam: float) -> np.ndarray:
    """J = D + lambda R, elementwise (MetaSR Sec. 4.3). The encoder picks the operating point of minimum J."""
    r = np.asarray(rate, dtype=np.float64)
    d = np.asarray(distortion_values, dtype=np.float64)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"rdo_cost: lambda must be finite and >= 0, got {lam}")
    return d + float(lam) * r


def convex_hull(rate: Sequence[float], quality: Sequence[float]) -> np.ndarray:
    """Indices of the operating points on the upper-left convex hull of a (rate, quality) cloud.

    These are exactly the points that maximise quality - lambda * rate for some lambda >= 0
    (equivalently minimise J = D + lambda R with D = -quality): the efficient operating points.
    Points strictly inside, dominated, or on a straight segment between two hull vertices are
    dropped. Returned sorted by increasing rate.
    """
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape or r.size == 0:
        raise ValueError(f"convex_hull: need equal, non-zero numbers of rates and qualities ({r.size}, {q.size})")
    if not (np.isfinite(r).all() and np.isfinite(q).all()):
        raise ValueError("convex_hull: rates and qualities must be finite")
    order = np.lexsort((-q, r))  # by rate, best quality first among equal rates
    hull = []
    for i in order:
        if hull and (r[i] == r[hull[-1]] or q[i] <= q[hull[-1]]):
            continue  # same rate with lower quality, or dominated by a cheaper point
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b unless the chain a -> b -> i turns clockwise (strictly concave)
            cross = (r[b] - r[a]) * (q[i] - q[a]) - (q[b] - q[a]) * (r[i] - r[a])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.array(hull, dtype=np.int64)
