"""The verification gate (models/orchestrator/gate.py) on a synthetic scene whose edges are known:
true Canny edges pass, the same map moved by 2-3 px or replaced by random pixels does not, a frame
without edges passes, bad shapes are refused. Rates on natural images: bench/gate.py."""
import numpy as np
import pytest

from metavsr.models.codec.resize import downscale
from metavsr.models.metadata.canny import canny_edges
from metavsr.models.orchestrator import gate


def _scene(size=128):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = 0.2 + 0.5 * ((x > 37) & (x < 90) & (y > 20) & (y < 70))            # a bright rectangle
    img = img + 0.25 * (((x - 64) ** 2 + (y - 98) ** 2) < 18 ** 2)         # and a disk
    rgb = np.stack([img, img * 0.8, img * 0.6], -1).clip(0, 1)[None]
    return rgb, downscale(rgb, 4, "bicubic")


def test_true_edges_pass_and_corrupted_ones_do_not():
    hr, lr = _scene()
    e = canny_edges(hr, 50, 120)
    assert 0.01 < e.mean() < 0.2
    ok = gate.check_edges(lr, e)
    assert ok.all_accepted and ok.level[0] > 3 and ok.peak[0] > 1
    for d in (2, 3):
        for axis in (1, 2):
            moved = gate.check_edges(lr, np.roll(e, d, axis=axis))
            assert not moved.accepted[0] and moved.peak[0] < gate.MIN_PEAK, (d, axis)
    rnd = (np.random.default_rng(0).random(e.shape) < e.mean()).astype(np.uint8)
    assert not gate.check_edges(lr, rnd).accepted[0]
    assert "pixel-only" in gate.check_edges(lr, rnd).table()


def test_frames_are_judged_one_by_one_and_empty_maps_pass():
    hr, lr = _scene()
    e = canny_edges(hr, 50, 120)
    clip = np.concatenate([lr, lr])
    maps = np.concatenate([e, np.roll(e, 3, axis=2)])
    r = gate.check_edges(clip, maps)
    assert r.accepted.tolist() == [True, False]
    empty = gate.check_edges(lr, np.zeros_like(e))
    assert empty.all_accepted and np.isnan(empty.level[0])
    assert gate.check_edges(clip, e[0]).accepted.tolist() == [True, True]     # one map for every frame


def test_shapes_are_checked():
    hr, lr = _scene()
    e = canny_edges(hr, 50, 120)
    with pytest.raises(ValueError, match="integer multiple"):
        gate.check_edges(lr, e[:, :100])
    with pytest.raises(ValueError, match="2 edge maps for 1 frames"):
        gate.check_edges(lr, np.concatenate([e, e]))
    with pytest.raises(ValueError, match="expected lr"):
        gate.check_edges(lr[..., :1], e)


def test_second_stage_drops_maps_whose_output_fits_the_lr_worse():
    from metavsr.models.codec.resize import upscale
    hr, lr = _scene()
    clean = upscale(lr, 4, "bicubic")
    noisy = (clean + np.random.default_rng(0).normal(0, 0.05, clean.shape)).astype(np.float32)
    # the same output on both sides fits the LR equally well
    assert gate.inconsistency(lr, clean, clean)[0] == 1.0
    r = gate.inconsistency(np.concatenate([lr, lr]), np.concatenate([clean, noisy]), np.concatenate([clean, clean]))
    assert r[0] == 1.0 and r[1] > 1.5
    first = gate.check_edges(np.concatenate([lr, lr]), canny_edges(hr, 50, 120))
    assert first.all_accepted
    both = gate.second_stage(first, r)
    assert both.accepted.tolist() == [True, False] and "fit" in both.table()
    kept = gate.second_stage(first, np.array([np.nan, np.nan]))
    assert kept.accepted.tolist() == [True, True]
    with pytest.raises(ValueError, match="consistency ratios"):
        gate.second_stage(first, r[:1])
