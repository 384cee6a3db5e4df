"""Temporal metrics against the papers' definitions on clips with known motion and flicker."""
import numpy as np
import pytest
import torch
from skimage import data

from metavsr.models.metrics import ewarp, lpips, tlp, tof
from metavsr.models.metrics.temporal import dis_flow, non_occlusion_mask

BIG = data.astronaut().astype(np.float32) / 255


def _clip(dx, frames=4, h=96, w=128):
    """A textured window sliding right by dx pixels per frame: true flow is (-dx, 0)... as content moves
    left in view; every pixel of frame t is found at p - (dx, 0) in frame t+1."""
    return torch.from_numpy(np.stack([BIG[100:100 + h, 100 + dx * t:100 + dx * t + w] for t in range(frames)]))


def test_dis_recovers_known_translation():
    c = _clip(3)
    g = (c.numpy() @ np.array([0.299, 0.587, 0.114], np.float32) * 255).round().astype(np.uint8)
    f = dis_flow(g[0], g[1])
    inner = f[16:-16, 16:-16]
    assert np.median(inner[..., 0]) == pytest.approx(-3, abs=0.1)
    assert np.median(inner[..., 1]) == pytest.approx(0, abs=0.1)


def test_tof_is_flow_difference_norm():
    moving, static = _clip(2), _clip(0)
    v = tof(moving, static)
    assert v.shape == (3,)
    np.testing.assert_allclose(v.numpy(), 2.0, atol=0.15)  # |(-2,0) - (0,0)| = 2 px
    assert torch.all(tof(moving, moving) == 0)


def test_tlp_definition():
    x, y = _clip(2), _clip(0)
    ref = (lpips(x[:-1], x[1:]) - lpips(y[:-1], y[1:])).abs()
    torch.testing.assert_close(tlp(x, y), ref)
    assert float(tlp(y, y).abs().max()) == 0.0 and float(ref.min()) > 0.005


def test_ewarp_flicker_equals_squared_step():
    """Static scene, every other frame brightened by d: with flow from the clean clip (zero motion)
    E_warp = sum over RGB of d^2 = 3 d^2 for every pair (Lai et al.'s formula, no occlusion)."""
    static = _clip(0) * 0.8
    d = 0.05
    flick = static.clone()
    flick[1::2] += d
    np.testing.assert_allclose(ewarp(flick, static).numpy(), 3 * d * d, rtol=1e-3)
    assert float(ewarp(static).max()) == 0.0


def test_ewarp_translation_is_compensated():
    moving = _clip(2)
    e = ewarp(moving)  # flow from the clip itself: warping undoes the motion
    assert float(e.max()) < 1e-4
    shuffled = moving[[0, 2, 1, 3]]
    assert float(ewarp(shuffled, moving).min()) > 10 * float(e.max())


def test_occlusion_mask_drops_pixels_leaving_the_frame():
    fw = np.zeros((20, 30, 2), np.float32)
    fw[..., 0] = 3.0
    bw = -fw
    m = non_occlusion_mask(fw, bw)
    assert m[:, :27].min() == 1 and m[:, 27:].max() == 0
    bad = non_occlusion_mask(fw, np.zeros_like(fw))  # inconsistent backward flow: all occluded
    assert bad.max() == 0


def test_errors():
    with pytest.raises(ValueError, match="at least 2 frames"):
        tof(_clip(0, frames=1), _clip(0, frames=1))
    with pytest.raises(ValueError, match="same shape"):
        ewarp(_clip(0), _clip(0, frames=3))
