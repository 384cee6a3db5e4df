"""Sender algorithms against independent references (scipy, PIL, OpenCV, scikit-image, formulas)."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image
from scipy import ndimage
from scipy.cluster.vq import kmeans2

from metavsr.models.codec import bitdepth, degrade, resize
from metavsr.models.codec.bitstream import Bitstream
from metavsr.models.metadata import canny


def natural(h=96, w=128, name="astronaut"):
    img = getattr(skimage.data, name)()
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return (img.astype(np.float32) / 255.0)[None]


# --- channel degrade -------------------------------------------------------------------------------

def test_regimes_match_paper():
    assert degrade.REGIMES == {"NN": (0.0, 0, 0.0), "LN": (10.0, 5, 0.8), "HN": (20.0, 7, 1.2)}


def test_nn_is_identity():
    x = natural()
    assert np.array_equal(degrade.channel_degrade(x, *degrade.REGIMES["NN"]), x)


def test_noise_is_grey_gaussian_with_sigma():
    x = np.full((2, 200, 200, 3), 0.5, np.float32)
    y = degrade.channel_degrade(x, 20.0, 0, 0.0, seed=3)
    n = y - x
    assert np.allclose(n[..., 0], n[..., 1]) and np.allclose(n[..., 0], n[..., 2])  # grey noise
    assert abs(n.std() * 255 - 20.0) < 0.5 and abs(n.mean()) < 2e-3
    assert not np.allclose(n[0], n[1])  # each frame its own noise
    # a frame's noise depends on (seed, t), not on the clip length
    assert np.array_equal(degrade.channel_degrade(x[:1], 20.0, 0, 0.0, seed=3)[0], y[0])


def test_blur_matches_formula_kernel():
    x = natural()
    y = degrade.channel_degrade(x, 0.0, 7, 1.2)
    r = np.arange(7) - 3
    k = np.exp(-r ** 2 / (2 * 1.2 ** 2))
    k /= k.sum()
    ref = ndimage.convolve(x[0], np.outer(k, k)[:, :, None], mode="mirror")  # mirror == reflect-101
    assert np.abs(y[0] - ref).max() < 1e-5


# --- resize ------------------------------------------------------------------------------------------

def test_bicubic_downscale_matches_pil():
    x = natural(96, 128)
    u8 = (x[0] * 255 + 0.5).astype(np.uint8)
    ref = np.asarray(Image.fromarray(u8).resize((32, 24), Image.BICUBIC), np.float32) / 255
    ours = resize.downscale(u8[None].astype(np.float32) / 255, 4, "bicubic")[0]
    # PIL rounds to 8 bits between its horizontal and vertical passes, hence a few levels apart
    # at strong edges; on average they agree to well under one level
    assert np.abs(ours - ref).max() <= 5 / 255 and np.abs(ours - ref).mean() < 0.5 / 255


def test_area_downscale_is_block_mean():
    x = np.random.default_rng(0).random((2, 12, 18, 3), np.float32)
    ref = x.reshape(2, 4, 3, 6, 3, 3).mean(axis=(2, 4))
    assert np.allclose(resize.downscale(x, 3, "area"), ref, atol=1e-6)
    assert np.allclose(ref[0], cv2.resize(x[0], (6, 4), interpolation=cv2.INTER_AREA), atol=1e-6)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_patchwise_matches_cadm_formula(s):
    """Naive CaDM: pad ceil(s/2) zeros, Gaussian kernel of 2*ceil(s/2)+1 taps, and each output
    pixel the weighted average over its s x s patch of in-frame pixels only."""
    x = np.random.default_rng(s).random((1, 4 * s, 3 * s, 3)).astype(np.float32)
    p = -(-s // 2)
    size = 2 * p + 1
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    g = np.exp(-(np.arange(size) - p) ** 2 / (2 * sigma ** 2))
    g2 = np.outer(g, g)
    h, w = x.shape[1:3]
    ref = np.zeros((h // s, w // s, 3))
    for i in range(h // s):
        for j in range(w // s):
            num, den = np.zeros(3), 0.0
            for py in range(i * s, i * s + s):  # pixels of the patch
                for px in range(j * s, j * s + s):
                    for dy in range(-p, p + 1):  # blur taps
                        for dx in range(-p, p + 1):
                            yy, xx = py + dy, px + dx
                            wgt = g2[dy + p, dx + p]
                            if 0 <= yy < h and 0 <= xx < w:
                                num += wgt * x[0, yy, xx]
                                den += wgt
            ref[i, j] = num / den
    assert np.allclose(resize.downscale(x, s, "patchwise")[0], ref, atol=1e-5)


def test_patchwise_keeps_flat_frames_flat():
    x = np.full((1, 16, 16, 3), 0.7, np.float32)  # borders are not darkened by the zero padding
    assert np.allclose(resize.downscale(x, 4, "patchwise"), 0.7, atol=1e-6)


def test_upscale_matches_opencv():
    x = natural(24, 32)
    bil = resize.upscale(x, 4, "bilinear")[0]
    assert np.abs(bil - cv2.resize(x[0], (128, 96), interpolation=cv2.INTER_LINEAR)).max() < 1e-4
    bic = resize.upscale(x, 4, "bicubic")[0]
    ref = np.clip(cv2.resize(x[0], (128, 96), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert np.abs(bic - ref)[8:-8, 8:-8].max() < 1e-4  # borders: OpenCV reflects, torch replicates
    near = resize.upscale(x, 4, "nearest")[0]
    assert np.array_equal(near, cv2.resize(x[0], (128, 96), interpolation=cv2.INTER_NEAREST))


def test_resize_rejects_indivisible():
    with pytest.raises(ValueError, match="not divisible"):
        resize.downscale(np.zeros((1, 10, 12, 3), np.float32), 4)


# --- bit-depth quantization ----------------------------------------------------------------------

def test_bitdepth_stream_roundtrip_and_size():
    x = natural(48, 64)
    for bits in (1, 3, 4, 8):
        q, s = bitdepth.quantize(x, bits, seed=1)
        assert np.array_equal(bitdepth.decode(s), q)
        assert s.nbytes == 16 + (2 ** bits) * 3 + (48 * 64 * bits + 7) // 8
        assert len(np.unique(q.reshape(-1, 3), axis=0)) <= 2 ** bits
    clip = np.concatenate([x, x[:, :, ::-1]])
    q, s = bitdepth.quantize(clip, 4, per_clip=True)
    assert np.array_equal(bitdepth.decode(s), q) and s.nbytes == 16 + 48 + 2 * 48 * 64 // 2


def test_bitdepth_assignment_is_nearest_centroid():
    x = natural(32, 32)
    u8 = (x[0] * 255 + 0.5).astype(np.uint8)
    book = bitdepth.fit_codebook(u8[None], 4)
    idx = bitdepth.assign(u8, book)
    d = ((u8.reshape(-1, 1, 3).astype(int) - book[None].astype(int)) ** 2).sum(-1)
    assert np.array_equal(idx.reshape(-1), d.argmin(1))


def test_bitdepth_close_to_full_kmeans():
    """Fitted on ~1000 samples, the palette stays within 0.5 dB of K-means on all pixels (scipy)."""
    psnr = lambda a, b: 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2))
    for name in ("astronaut", "coffee"):
        x = natural(256, 256, name)
        q, _ = bitdepth.quantize(x, 4)
        flat = (x.reshape(-1, 3) * 255 + 0.5).astype(np.uint8).astype(np.float64)
        c, lab = kmeans2(flat, 16, minit="++", seed=0, iter=30)
        ref = c[lab] / 255.0
        assert psnr(q.reshape(-1, 3), x.reshape(-1, 3)) > psnr(ref, x.reshape(-1, 3)) - 0.5


def test_cadm_ratio():
    assert bitdepth.cadm_ratio(4, 4) == 24 * 16 / 4
    assert bitdepth.cadm_ratio(2, 8) == 12.0


def test_bitdepth_rejects_corrupt_stream():
    _, s = bitdepth.quantize(natural(16, 16), 2)
    data = s.payload[0]
    for bad in (data[:10], data[:-1], b"XXXX" + data[4:], data + b"\0"):
        with pytest.raises(ValueError):
            bitdepth.decode(Bitstream(s.codec, (bad,), s.shape))
    with pytest.raises(ValueError):
        bitdepth.quantize(natural(16, 16), 9)


def test_bitdepth_pure_python_path_agrees():
    """The numba kernels and their pure-Python fallback give identical streams."""
    code = ("import sys; sys.path.insert(0, %r); from _pack import load_pack; load_pack();"
            "import numpy as np; from metavsr.models.codec import bitdepth;"
            "x = np.random.default_rng(0).random((1, 12, 10, 3)).astype(np.float32);"
            "sys.stdout.write(bitdepth.quantize(x, 3)[1].payload[0].hex())")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outs = []
    for no_numba in ("", "1"):
        env = dict(os.environ, METAVSR_NO_NUMBA=no_numba)
        outs.append(subprocess.run([sys.executable, "-c", code % root], env=env, capture_output=True,
                                   text=True, check=True).stdout)
    assert outs[0] == outs[1] and len(outs[0]) > 0


# --- Canny -----------------------------------------------------------------------------------------

def test_canny_matches_opencv_and_dilates():
    x = natural(96, 128)
    e = canny.canny_edges(x, 100, 200)
    grey = cv2.cvtColor((x[0] * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    assert np.array_equal(e[0], (cv2.Canny(grey, 100, 200) > 0).astype(np.uint8))
    d = canny.canny_edges(x, 100, 200, dilate=1)
    assert d[0][e[0] == 1].all() and d.sum() > e.sum()


def test_canny_target_density():
    x = natural(128, 128)
    for target in (0.02, 0.08):
        edges, low, high, dens = canny.canny_for_density(x, target)
        assert abs(dens - target) < 0.01 and abs(low - 0.4 * high) < 1e-9
        assert dens == pytest.approx(edges.mean())
