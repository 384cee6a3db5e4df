"""``run.py --experiment orchestrate``: the orchestrated sender against every fixed choice.

On a mixed set of segments (``mixed_set.py``: text, flat cartoons, photos, low light, motion), for
each channel regime:

1. every candidate (base-layer quality x metadata option) of every segment runs through the link
   and the receiver once (``operational.evaluate``, cached);
2. *fixed* choices: one option for all segments, swept over the base-layer quality;
   *orchestrated*: per segment the least J = D + lambda R, swept over lambda;
3. BD-rate / BD-PSNR of the orchestrated curve against each fixed curve (on convex hulls), and per
   lambda whether the orchestrated J is at most the best fixed J (the signalling byte included);
4. *predictive*: a gain table fitted on half of each category's segments chooses for the other half
   without running the receiver; its RD against the operational choice on those held-out segments.

The report lists every row, so nothing has to be rerun to study it; ``plot`` draws one panel per
regime.
"""
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from ..experiment import bd_points, hull_points
from ..metadata import content
from ..metrics import distortion, metric
from ..receivers.base import RunOptions
from . import operational as op
from . import predictive
from .candidates import DEFAULT_OPTIONS, DEFAULT_QUALITIES, Option, grid


def split(categories: Dict[str, str]) -> Sequence[str]:
    """The fitting half: every other segment of each category, in order (the rest are held out)."""
    seen: Dict[str, int] = {}
    train = []
    for name, cat in categories.items():
        if seen.get(cat, 0) % 2 == 0:
            train.append(name)
        seen[cat] = seen.get(cat, 0) + 1
    return train


def _j(p: dict, lam: float, key: str) -> float:
    return float(distortion(p[key], key)) * p["pixels"] + lam * p["bits"]


def _versus(table: op.Table, key: str, lambdas, orch, fixed) -> dict:
    """BD of the orchestrated curve against each fixed one, and the per-lambda J check."""
    pixels = sum(rows[0]["pixels"] for rows in table.values())
    bd = {label: bd_points(hull_points(pts, key), hull_points(orch, key), key) for label, pts in fixed.items()}
    worse = []
    for lam, p in zip(lambdas, sorted(orch, key=lambda p: p["lambda"])):
        best_fixed = min(_j(dict(f, pixels=pixels), lam, key) for pts in fixed.values() for f in pts)
        if _j(dict(p, pixels=pixels), lam, key) > best_fixed * (1 + 1e-12):
            worse.append(float(lam))
    # the least favourable anchor: the fixed curve the orchestrated one gains least against
    rated = {k: v for k, v in bd.items() if v.get("bd_rate_percent") is not None}
    best = max(rated, key=lambda k: rated[k]["bd_rate_percent"]) if rated else None
    return dict(bd_vs_fixed=bd, best_fixed=best, bd_vs_best_fixed=bd.get(best) if best else None,
                lambdas_where_worse_than_best_fixed=worse)


def _predictive(table: op.Table, tables_train: Dict[str, op.Table], labels, train, regime, key, lambdas) -> dict:
    """Fit on ``train``, choose on the rest; compare with the operational choice there."""
    held = {n: rows for n, rows in table.items() if n not in train}
    if not held:
        return dict(note="no held-out segment")
    gains = predictive.fit(tables_train, labels, key, segments=list(train))
    t0 = time.perf_counter()
    pred_pts, op_pts, dq, dr, same = [], [], [], [], 0
    for lam in lambdas:
        picks = predictive.choose_predicted(held, gains, regime, labels, float(lam))
        p = op.point(held, picks, key)
        o = op.point(held, op.choose(held, float(lam), key), key)
        pred_pts.append(p)
        op_pts.append(o)
        dq.append(p[key] - o[key])
        dr.append((p["bits"] - o["bits"]) / o["bits"])
        same += sum(p["choice"][n] == o["choice"][n] for n in held)
    ms = 1000 * (time.perf_counter() - t0) / (2 * len(lambdas))
    bd = bd_points(hull_points(op_pts, key), hull_points(pred_pts, key), key)
    return dict(held_out=sorted(held), fitted_on=sorted(train), bd_vs_operational=bd,
                mean_quality_difference=round(float(np.mean(dq)), 4),
                mean_abs_quality_difference=round(float(np.mean(np.abs(dq))), 4),
                mean_rate_difference_percent=round(100 * float(np.mean(dr)), 2),
                same_choice_percent=round(100 * same / (len(lambdas) * len(held)), 1),
                choose_ms_per_lambda=round(ms, 2), points=pred_pts, operational_points=op_pts)


def run_orchestrate(segments: Dict[str, np.ndarray], categories: Dict[str, str], model,
                    regimes: Sequence[str] = ("NN", "LN", "HN"), qualities: Sequence[int] = DEFAULT_QUALITIES,
                    options: Sequence[Option] = DEFAULT_OPTIONS, key: str = "psnr",
                    metrics: Sequence[str] = ("psnr", "ssim"), seed: int = 0,
                    run_options: RunOptions = RunOptions(tile=768), cache: Optional[op.Cache] = None,
                    executor=None, progress: Optional[Callable[[int, int, str], None]] = None,
                    n_lambdas: int = 24) -> dict:
    """The experiment (module doc); returns the report dict (``gain_table`` is fitted on all)."""
    if key not in metrics:
        raise ValueError(f"the decision metric {key!r} must be among the measured metrics {list(metrics)}")
    t0 = time.time()
    cands = grid(qualities, options, accepts=getattr(model, "metadata_kinds", ()))
    analysis = {n: content.analyse(v)[1] for n, v in segments.items()}
    labels = {n: segs[0].label if len(segs) == 1 else max(
        (s.label for s in segs), key=lambda lab: sum(s.stop - s.start for s in segs if s.label == lab))
        for n, segs in analysis.items()}
    train = split(categories)
    cache = cache if cache is not None else op.Cache()
    total = len(regimes) * len(segments) * len(cands)
    tables, report = {}, {}
    for i, regime in enumerate(regimes):
        def prog(done, _total, msg, i=i):
            if progress is not None:
                progress(i * len(segments) * len(cands) + done, total, msg)
        table = op.evaluate(segments, model, cands, regime, metrics, seed, run_options, cache=cache,
                            executor=executor, progress=prog)
        tables[regime] = table
        lambdas = op.lambda_grid(table, key, n_lambdas)
        orch = op.sweep(table, key, lambdas)
        fixed = op.fixed_curves(table, key)
        per_category = {}
        for c in sorted(set(categories.values())):
            sub = {n: rows for n, rows in table.items() if categories[n] == c}
            lam_c = op.lambda_grid(sub, key, n_lambdas)
            v = _versus(sub, key, lam_c, op.sweep(sub, key, lam_c), op.fixed_curves(sub, key))
            per_category[c] = dict(segments=sorted(sub), best_fixed=v["best_fixed"],
                                   bd_vs_best_fixed=v["bd_vs_best_fixed"], bd_vs_fixed=v["bd_vs_fixed"])
        mid = orch[len(orch) // 2]
        distinct = [len(set(c.split("/")[1] for c in p["choice"].values())) for p in orch]
        sig = len(table) * op.SIGNAL_BITS
        report[regime] = dict(
            signal_share_percent=dict(min=round(100 * sig / max(p["bits"] for p in orch), 3),
                                      max=round(100 * sig / min(p["bits"] for p in orch), 3)),
            orchestrated=orch, fixed=fixed, **_versus(table, key, lambdas, orch, fixed),
            distinct_options_per_lambda=distinct, per_category=per_category,
            choice_at_middle_lambda=dict(lambda_=mid["lambda"], choice=mid["choice"]),
            predictive=_predictive(table, {regime: table}, labels, train, regime, key, lambdas),
            rows=table)
    gains = predictive.fit(tables, labels, key, receiver=str(getattr(model, "name", "")))
    confusion = {}
    for n, cat in categories.items():
        confusion.setdefault(cat, {}).setdefault(labels[n], 0)
        confusion[cat][labels[n]] += 1
    return dict(
        experiment="orchestrate: per-segment choice of base quality x metadata (J = D + lambda R) against "
                   "fixed choices, and a predictive gain table",
        model=str(getattr(model, "name", type(model).__name__)), metric=key, metrics=list(metrics),
        segments={n: dict(frames=int(v.shape[0]), height=int(v.shape[1]), width=int(v.shape[2]),
                          category=categories[n], bucket=labels[n],
                          scores={k: round(float(x), 4) for k, x in analysis[n][0].scores.items()})
                  for n, v in segments.items()},
        bucket_vs_category=confusion, candidates=[c.label for c in cands], qualities=sorted(set(qualities)),
        options=[o.label for o in options if any(c.option == o for c in cands)], seed=seed,
        rate="bits = 8 x (JPEG + metadata bytes + one option byte a segment) over all segments, for fixed and "
             "orchestrated choices alike; bpp = bits per HR pixel; quality = the metric of the pooled distortion",
        regimes=report, gain_table=gains, seconds=round(time.time() - t0, 1))


def summary_lines(report: dict) -> list:
    key = report["metric"]
    lines = []
    for regime, r in report["regimes"].items():
        b = r["bd_vs_best_fixed"] or {}
        p = r["predictive"]
        pb = p.get("bd_vs_operational") or {}
        lines.append(
            f"{regime}: orchestrated vs best fixed ({r['best_fixed']}): BD-rate "
            f"{b.get('bd_rate_percent', float('nan')):+.1f} %, BD-{key} {b.get(f'bd_{key}', float('nan')):+.3f}; "
            f"worse than best fixed J at {len(r['lambdas_where_worse_than_best_fixed'])}/"
            f"{len(r['orchestrated'])} lambdas; up to {max(r['distinct_options_per_lambda'])} options at once; "
            f"predictive on held-out vs operational: BD-rate {pb.get('bd_rate_percent', float('nan')):+.1f} %, "
            f"BD-{key} {pb.get(f'bd_{key}', float('nan')):+.3f}, same choice {p.get('same_choice_percent', float('nan')):.0f} %")
        cats = ", ".join(f"{c} {(v['bd_vs_best_fixed'] or {}).get('bd_rate_percent', float('nan')):+.1f} %"
                         for c, v in r["per_category"].items())
        lines.append(f"{regime} per category, BD-rate vs that category's best fixed choice: {cats}")
    return lines


def plot(report: dict, path: str):
    """One panel per regime: every fixed choice and the orchestrated curve (bpp vs the metric)."""
    from ..report import rd_panels
    key = report["metric"]
    m = metric(key)
    panels = []
    for regime, r in report["regimes"].items():
        curves = [dict(name=f"fixed: {label}", marker="o", ms=3, lw=1.0, rates=[p["bpp"] for p in pts],
                       qualities=[p[key] for p in pts]) for label, pts in r["fixed"].items()]
        o = r["orchestrated"]
        curves.append(dict(name="orchestrated (per segment)", marker="^", ms=5, lw=2.4, color="k",
                           rates=[p["bpp"] for p in o], qualities=[p[key] for p in o]))
        b = r["bd_vs_best_fixed"] or {}
        # in the title: a note box would sit under the legend of six curves
        title = (f"{regime}: vs best fixed ({r['best_fixed']}) BD-rate {b.get('bd_rate_percent', float('nan')):+.1f} %, "
                 f"BD-{key} {b.get(f'bd_{key}', float('nan')):+.2f}")
        panels.append(dict(curves=curves, higher_is_better=m.higher_is_better, log_rate=True,
                           xlabel="total rate (bits per HR pixel)", ylabel=m.label, title=title))
    rd_panels(panels, path, f"{report['model']}: orchestrated metadata vs fixed choices "
                            f"({len(report['segments'])} segments)")
