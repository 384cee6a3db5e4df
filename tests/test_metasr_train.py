"""MetaSR training: losses against the paper's formulas (Eq. 3, 5, 6) written out in numpy, and the
two-stage script running a few steps on a tiny random model on the CPU."""
import json
import os

import numpy as np
import pytest
import torch

import cogvideox_fixtures as configs
from metavsr.models.receivers.cogvideox import load, training
from metavsr.models.receivers.cogvideox.pipeline import DEFAULT_OPTIONS


def test_latent_loss_is_eq3():
    rng = np.random.default_rng(0)
    z_sr, z_hr = rng.normal(size=(2, 3, 4, 5, 6)), rng.normal(size=(2, 3, 4, 5, 6))
    want = np.mean([np.sum((z_sr[i] - z_hr[i]) ** 2) / np.sum(z_hr[i] ** 2) for i in range(2)])
    got = training.latent_loss(torch.from_numpy(z_sr), torch.from_numpy(z_hr))
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_frame_and_pixel_loss_are_eq5_eq6():
    rng = np.random.default_rng(1)
    x, y = rng.random((5, 8, 9, 3)), rng.random((5, 8, 9, 3))
    n = len(x)
    frame = sum(np.abs((x[i] - x[i - 1]) - (y[i] - y[i - 1])).mean() for i in range(1, n)) / (n - 1)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    assert float(training.frame_loss(tx, ty)) == pytest.approx(frame, rel=1e-12)
    assert float(training.frame_loss(tx[:1], ty[:1])) == 0.0
    per = lambda a, b: (a - b).abs().mean(dim=(1, 2, 3))  # noqa: E731 - a stand-in perceptual term
    total = training.pixel_loss(tx, ty, per, lambda_per=0.5, lambda_frame=2.0)
    want = ((x - y) ** 2).mean() + 0.5 * np.abs(x - y).mean() + 2.0 * frame
    assert float(total) == pytest.approx(want, rel=1e-12)


def test_metadata_dropout():
    maps = [torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)]
    g = torch.Generator().manual_seed(0)
    assert training.drop_metadata(maps, 0.0, g) == maps
    assert training.drop_metadata(maps, 1.0, g) == []
    kept = [len(training.drop_metadata(maps, 0.5, g)) for _ in range(200)]
    assert min(kept) == 0 and max(kept) == 3 and 1.2 < np.mean(kept) < 1.8


def test_perceptual_term_has_gradients():
    """LPIPS (AlexNet weights ship with the pack) is an inference metric; training unwraps its no_grad."""
    fn = _script().perceptual_fn("lpips")
    x = torch.rand(2, 32, 32, 3, requires_grad=True)
    fn(x, torch.rand(2, 32, 32, 3)).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def _script():
    import importlib.util
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("train_metasr", os.path.join(root, "train", "train_metasr.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_two_stage_training_script_runs(tmp_path, capsys):
    init = configs.tiny_folder(str(tmp_path / "init"), "tiny_15", seed=0)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    # a smooth clip with edges (a moving square) and one image
    clip = np.zeros((12, 80, 80, 3), np.uint8)
    for t in range(12):
        clip[t, 20 + t:50 + t, 15:45] = (200, 120, 60)
    clip = (clip + rng.integers(0, 20, clip.shape)).astype(np.uint8)
    np.save(data / "clip.npy", clip)
    from PIL import Image
    Image.fromarray(clip[0]).save(data / "still.png")
    script = _script()
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    common = ["--data", str(data), "--frames", "9", "--crop", "64", "--steps", "2", "--lr", "1e-3",
              "--device", "cpu", "--meta-dropout", "0.5"]
    assert script.main(["--model", init, "--out", str(s1), "--stage", "1", "--metadata", "edges"] + common) == 0
    assert script.main(["--model", str(s1), "--out", str(s2), "--stage", "2", "--metadata", "edges",
                        "--perceptual", "lpips", "--lambda-per", "0.1", "--lambda-frame", "1.0"] + common) == 0
    log = capsys.readouterr().out
    losses = [float(line.split()[-1]) for line in log.splitlines() if line.startswith("step")]
    assert len(losses) == 4 and all(np.isfinite(losses))
    with open(s2 / "metasr.json") as f:
        assert json.load(f)["metadata_kinds"] == ["edges"]
    a, b = load(init, dtype="fp32", device="cpu"), load(str(s2), dtype="fp32", device="cpu")
    assert b.metadata_kinds == ("edges",)
    assert configs.fingerprint(a.transformer) != configs.fingerprint(b.transformer)  # the DiT learned
    assert configs.fingerprint(a.vae) == configs.fingerprint(b.vae)  # the VAE stayed frozen
    out = b(torch.rand(1, 8, 8, 3), [torch.rand(1, 32, 32, 1)], options=DEFAULT_OPTIONS.replace(vae_tiling=False))
    assert out.shape == (1, 32, 32, 3)


def test_script_rejects_bad_clip_geometry(tmp_path):
    with pytest.raises(SystemExit, match="8N\\+1"):
        _script().main(["--model", "x", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--stage", "1",
                        "--frames", "10"])
