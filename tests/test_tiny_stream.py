"""The embedded streaming receiver (models/receivers/tiny_stream): the previous-frame input, the flow
guidance, the streaming protocol, the weights loader and both training scripts end to end.

References: the still network itself (a streaming network made from it computes the same frames
until it has learnt something), a known translation (the DIS flow and the warp must recover it),
and one uninterrupted run (a chunked stream must give its frames exactly).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from metavsr.models.receivers.base import RunOptions, StreamingReceiver, run_stream
from metavsr.models.receivers.tiny.net import TinyConfig, TinySRNet, streaming_from_still
from metavsr.models.receivers.tiny.receiver import TinyWeightsError, is_streaming_file, load_embedded, load_net
from metavsr.models.receivers.tiny_stream import guide
from metavsr.models.receivers.tiny_stream.receiver import TinyStreamReceiver, load_stream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _still(seed=0, **kw):
    torch.manual_seed(seed)
    return TinySRNet(TinyConfig(channels=8, blocks=2, **kw)).eval()


def _trained_like(seed=1):
    """A streaming network whose previous-frame weights are not zero (as after training)."""
    net = streaming_from_still(_still(seed))
    with torch.no_grad():
        net.head.weight[:, -(4 * 16 + 1):].normal_(0, 0.05)
    return net.eval()


def _scene(t=6, h=24, w=32, step=1, seed=0):
    """A textured image moving ``step`` LR px right per frame: [t,h,w,3] and the HR [t,4h,4w,3]."""
    rng = np.random.default_rng(seed)
    big = rng.random((4 * h // 4 + 8, (4 * w + 64) // 4, 3)).astype(np.float32)
    big = torch.nn.functional.interpolate(torch.from_numpy(big).permute(2, 0, 1)[None], scale_factor=16,
                                          mode="bicubic", align_corners=False)[0].permute(1, 2, 0).clamp(0, 1)
    hr = torch.stack([big[8:8 + 4 * h, 32 - 4 * step * k:32 - 4 * step * k + 4 * w] for k in range(t)])
    lr = torch.nn.functional.avg_pool2d(hr.permute(0, 3, 1, 2), 4).permute(0, 2, 3, 1)
    return lr.contiguous(), hr.contiguous()


def test_streaming_network_starts_as_the_still_one():
    still = _still()
    net = streaming_from_still(still)
    assert net.config.prev_input and net.config.in_channels == still.config.in_channels + 4 * 16 + 1
    lr, e = torch.rand(2, 3, 10, 12), (torch.rand(2, 1, 40, 48) > 0.9).float()
    prev = torch.rand(2, 3, 40, 48)
    with torch.no_grad():
        ref = still(lr, e)
        torch.testing.assert_close(net(lr, e), ref, atol=0, rtol=0)
        torch.testing.assert_close(net(lr, e, prev=prev, valid=torch.ones(2, 1, 40, 48)), ref, atol=0, rtol=0)
    with pytest.raises(ValueError, match="no previous-frame input"):
        still(lr, prev=prev)


def test_previous_frame_dropout_equals_no_previous_frame():
    net = _trained_like()
    lr, prev = torch.rand(2, 3, 10, 12), torch.rand(2, 3, 40, 48)
    with torch.no_grad():
        none = net(lr)
        mixed = net(lr, prev=prev, valid=torch.ones(2, 1, 40, 48), prev_present=torch.tensor([0.0, 1.0]))
        used = net(lr, prev=prev, valid=torch.ones(2, 1, 40, 48))
    torch.testing.assert_close(mixed[0], none[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed[1], used[1], atol=1e-6, rtol=0)
    assert (used - none).abs().max() > 1e-3


def test_guidance_recovers_a_known_translation_and_refuses_a_cut():
    from metavsr.models.metrics.temporal import grey_u8
    lr, hr = _scene(t=2, h=32, w=40, step=1)
    g = grey_u8(lr)
    flow, valid = guide.flows(g[0], g[1])
    inner = (slice(6, -6), slice(6, -6))
    # the scene moved right by 1 LR px: frame 1 at p was at p - (1, 0) in frame 0
    assert abs(float(np.median(flow[inner][..., 0])) + 1) < 0.15 and abs(float(np.median(flow[inner][..., 1]))) < 0.15
    assert valid[inner].mean() > 0.9
    warped, v = guide.guidance(hr[:1].permute(0, 3, 1, 2), torch.from_numpy(flow)[None],
                               torch.from_numpy(valid)[None], 4)
    err_warped = (warped[0].permute(1, 2, 0) - hr[1])[24:-24, 24:-24].abs().mean()
    err_still = (hr[0] - hr[1])[24:-24, 24:-24].abs().mean()
    assert v.shape == (1, 1, 128, 160) and err_warped < 0.35 * err_still
    other = grey_u8(_scene(t=1, h=32, w=40, seed=5)[0])[0]
    assert guide.flows(g[0], other)[1].sum() == 0          # a cut: nothing carried over


def test_stream_protocol_chunks_and_per_frame_mode():
    rx = TinyStreamReceiver(_trained_like())
    assert isinstance(rx, StreamingReceiver)
    lr, _ = _scene(t=6)
    edges = (torch.rand(6, 96, 128) > 0.9).float()
    whole = rx.upscale(lr, {"edges": edges})
    a, state = run_stream(rx, lr[:2], {"edges": edges[:2]})
    b, _ = run_stream(rx, lr[2:], {"edges": edges[2:]}, state=state)
    torch.testing.assert_close(torch.cat([a, b]), whole, atol=0, rtol=0)
    # temporal off: every frame as a first frame, i.e. the network without guidance
    per_frame = rx.upscale(lr, {"edges": edges}, RunOptions(temporal=False))
    with torch.no_grad():
        ref = torch.stack([rx.net(lr[i].permute(2, 0, 1)[None], edges[i][None, None])[0].clamp(0, 1).permute(1, 2, 0)
                           for i in range(6)])
    torch.testing.assert_close(per_frame, ref, atol=1e-5, rtol=0)
    assert (whole[1:] - per_frame[1:]).abs().max() > 1e-3 and (whole[0] - per_frame[0]).abs().max() < 1e-5
    # tiles change memory only
    torch.testing.assert_close(rx.upscale(lr, None, RunOptions(tile=48)), rx.upscale(lr), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="a stream keeps one size"):
        run_stream(rx, lr[:1, :20], state=state)


def _save(net, path, training=None):
    sys.path.insert(0, os.path.join(ROOT, "train"))
    from train_tiny import save
    save(net, path, training or {"iterations": 1})


def test_loader_tells_the_two_kinds_apart(tmp_path):
    still_p, stream_p = str(tmp_path / "still.safetensors"), str(tmp_path / "stream.safetensors")
    _save(_still(), still_p)
    _save(_trained_like(), stream_p)
    assert not is_streaming_file(still_p) and is_streaming_file(stream_p)
    rx = load_stream(stream_p)
    lr, _ = _scene(t=3)
    torch.testing.assert_close(rx.upscale(lr), TinyStreamReceiver(_trained_like()).upscale(lr), atol=0, rtol=0)
    with pytest.raises(TinyWeightsError, match="streaming receiver, not the still one; load it with load_stream"):
        load_embedded(stream_p)
    with pytest.raises(TinyWeightsError, match="still receiver, not the streaming one"):
        load_stream(still_p)
    assert load_net(stream_p, streaming=True)[0].config.prev_input


def _tiny_data(folder):
    """Three renders and one small clip: a training folder in the layout the prepare steps write."""
    sys.path.insert(0, os.path.join(ROOT, "train"))
    import tiny_data as tdata
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, make in enumerate((lambda: tdata.render_cartoon(rng, 96), lambda: tdata.render_line_art(rng, 96),
                              lambda: tdata.render_text(rng, 96, tdata._fonts()))):
        Image.fromarray(make()).save(os.path.join(folder, f"synth_{i:04d}.png"))
    clip = np.stack([np.roll(tdata.render_cartoon(np.random.default_rng(1), 128), 3 * k, axis=1) for k in range(8)])
    np.save(os.path.join(folder, "clip_0000.npy"), clip)


def test_training_scripts_run_end_to_end(tmp_path):
    """train/train_tiny.py and train/train_tiny_stream.py on a tiny config, a few steps, CPU."""
    data = str(tmp_path / "data")
    _tiny_data(data)
    still = str(tmp_path / "still.safetensors")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train", "train_tiny.py"), "train", "--data", data,
                        "--out", still, "--iters", "3", "--batch", "2", "--crop", "32", "--channels", "8",
                        "--blocks", "1", "--workers", "0", "--device", "cpu", "--log-every", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "saved" in r.stdout and not is_streaming_file(still)
    # a deeper network grown from it: the new block starts as identity, so step 1's loss is the old net's
    deeper = str(tmp_path / "deeper.safetensors")
    r2 = subprocess.run([sys.executable, os.path.join(ROOT, "train", "train_tiny.py"), "train", "--data", data,
                         "--resume", still, "--out", deeper, "--iters", "1", "--batch", "2", "--crop", "32",
                         "--channels", "8", "--blocks", "2", "--workers", "0", "--device", "cpu", "--lr", "0"],
                        capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0 and "grown from 1 to 2 residual blocks" in r2.stdout, r2.stderr[-2000:]
    grown, _ = load_net(deeper)
    small, _ = load_net(still)
    x = torch.rand(1, 3, 12, 12)
    assert grown.config.blocks == 2 and torch.allclose(grown(x), small(x), atol=1e-6)
    # an edge branch trained on its own: the trunk (the pixel-only output) stays exactly the still one's
    branched = str(tmp_path / "branched.safetensors")
    r3 = subprocess.run([sys.executable, os.path.join(ROOT, "train", "train_tiny.py"), "train", "--data", data,
                         "--resume", still, "--out", branched, "--iters", "3", "--batch", "2", "--crop", "32",
                         "--channels", "8", "--blocks", "1", "--edge-blocks", "1", "--freeze-trunk", "--p-edges", "1",
                         "--quality", "10", "30", "--edge-modes", "3",
                         "--workers", "0", "--device", "cpu", "--lr", "1e-2"],
                        capture_output=True, text=True, timeout=300)
    assert r3.returncode == 0 and "edge branch of 1 blocks added" in r3.stdout, r3.stderr[-2000:]
    net_b, _ = load_net(branched)
    e = (torch.rand(1, 1, 48, 48) > 0.8).float()
    assert torch.equal(net_b(x), small(x)) and not torch.allclose(net_b(x, e), small(x, e), atol=1e-4)
    assert all(torch.equal(a, small.state_dict()[k]) for k, a in net_b.state_dict().items() if not k.startswith("edge_"))
    with open(os.path.splitext(branched)[0] + ".json") as f, open(os.path.splitext(still)[0] + ".json") as g:
        rec = json.load(f)["training"]
        assert rec["previous"] == json.load(g)["training"]  # the chain of runs is kept
    assert "JPEG q10..30" in rec["degradations"] and "coded as thinned half-res" in rec["degradations"]
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "train", "train_tiny.py"), "train", "--data", data,
                          "--out", str(tmp_path / "x.safetensors"), "--quality", "50", "10", "--workers", "0"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--quality 50 10" in bad.stderr
    stream = str(tmp_path / "stream.safetensors")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train", "train_tiny_stream.py"), "train", "--data", data,
                        "--init", still, "--out", stream, "--iters", "3", "--batch", "2", "--frames", "3",
                        "--crop", "48", "--workers", "0", "--threads", "1", "--log-every", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "saved" in r.stdout and "temporal" in r.stdout
    rx = load_stream(stream)
    assert rx.info["iterations"] == 3 and rx.info["clips"] == 1 and rx.info["stills"] == 3
    # the previous-frame weights moved from zero: the temporal input was trained
    assert rx.net.head.weight[:, -(4 * 16 + 1):].abs().max() > 0


def test_video_experiment_counts_real_bytes_and_measures_what_it_reports(tmp_path):
    from metavsr.models import link
    from metavsr.models import video_experiment as vx
    from metavsr.models.metrics.temporal import ewarp, tof
    from metavsr.models.orchestrator.mixed_set import cartoon, pan_clip
    from metavsr.models.receivers.tiny.receiver import TinyReceiver
    clip = pan_clip(cartoon(160, 3), 64, 4, 2.0)
    rxs = {"per-frame": TinyReceiver(_still()), "streaming": TinyStreamReceiver(_trained_like())}
    rep = vx.run_video({"pan": clip}, rxs, ("NN",), (30, 70), with_tlp=False)
    pts = rep["regimes"]["NN"]["points_per_clip"]
    base = link.send_base(clip, 30, "NN")
    edge_bits = vx.send_edges(clip, vx.EDGES).bits
    assert rep["edges"]["bits"]["pan"] == edge_bits > 0
    p0 = pts["streaming"]["pixel_only"]["pan"][0]
    p1 = pts["streaming"]["with_edges"]["pan"][0]
    assert p0["quality"] == 30 and p0["bits"] == base.bits and p1["bits"] == base.bits + edge_bits
    sr = link.receive(rxs["streaming"], base.received, None, vx.OPTIONS)
    assert abs(p0["tof"] - float(tof(torch.from_numpy(sr), torch.from_numpy(clip)).mean())) < 1e-6
    assert abs(p0["ewarp"] - float(ewarp(torch.from_numpy(sr), torch.from_numpy(clip)).mean())) < 1e-9
    s = rep["regimes"]["NN"]["summary"]
    assert set(s) == {"per-frame: edges vs pixel-only", "streaming: edges vs pixel-only",
                      "streaming vs per-frame, pixel_only", "streaming vs per-frame, with_edges"}
    assert set(s["streaming vs per-frame, pixel_only"]["per_clip"]["pan"]) >= {"tof_lower_at_every_quality", "psnr_db"}
    assert any("tOF" in line for line in vx.summary_lines(rep))
    vx.plot(rep, str(tmp_path / "rd.png"))
    assert (tmp_path / "rd.png").stat().st_size > 10000


def test_shipped_streaming_weights_record_and_steadier_video():
    """The shipped file: its size and training record, and on a clip it never saw (a pan over a
    scikit-image photo through the HN channel) a steadier video than the per-frame receiver at no
    loss of PSNR. Full figures: run.py --experiment video."""
    import json
    from metavsr.models import link
    from metavsr.models.metrics.temporal import ewarp, tof
    from metavsr.models.orchestrator.mixed_set import _photo, pan_clip
    from metavsr.models.receivers.tiny_stream.receiver import DEFAULT_WEIGHTS
    assert os.path.getsize(DEFAULT_WEIGHTS) <= 20 * 1024 * 1024
    rx = load_stream()
    assert rx.info["iterations"] > 1000 and rx.info["init"] == "tiny_sr_x4.safetensors"
    with open(os.path.splitext(DEFAULT_WEIGHTS)[0] + ".json") as f:
        assert json.load(f)["training"]["iterations"] == rx.info["iterations"]
    hr = pan_clip(_photo("coffee"), 128, 8, 3.0)
    lr = link.send_base(hr, 50, "HN").received
    still, stream = link.receive(load_embedded(), lr), link.receive(rx, lr)
    x, y, ref = torch.from_numpy(stream), torch.from_numpy(still), torch.from_numpy(hr)
    assert float(ewarp(x, ref).mean()) < 0.6 * float(ewarp(y, ref).mean())
    assert float(tof(x, ref).mean()) < float(tof(y, ref).mean())
    assert link.measure(stream, hr, ("psnr",))["psnr"] > link.measure(still, hr, ("psnr",))["psnr"] - 0.05
