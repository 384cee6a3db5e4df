"""The orchestrator (models/orchestrator): selection by J = D + lambda R against brute force on
hand-made tables, the budget bisection, candidate runs through the real link with the shipped
receiver (real bytes, cache, resume, parallel workers), the predictive gain table, and the main
job's ``--experiment orchestrate`` end to end."""
import itertools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from metavsr.models import link
from metavsr.models.codec.resize import upscale
from metavsr.models.metrics import distortion
from metavsr.models.orchestrator import candidates as cd
from metavsr.models.orchestrator import mixed_set
from metavsr.models.orchestrator import operational as op
from metavsr.models.orchestrator import predictive as pr
from metavsr.models.receivers.base import RunOptions
from metavsr.models.receivers.tiny.receiver import load_embedded

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _table(seed=0, segments=4, qualities=(10, 40, 80), options=("none", "edges")):
    """Rows with a plausible shape: quality and bits grow with q, edges add bits and (sometimes) dB."""
    rng = np.random.default_rng(seed)
    t = {}
    for s in range(segments):
        rows = []
        base_db = rng.uniform(18, 26)
        edge_gain = rng.uniform(-0.3, 1.0)
        for q in qualities:
            for o in options:
                bits = int(1000 * q * rng.uniform(0.8, 1.2)) + (int(rng.uniform(2000, 9000)) if o != "none" else 0)
                psnr = base_db + 4 * np.log10(q) + (edge_gain if o != "none" else 0) + rng.normal(0, 0.05)
                rows.append(dict(quality=q, option=o, kind=o, bits=bits, pixels=64 * 64, psnr=float(psnr),
                                 bicubic_psnr=float(psnr - 1.0 - (0.5 if o != "none" else 0)),
                                 candidate=f"q{q}/{o}"))
        t[f"s{s}"] = rows
    return t


def _brute(table, lam, key="psnr"):
    """Least total J over every combination of per-segment picks."""
    names = list(table)
    best = None
    for combo in itertools.product(*(range(len(table[n])) for n in names)):
        j = sum(float(distortion(table[n][i][key], key)) * table[n][i]["pixels"]
                + lam * (table[n][i]["bits"] + cd.SIGNAL_BITS) for n, i in zip(names, combo))
        if best is None or j < best[0] - 1e-9:
            best = (j, dict(zip(names, combo)))
    return best[1]


@pytest.mark.parametrize("lam", [0.0, 0.01, 0.1, 1.0, 100.0])
def test_choice_is_the_least_j_over_all_combinations(lam):
    t = _table(segments=3)
    assert op.choose(t, lam) == _brute(t, lam)


def test_orchestrated_is_never_worse_than_a_fixed_choice_and_uses_several():
    t = _table(seed=3, segments=5)
    fixed = op.fixed_curves(t)
    assert set(fixed) == {"none", "edges"} and len(fixed["none"]) == 3
    lambdas = op.lambda_grid(t)
    assert lambdas.size == 24 and np.all(np.diff(lambdas) > 0)
    for lam in lambdas:
        p = op.point(t, op.choose(t, lam))
        j = float(distortion(p["psnr"], "psnr")) * 5 * 64 * 64 + lam * p["bits"]
        for pts in fixed.values():
            for f in pts:
                jf = float(distortion(f["psnr"], "psnr")) * 5 * 64 * 64 + lam * f["bits"]
                assert j <= jf * (1 + 1e-9)
    # the segments' edge gains differ, so somewhere in the sweep their choices differ
    assert any(len({c.split("/")[1] for c in p["choice"].values()}) > 1 for p in op.sweep(t))


def test_pooled_psnr_is_the_psnr_of_the_total_error():
    t = _table(segments=2)
    p = op.point(t, {"s0": 0, "s1": 5})
    mse = (distortion(t["s0"][0]["psnr"], "psnr") + distortion(t["s1"][5]["psnr"], "psnr")) / 2
    assert p["psnr"] == pytest.approx(10 * np.log10(255 ** 2 / mse))
    assert p["bits"] == t["s0"][0]["bits"] + t["s1"][5]["bits"] + 2 * cd.SIGNAL_BITS
    assert p["bpp"] == pytest.approx(p["bits"] / (2 * 64 * 64))


def test_budget_bisection_meets_the_budget_at_the_best_lagrangian_point():
    t = _table(seed=1, segments=4)
    cheapest = op.point(t, op.choose(t, 1e12))["bits"]
    richest = op.point(t, op.choose(t, 0.0))["bits"]
    for budget in np.linspace(cheapest, richest, 7):
        picks, lam = op.meet_budget(t, budget)
        p = op.point(t, picks)
        assert p["bits"] <= budget
        # every lagrangian point within the budget is no better
        for lam2 in op.lambda_grid(t, n=200):
            q = op.point(t, op.choose(t, lam2))
            if q["bits"] <= budget:
                assert q["psnr"] <= p["psnr"] + 1e-9
    with pytest.raises(ValueError, match="below the cheapest"):
        op.meet_budget(t, cheapest - 1)


def test_candidates_grid_leaves_out_what_the_receiver_cannot_take():
    opts = (cd.Option(), cd.Option("edges", 0.02, True, 2), cd.Option("depth", bits=6))
    g = cd.grid((40, 10), opts, accepts=("edges",))
    assert [c.label for c in g] == ["q10/none", "q10/edges-d0.02-thin-1/2", "q40/none", "q40/edges-d0.02-thin-1/2"]
    assert len(cd.grid((40,), opts, accepts=("edges", "depth"), has_depth=True)) == 3
    with pytest.raises(ValueError, match="density"):
        cd.Option("edges", 0.0)
    with pytest.raises(ValueError, match="1..100"):
        cd.grid((0, 50))


class _Counting:
    """The shipped receiver, counting its runs."""

    def __init__(self, model):
        self.model, self.calls = model, 0
        self.name, self.metadata_kinds, self.scale = model.name, model.metadata_kinds, model.scale

    def upscale(self, *a, **k):
        self.calls += 1
        return self.model.upscale(*a, **k)


@pytest.fixture(scope="module")
def segments():
    seg, cat = mixed_set.mixed_set(64, 2, quick=True)
    keep = ["text-sans-dark-on-light", "cartoon-0", "motion-rocket"]
    return {n: seg[n] for n in keep}, {n: cat[n] for n in keep}


def test_evaluate_runs_real_candidates_caches_and_resumes(segments, tmp_path):
    seg, _ = segments
    model = _Counting(load_embedded())
    cands = cd.grid((20, 70), (cd.Option(), cd.Option("edges", 0.04, True, 1)), accepts=model.metadata_kinds)
    path = str(tmp_path / "cache.json")
    t = op.evaluate(seg, model, cands, "LN", ("psnr",), cache=op.Cache(path))
    assert model.calls == len(seg) * len(cands)
    for name, rows in t.items():
        hr = seg[name]
        for row in rows:
            base = link.send_base(hr, row["quality"], "LN")
            assert row["base_bits"] == 8 * sum(len(b) for b in base.stream.payload)
            assert (row["meta_bits"] > 0) == (row["kind"] == "edges")
            bic = link.measure(upscale(base.received, 4, "bicubic"), hr, ("psnr",))["psnr"]
            assert row["bicubic_psnr"] == pytest.approx(bic, abs=1e-9)
    # edges at 4 % on the text page are worth their bits at high quality (real receiver, real rows)
    assert t["text-sans-dark-on-light"][3]["psnr"] > t["text-sans-dark-on-light"][2]["psnr"]
    # a new process (new cache object on the same file) runs nothing again
    model2 = _Counting(load_embedded())
    t2 = op.evaluate(seg, model2, cands, "LN", ("psnr",), cache=op.Cache(path))
    assert model2.calls == 0 and t2 == t
    # another regime is new work; workers give the same rows
    model3 = _Counting(load_embedded())
    with ThreadPoolExecutor(2) as ex:
        t3 = op.evaluate(seg, model3, cands, "NN", ("psnr",), executor=ex)
    assert model3.calls == len(seg) * len(cands)
    t4 = op.evaluate(seg, load_embedded(), cands, "NN", ("psnr",))
    assert t3 == t4


def test_cache_refuses_a_foreign_file(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"version": 99, "rows": {}}))
    with pytest.raises(ValueError, match="another version"):
        op.Cache(str(p))
    p.write_text("{not json")
    with pytest.raises(ValueError, match="delete it"):
        op.Cache(str(p))


def test_evaluate_refuses_metadata_the_receiver_cannot_take(segments):
    seg, _ = segments
    with pytest.raises(ValueError, match="does not take depth"):
        op.evaluate(seg, load_embedded(), [cd.Candidate(20, cd.Option("depth", bits=4))])


def test_gain_table_means_shrinkage_and_choices():
    t = _table(seed=2, segments=4)
    labels = {"s0": "a", "s1": "a", "s2": "b", "s3": "b"}
    g = pr.fit({"NN": t}, labels, shrink=0.0, segments=["s0", "s1", "s2"])
    row = lambda s, i: t[s][i]["psnr"] - t[s][i]["bicubic_psnr"]
    opt, q = t["s0"][1]["option"], str(t["s0"][1]["quality"])
    assert g["regimes"]["NN"]["a"][opt][q] == pytest.approx((row("s0", 1) + row("s1", 1)) / 2, abs=1e-4)
    assert g["regimes"]["NN"]["b"][opt][q] == pytest.approx(row("s2", 1), abs=1e-4)
    g2 = pr.fit({"NN": t}, labels, shrink=2.0, segments=["s0", "s1", "s2"])
    allm = (row("s0", 1) + row("s1", 1) + row("s2", 1)) / 3
    assert g2["regimes"]["NN"]["b"][opt][q] == pytest.approx((row("s2", 1) + 2 * allm) / 3, abs=1e-4)
    # a table fitted on a segment alone predicts it exactly, so it chooses as the operational one
    one = {"s3": t["s3"]}
    g3 = pr.fit({"NN": one}, {"s3": "b"}, shrink=0.0)
    for lam in op.lambda_grid(one, n=8):
        assert pr.choose_predicted(one, g3, "NN", {"s3": "b"}, lam) == op.choose(one, lam)


def test_gain_table_files_round_trip_and_bad_ones_are_named(tmp_path):
    g = pr.fit({"HN": _table()}, {})
    p = str(tmp_path / "g.json")
    pr.save(g, p)
    assert pr.load(p) == json.loads(json.dumps(g))
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(ValueError, match="refit"):
        pr.load(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="no LN regime"):
        pr.predicted(_table(), g, "LN", {})


def test_shipped_gain_table_covers_the_default_candidates():
    g = pr.load()
    for regime in ("NN", "LN", "HN"):
        entry = g["regimes"][regime][pr.ALL]
        for o in cd.DEFAULT_OPTIONS:
            assert set(entry[o.label]) == {str(q) for q in cd.DEFAULT_QUALITIES}


def test_mixed_set_is_deterministic_and_labelled():
    a, ca = mixed_set.mixed_set(64, 2, quick=True)
    b, _ = mixed_set.mixed_set(64, 2, quick=True)
    assert list(a) == list(b) and all(np.array_equal(a[n], b[n]) for n in a)
    assert sorted(set(ca.values())) == ["flat", "low-light", "motion", "natural", "text"]
    assert all(v.shape[1:] == (64, 64, 3) and v.dtype == np.float32 for v in a.values())
    assert a["motion-rocket"].shape[0] == 2 and a["lowlight-coffee"].mean() < 0.1
    with pytest.raises(ValueError, match="multiple of 4"):
        mixed_set.mixed_set(66)


def test_run_py_orchestrate_end_to_end(tmp_path):
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), "--experiment", "orchestrate", "--quick",
                        "--regimes", "HN", "--qualities", "20", "70", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((out / "report.json").read_text())
    hn = rep["regimes"]["HN"]
    assert hn["lambdas_where_worse_than_best_fixed"] == []
    assert set(hn["fixed"]) == {"none", "edges-d0.02-thin-1/2", "edges-d0.08-thin"}
    assert {row["candidate"] for rows in hn["rows"].values() for row in rows} == set(rep["candidates"])
    assert (out / "rd.png").stat().st_size > 10000 and pr.load(str(out / "gain_table.json"))
    assert "HN: orchestrated vs best fixed" in r.stdout
    # a second run resumes from the cache: same report rows, nothing rerun
    r2 = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), "--experiment", "orchestrate", "--quick",
                         "--regimes", "HN", "--qualities", "20", "70", "--out", str(out)],
                        capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0
    assert json.loads((out / "report.json").read_text())["regimes"]["HN"]["rows"] == hn["rows"]


def test_inter_frame_edges_are_a_candidate_with_their_real_bytes(segments):
    seg, _ = segments
    clip = {"motion-rocket": np.concatenate([seg["motion-rocket"]] * 2)}   # 4 frames of a pan
    per, inter = cd.Option("edges", 0.04, True, 1), cd.Option("edges", 0.04, True, 1, clip=True)
    assert inter.label == "edges-d0.04-thin-clip"
    t = op.evaluate(clip, load_embedded(), cd.grid((50,), (per, inter), accepts=("edges",)), "NN")
    rows = {r["option"]: r for r in t["motion-rocket"]}
    maps_p, bits_p, _ = cd.send(per, clip["motion-rocket"])
    maps_i, bits_i, _ = cd.send(inter, clip["motion-rocket"])
    np.testing.assert_array_equal(maps_p["edges"], maps_i["edges"])          # both lossless, same maps
    assert rows[per.label]["meta_bits"] == bits_p and rows[inter.label]["meta_bits"] == bits_i
    assert rows[per.label]["psnr"] == rows[inter.label]["psnr"]
