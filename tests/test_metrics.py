"""PSNR / SSIM against scikit-image (an independent implementation) under the documented conventions."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metavsr.models.metrics import psnr, rgb_to_y, ssim

CAL = os.path.join(os.path.dirname(__file__), "data", "calibration")
NAMES = json.load(open(os.path.join(CAL, "values.json")))["images"]


def _load(kind):
    """[5,384,512,3] float32 0..1 tensor of the calibration images."""
    return torch.from_numpy(np.stack([np.asarray(Image.open(os.path.join(CAL, f"{kind}_{n}.png")).convert("RGB"))
                                      for n in NAMES]).astype(np.float32) / 255.0)


@pytest.fixture(scope="module")
def pairs():
    return _load("dist"), _load("ref")


def _sk_ssim(a, b, data_range, channel_axis):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range, channel_axis=channel_axis)


def test_psnr_ssim_rgb_match_skimage(pairs):
    x, y = pairs
    p, s = psnr(x, y), ssim(x, y)
    assert p.shape == s.shape == (5,)
    for i in range(5):
        a, b = x[i].double().numpy(), y[i].double().numpy()
        assert float(p[i]) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=1.0), abs=1e-4)
        assert float(s[i]) == pytest.approx(_sk_ssim(a, b, 1.0, -1), abs=1e-5)


def test_psnr_matches_published_calibration(pairs):
    ref = json.load(open(os.path.join(CAL, "values.json")))["psnr_rgb"]
    np.testing.assert_allclose(psnr(*pairs).numpy(), ref, atol=6e-3)  # published with 2 decimals


def test_y_channel_matches_skimage_rgb2ycbcr(pairs):
    x, y = pairs
    p, s = psnr(x, y, space="y"), ssim(x, y, space="y")
    for i in range(5):
        ya, yb = rgb2ycbcr(x[i].double().numpy())[..., 0], rgb2ycbcr(y[i].double().numpy())[..., 0]
        assert float(p[i]) == pytest.approx(peak_signal_noise_ratio(yb, ya, data_range=255), abs=1e-4)
        assert float(s[i]) == pytest.approx(_sk_ssim(ya, yb, 255, None), abs=1e-5)


def test_bt601_coefficients():
    rgb = torch.tensor([[[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]])
    y = rgb_to_y(rgb)[0, 0, :, 0]
    np.testing.assert_allclose(y.numpy(), [16.0, 235.0, 16 + 65.481], atol=1e-4)


def test_crop_border_and_batch():
    img = data.astronaut()[:96, :128].astype(np.float32) / 255
    rng = np.random.default_rng(0)
    noisy = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1).astype(np.float32)
    noisy[:4] = 0  # damage only the border: cropping 4 px must ignore it
    x = torch.from_numpy(np.stack([noisy, img]))
    y = torch.from_numpy(np.stack([img, img]))
    p = psnr(x, y, crop_border=4)
    c = (slice(4, -4), slice(4, -4))
    assert float(p[0]) == pytest.approx(peak_signal_noise_ratio(img[c].astype(np.float64),
                                                                noisy[c].astype(np.float64), data_range=1), abs=1e-4)
    assert torch.isinf(p[1]) and p[1] > 0  # identical frame: +inf, never NaN
    s = ssim(x, y, crop_border=4)
    assert float(s[0]) == pytest.approx(_sk_ssim(noisy[c], img[c], 1.0, -1), abs=1e-5)
    assert float(s[1]) == pytest.approx(1.0, abs=1e-9)


def test_errors():
    a = torch.rand(1, 16, 16, 3)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, torch.rand(1, 16, 17, 3))
    with pytest.raises(ValueError, match="window"):
        ssim(torch.rand(1, 8, 8, 3), torch.rand(1, 8, 8, 3))
    with pytest.raises(ValueError, match="space"):
        psnr(a, a, space="lab")
    with pytest.raises(ValueError, match="B,H,W,C"):
        psnr(a[0], a[0])


def test_edge_use_measures_contrast_polarity_and_where_the_error_is():
    """models/metrics/edge_use.py on a vertical step with its Canny map: the HR itself is drawn with
    ratio 1, its negative -1, a flat image 0, a Gaussian blur in between; the error of a blurred
    step sits next to the edge (scikit-image's Canny and Gaussian as independent references)."""
    from skimage.feature import canny
    from skimage.filters import gaussian
    from metavsr.models.metrics.edge_use import edge_contrast, near_edge_error
    hr = np.full((64, 64, 3), 0.2, np.float32)
    hr[:, 32:] = 0.8
    edges = canny(hr[..., 0], sigma=1.0)
    assert edges.any()
    same = edge_contrast(hr, hr, edges)
    assert same["median"] == pytest.approx(1.0) and same["reproduced"] == 1.0 and same["wrong_polarity"] == 0.0
    assert edge_contrast(1.0 - hr, hr, edges)["median"] == pytest.approx(-1.0)
    assert edge_contrast(np.full_like(hr, 0.5), hr, edges)["median"] == pytest.approx(0.0)
    blurred = gaussian(hr, sigma=3.0, channel_axis=-1).astype(np.float32)
    c = edge_contrast(blurred, hr, edges)
    assert 0.1 < c["median"] < 0.9
    n = near_edge_error(blurred, hr, edges, radius=4)
    assert n["share"] > 0.95 and n["mse_near"] > 100 * n["mse_far"] and 0 < n["near_fraction"] < 0.3
    with pytest.raises(ValueError, match="edges must be"):
        edge_contrast(hr, hr, edges[:-1])
