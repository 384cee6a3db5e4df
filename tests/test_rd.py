"""Bjontegaard deltas against the FAU ``bjontegaard`` package (independent implementation of the
JVET/VCEG method) and exact identities; convex hull against a brute-force lambda sweep."""
import bjontegaard
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

from metavsr.models.metrics import bd_quality, bd_rate, bd_summary, convex_hull, distortion, hull, peak_deltas, rdo_cost
from metavsr.models.metrics.rd import NoOverlapError

# the package README's example (x265 presets)
RA, QA = [9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851]
RB, QB = [9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987]


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_matches_bjontegaard_package(method):
    assert bd_rate(RA, QA, RB, QB, method) == pytest.approx(bjontegaard.bd_rate(RA, QA, RB, QB, method=method), abs=1e-9)
    assert bd_quality(RA, QA, RB, QB, method) == pytest.approx(bjontegaard.bd_psnr(RA, QA, RB, QB, method=method), abs=1e-9)


def test_pchip_matches_package_on_random_curves():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(3, 7))
        ra = np.sort(rng.uniform(100, 10000, n))
        qa = np.sort(rng.uniform(28, 42, n))
        rb = ra * rng.uniform(0.7, 1.3, n)
        rb.sort()
        qb = np.sort(qa + rng.uniform(-1, 1, n))
        try:
            ref = bjontegaard.bd_rate(ra, qa, rb, qb, method="pchip")
        except Exception:
            continue
        assert bd_rate(ra, qa, rb, qb) == pytest.approx(ref, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_identical_curves_give_zero(method):
    assert bd_rate(RA, QA, RA, QA, method) == pytest.approx(0.0, abs=1e-12)
    assert bd_quality(RA, QA, RA, QA, method) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(k=st.floats(0.2, 5.0), method=st.sampled_from(["pchip", "cubic"]))
def test_scaled_rates_give_exact_percentage(k, method):
    got = bd_rate(RA, QA, [r * k for r in RA], QA, method)
    assert got == pytest.approx((k - 1) * 100, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(c=st.floats(-3, 3))
def test_shifted_quality_gives_exact_bd_psnr(c):
    assert bd_quality(RA, QA, RA, [q + c for q in QA]) == pytest.approx(c, abs=1e-9)


def test_no_overlap_and_bad_input():
    with pytest.raises(NoOverlapError):
        bd_rate([1, 2], [30, 31], [1, 2], [32, 33])
    with pytest.raises(NoOverlapError):
        bd_quality([1, 2], [30, 31], [3, 4], [30, 31])
    with pytest.raises(ValueError, match="at least 4"):
        bd_rate(RA[:3], QA[:3], RB[:3], QB[:3], "cubic")
    with pytest.raises(ValueError, match="> 0"):
        bd_rate([0, 1], [30, 31], [1, 2], [30, 31])
    with pytest.raises(ValueError, match="distinct"):
        bd_rate([1, 2, 3], [30, 30, 31], [1, 2, 3], [30, 30.5, 31])


def test_rdo_cost_and_distortion():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (32, 32, 3))
    b = np.clip(a + rng.normal(0, 0.03, a.shape), 0, 1)
    p = peak_signal_noise_ratio(a, b, data_range=1)
    assert float(distortion(p, "psnr")) == pytest.approx(mean_squared_error(a * 255, b * 255), rel=1e-9)
    assert float(distortion(0.9, "ssim")) == pytest.approx(0.1)
    np.testing.assert_allclose(rdo_cost([1, 2], [10, 5], 3.0), [13, 11])
    with pytest.raises(ValueError):
        rdo_cost([1], [1], -1.0)


def _brute_force_hull(r, q):
    """Points that uniquely maximise q - lam r for some lam >= 0, found by trying a lambda between
    every pair of consecutive critical slopes."""
    slopes = sorted({(q[j] - q[i]) / (r[j] - r[i]) for i in range(len(r)) for j in range(len(r))
                     if r[j] != r[i] and (q[j] - q[i]) / (r[j] - r[i]) > 0})
    lams = [0.0] + [(a + b) / 2 for a, b in zip(slopes, slopes[1:])] + ([slopes[-1] * 2] if slopes else [])
    lams += [slopes[0] / 2] if slopes else []
    best = set()
    for lam in lams:
        j = q - lam * r
        top = np.flatnonzero(j >= j.max() - 1e-12)
        best.add(int(top[np.argmin(r[top])]))
    return best


def test_convex_hull_matches_lambda_sweep():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(1, 40))
        r = rng.uniform(0.1, 5, n)
        q = 30 + 5 * np.log(r) + rng.normal(0, 1, n)
        idx = convex_hull(r, q)
        assert set(idx.tolist()) == _brute_force_hull(r, q)
        assert np.all(np.diff(r[idx]) > 0) and np.all(np.diff(q[idx]) > 0)
        chosen = [int(np.argmin(rdo_cost(r, -q, lam))) for lam in (0.0, 1.0, 100.0)]
        assert set(chosen) <= set(idx.tolist())


def test_convex_hull_drops_collinear_and_dominated():
    r = np.array([1.0, 2.0, 3.0, 2.5, 1.0])
    q = np.array([1.0, 2.0, 3.0, 1.0, 0.5])
    assert convex_hull(r, q).tolist() == [0, 2]


def test_bd_summary_and_hull_take_the_metric_direction():
    """A lower-is-better metric (LPIPS) scored through the direction flag equals the negated
    higher-is-better computation done by hand; the hull keeps the lowest-distance points."""
    ra, la = [0.1, 0.2, 0.4, 0.8], [0.40, 0.30, 0.22, 0.18]
    rb, lb = [0.1, 0.2, 0.4, 0.8], [0.35, 0.26, 0.20, 0.17]
    s = bd_summary((ra, la), (rb, lb), higher_is_better=False)
    assert s["quality"] == pytest.approx(-bd_quality(ra, [-v for v in la], rb, [-v for v in lb]), abs=1e-12)
    assert s["quality"] < 0 and s["rate_percent"] < 0  # b is better: lower LPIPS, fewer bits
    apart = bd_summary((ra, la), (rb, [v - 1 for v in lb]), higher_is_better=False)
    assert apart["rate_percent"] is None and "share no quality range" in apart["rate_percent_note"]
    few = bd_summary(([0.1], [0.4]), (rb, lb))
    assert few["quality"] is None and "at least 2 points" in few["quality_note"]
    pts_r, pts_q = [1, 2, 2, 3, 4], [0.5, 0.6, 0.3, 0.35, 0.2]
    assert list(hull(pts_r, pts_q, higher_is_better=False)) == list(convex_hull(pts_r, [-q for q in pts_q]))
    assert [pts_r[i] for i in hull(pts_r, pts_q, higher_is_better=False)] == [1, 2, 4]


def test_peak_deltas_on_straight_curves_match_the_closed_form():
    """Two points per curve: pchip is linear in log10 rate, so the largest gaps sit at the ends of
    the common ranges and follow from the line equations (worked by hand in the comments)."""
    # anchor q = 30 + 5 x, test q = 30.5 + 6.5 x, x = log10 rate in [0, 1]
    ra, qa, rb, qb = [1, 10], [30, 35], [1, 10], [30.5, 37]
    p = peak_deltas((ra, qa), (rb, qb))
    # gain 0.5 + 1.5 x, largest at x = 1 (rate 10): 2.0 dB
    assert p["quality_gain"] == pytest.approx(2.0, abs=1e-9) and p["quality_gain_at_rate"] == pytest.approx(10)
    # common quality [30.5, 35]; log-rate gap (q - 30.5) / 6.5 - (q - 30) / 5 falls with q, so the
    # largest saving is at q = 35: 1 - 10^(4.5 / 6.5 - 1)
    assert p["rate_saving_percent"] == pytest.approx((1 - 10 ** (4.5 / 6.5 - 1)) * 100, abs=1e-9)
    assert p["rate_saving_at_quality"] == pytest.approx(35)
    # the Bjontegaard deltas are the means of the same gaps, so never above the peaks
    assert bd_quality(ra, qa, rb, qb) == pytest.approx(0.5 + 1.5 * 0.5)
    assert bd_quality(ra, qa, rb, qb) < p["quality_gain"]
    assert -bd_rate(ra, qa, rb, qb) < p["rate_saving_percent"]


@settings(max_examples=30, deadline=None)
@given(k=st.floats(0.2, 5.0), c=st.floats(-2, 2), method=st.sampled_from(["pchip", "cubic"]))
def test_peak_deltas_of_uniform_shifts_are_the_shift(k, c, method):
    p = peak_deltas((RA, QA), ([r * k for r in RA], QA), method=method)
    assert p["rate_saving_percent"] == pytest.approx((1 - k) * 100, abs=1e-8)
    assert peak_deltas((RA, QA), (RA, [q + c for q in QA]), method=method)["quality_gain"] == pytest.approx(c, abs=1e-9)


def test_peak_deltas_bound_the_bjontegaard_package_and_take_the_direction():
    s = peak_deltas((RA, QA), (RB, QB))
    assert s["quality_gain"] >= bjontegaard.bd_psnr(RA, QA, RB, QB, method="pchip")
    assert s["rate_saving_percent"] >= -bjontegaard.bd_rate(RA, QA, RB, QB, method="pchip")
    assert min(RA) <= s["quality_gain_at_rate"] <= max(RA)
    ra, la = [0.1, 0.2, 0.4, 0.8], [0.40, 0.30, 0.22, 0.18]
    lb = [0.35, 0.26, 0.20, 0.17]
    d = peak_deltas((ra, la), (ra, lb), higher_is_better=False)
    assert d["quality_gain"] == pytest.approx(-0.05, abs=1e-9)  # lower LPIPS, largest at the lowest rate
    assert d["quality_gain_at_rate"] == pytest.approx(0.1) and d["rate_saving_percent"] > 0
    assert 0.18 <= d["rate_saving_at_quality"] <= 0.35
    apart = peak_deltas(([1, 2], [30, 31]), ([1, 2], [32, 33]))
    assert apart["rate_saving_percent"] is None and "no quality range" in apart["rate_saving_percent_note"]
    assert apart["quality_gain"] == pytest.approx(2.0)
    few = peak_deltas(([1], [30]), ([1, 2], [30, 31]))
    assert few["quality_gain"] is None and "at least 2 points" in few["quality_gain_note"]
