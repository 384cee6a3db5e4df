"""The embedded receiver: network wiring, noise estimate, tiling, shipped weights and loader node.

References: OpenCV's bicubic resize (a = -0.75, as torch) for the residual base, numpy reshapes for the
space-to-depth layout, the true noise sigma for Immerkaer's estimator, scikit-image's PSNR for the
quality checks of the trained weights.
"""
import json
import os
import sys

import cv2
import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

from metavsr.models.codec.degrade import REGIMES, channel_degrade
from metavsr.models.codec.jpeg import jpeg_decode, jpeg_encode
from metavsr.models.codec.resize import downscale
from metavsr.models.metadata.canny import canny_for_density
from metavsr.models.receivers.base import Receiver, ReceiverInputError, RunOptions
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train"))
import tiny_data as tdata  # noqa: E402  (the training recipe lives in train/)
from metavsr.models.receivers.tiny.net import TinyConfig, TinySRNet, noise_level
from metavsr.models.receivers.tiny.receiver import DEFAULT_WEIGHTS, TinyReceiver, load_embedded, read_metadata

torch.manual_seed(0)


def _small_net(**kw):
    cfg = TinyConfig(channels=8, blocks=2, **kw)
    net = TinySRNet(cfg).eval()
    return net


def test_zero_residual_is_opencv_bicubic():
    net = _small_net()
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.zero_()
    lr = np.random.default_rng(0).random((13, 17, 3)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(lr).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    ref = cv2.resize(lr, (68, 52), interpolation=cv2.INTER_CUBIC)
    # OpenCV replicates borders like torch; interior and borders agree to float precision
    np.testing.assert_allclose(y, ref, atol=2e-5)


def test_edges_enter_at_their_lr_position():
    """An edge at HR (y, x) is space-to-depth channel (y%4)*4 + x%4 of LR pixel (y//4, x//4)."""
    net = _small_net(noise_input=False)
    captured = {}
    net.head.register_forward_hook(lambda m, inp, out: captured.update(x=inp[0]))
    meta = torch.zeros(1, 1, 40, 48)
    y, x = 23, 30
    meta[0, 0, y, x] = 1
    with torch.no_grad():
        net(torch.zeros(1, 3, 10, 12), meta)
    feat = captured["x"][0].numpy()
    ref = np.zeros((16, 10, 12), np.float32)  # independent reshape: [h,4,w,4] -> [4,4,h,w]
    ref[:] = meta[0, 0].numpy().reshape(10, 4, 12, 4).transpose(1, 3, 0, 2).reshape(16, 10, 12)
    np.testing.assert_array_equal(feat[3:19], ref)
    assert feat[3 + (y % 4) * 4 + x % 4, y // 4, x // 4] == 1
    np.testing.assert_array_equal(feat[19], 1.0)  # presence flag


def test_receptive_field_matches_tiling_margin():
    net = _small_net()
    r = net.config.receptive_radius
    lr = torch.rand(1, 3, 2 * r + 9, 2 * r + 9, requires_grad=True)
    out = net(lr, sigma=torch.zeros(1))
    c = (2 * r + 9) // 2
    out[0, :, 4 * c, 4 * c].sum().backward()
    g = lr.grad[0].abs().sum(0)
    ys, xs = torch.nonzero(g, as_tuple=True)
    assert int((ys - c).abs().max()) <= r and int((xs - c).abs().max()) <= r
    assert int((ys - c).abs().max()) >= r - 2  # the bound is tight, not loose


def test_edge_branch_acts_only_where_a_map_was_sent():
    """The edge branch adds its correction to the samples that carry a map and nothing elsewhere;
    with its tail at zero (as added to trained weights) the output is the trunk's; the tiling margin
    covers its extra reach."""
    net = _small_net(edge_blocks=1, edge_proximity=6)
    lr = torch.rand(2, 3, 12, 14)
    meta = (torch.rand(2, 1, 48, 56) > 0.8).float()
    trunk = TinySRNet(TinyConfig(channels=8, blocks=2)).eval()
    trunk.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("edge_")})
    with torch.no_grad():
        torch.testing.assert_close(net(lr, meta), trunk(lr, meta), atol=0, rtol=0)  # zero tail
        net.edge_tail.weight.normal_(0, 0.1)
        net.edge_tail.bias.normal_(0, 0.1)
        present = torch.tensor([[1.0], [0.0]])
        mixed = net(lr, meta * present.view(2, 1, 1, 1), present)
        ref = trunk(lr, meta * present.view(2, 1, 1, 1), present)
    torch.testing.assert_close(mixed[1], ref[1], atol=0, rtol=0)  # no map: the trunk's output
    assert (mixed[0] - ref[0]).abs().max() > 1e-3
    assert [n for n, _ in net.named_parameters() if n.startswith("edge_")] and \
        len(net.trunk_parameters()) == len(list(trunk.parameters()))
    r = net.config.receptive_radius
    assert r == trunk.config.receptive_radius + 4 + 2  # branch head, one block (2 convs), tail; 6 HR px
    n = 2 * r + 9
    lr = torch.rand(1, 3, n, n, requires_grad=True)
    meta = torch.rand(1, 1, 4 * n, 4 * n, requires_grad=True)  # the proximity reaches furthest on the map
    out = net(lr, meta, torch.ones(1, 1), sigma=torch.zeros(1))
    c = n // 2
    out[0, :, 4 * c, 4 * c].sum().backward()
    reach = []
    for g in (lr.grad[0].abs().sum(0), meta.grad[0, 0].abs().reshape(n, 4, n, 4).sum((1, 3))):
        ys, xs = torch.nonzero(g, as_tuple=True)
        reach.append(max(int((ys - c).abs().max()), int((xs - c).abs().max())))
    # bounded; and tight up to the trunk's tail (not on the branch's path) and the proximity's 2 LR px
    assert max(reach) <= r and reach[0] >= r - 3


def test_edge_proximity_is_the_chessboard_distance():
    """Against scipy's chessboard distance transform: 1 - d / reach, 0 from ``reach`` pixels on."""
    from scipy.ndimage import distance_transform_cdt
    from metavsr.models.receivers.tiny.net import proximity
    e = (np.random.default_rng(4).random((2, 37, 41)) > 0.97).astype(np.float32)
    got = proximity(torch.from_numpy(e)[:, None], 5)[:, 0].numpy()
    for g, m in zip(got, e):
        d = distance_transform_cdt(m == 0, metric="chessboard")
        np.testing.assert_allclose(g, np.clip(1 - d / 5, 0, None), atol=1e-6)


@pytest.mark.parametrize("sigma", [0.0, 5.0, 15.0, 25.0])
def test_noise_level_matches_true_sigma(sigma):
    rng = np.random.default_rng(1)
    # a smooth ramp (the Laplacian-difference mask cancels it) plus white noise of known sigma
    yy, xx = np.mgrid[0:128, 0:160] / 400.0
    img = np.stack([0.3 + yy + xx] * 3, -1) + rng.standard_normal((128, 160, 1)) * sigma / 255
    est = float(noise_level(torch.from_numpy(img).float().permute(2, 0, 1)[None])[0]) * 255
    assert abs(est - sigma) <= 0.06 * sigma + 0.3


def test_tiled_equals_whole_frame_and_reports_progress():
    net = _small_net()
    rx = TinyReceiver(net)
    lr = torch.rand(2, 23, 31, 3)
    edges = (torch.rand(2, 92, 124, 1) > 0.9).float()
    calls = []
    tiled = rx.upscale(lr, {"edges": edges}, RunOptions(tile=36),
                       progress=lambda d, t, preview=None: calls.append((d, t, preview is not None)))
    whole = rx.upscale(lr, {"edges": edges})  # tile 0: the whole frame at once
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    assert calls[-1][:2] == (2 * 3 * 4, 2 * 3 * 4) and len(calls) == 24
    assert [c[2] for c in calls].count(True) == 2  # a preview when each frame is done
    assert isinstance(rx, Receiver)
    with pytest.raises(ReceiverInputError, match="edges: is 120x92 but the output is 124x92"):
        rx.upscale(lr, {"edges": edges[:, :, :-4]})
    with pytest.raises(ReceiverInputError, match="does not take depth metadata"):
        rx.upscale(lr, {"depth": edges})


def test_shipped_weights_size_and_record():
    assert os.path.getsize(DEFAULT_WEIGHTS) <= 20 * 1024 * 1024
    meta = read_metadata(DEFAULT_WEIGHTS)
    assert meta["config"]["scale"] == 4 and meta["training"]["iterations"] > 1000
    with open(os.path.splitext(DEFAULT_WEIGHTS)[0] + ".json") as f:
        assert json.load(f)["training"]["iterations"] == meta["training"]["iterations"]


def _received(hr, q, regime):
    lr = downscale(hr[None], 4, "bicubic")
    return channel_degrade(jpeg_decode(jpeg_encode(lr, q)), *REGIMES[regime], seed=0)


@pytest.fixture(scope="module")
def shipped():
    return load_embedded()


@pytest.mark.parametrize("regime", ["LN", "HN"])
def test_shipped_weights_beat_bicubic_and_use_edges(shipped, regime):
    hr = data.astronaut()[64:320, 128:384].astype(np.float32) / 255
    lr = _received(hr, 40, regime)
    bic = cv2.resize(lr[0], (256, 256), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    sr0 = shipped.upscale(torch.from_numpy(lr))[0].numpy()
    e = canny_for_density(hr[None], 0.04)[0]
    sr1 = shipped.upscale(torch.from_numpy(lr), {"edges": torch.from_numpy(e[..., None]).float()})[0].numpy()
    p_bic, p0, p1 = (peak_signal_noise_ratio(hr, x, data_range=1.0) for x in (bic, sr0, sr1))
    assert p0 > p_bic + 0.5
    assert p1 > p0 + 0.3


def test_training_samples_follow_the_sender():
    rng = np.random.default_rng(3)
    img = tdata.render_cartoon(np.random.default_rng(0), 128)
    seen_edges = seen_none = 0
    for _ in range(12):
        lr, e, hr = tdata.sample_pair(img, rng, crop=96)
        assert lr.shape == (24, 24, 3) and hr.shape == (96, 96, 3)
        assert lr.dtype == np.float32 and 0 <= lr.min() and lr.max() <= 1
        if e is None:
            seen_none += 1
        else:
            seen_edges += 1
            assert e.shape == (96, 96) and set(np.unique(e)) <= {0, 1}
    assert seen_edges and seen_none  # metadata dropout
    # mode 3 is what the main job sends: the sender's own rate control (thin, then 1/2 resolution)
    from metavsr.models.metadata import edge_rate
    from metavsr.models.metadata.canny import canny_edges
    hr = img.astype(np.float32) / 255
    sent = edge_rate.prepare(canny_edges(hr[None], 60, 150)[0], thinning=True, factor=2)
    np.testing.assert_array_equal(tdata.apply_edges(hr, (60, 150, 3)), edge_rate.upscale(sent, 2, hr.shape[:2]))
    assert {tdata.edge_params(np.random.default_rng(i))[2] for i in range(60)} == {0, 1, 2, 3}
    assert {tdata.edge_params(np.random.default_rng(i), (3,))[2] for i in range(20)} == {3}  # a fine-tune's
    # a fixed quality is the base layer's: same seed, same crop and noise, only the JPEG differs
    lr10, lr90, lr100 = (tdata.sample_pair(img, np.random.default_rng(5), crop=96, quality=(q, q))[0]
                         for q in (10, 90, 100))
    assert np.abs(lr10 - lr100).mean() > 2 * np.abs(lr90 - lr100).mean() > 0
    chans = {tdata.sample_channel(np.random.default_rng(i)) for i in range(200)}
    assert set(REGIMES.values()) <= chans


def test_evaluation_images_are_recognised_and_excluded():
    hashes = tdata.evaluation_hashes()
    for name in ("astronaut", "chelsea"):
        img = getattr(data, name)()
        h = tdata._ahash(np.ascontiguousarray(cv2.resize(img, (200, 150))))
        assert min(int((h != e).sum()) for e in hashes) <= 6
    other = tdata.render_text(np.random.default_rng(0), 128, tdata._fonts())
    assert min(int((tdata._ahash(other) != e).sum()) for e in hashes) > 6


def test_loader_node_runs_through_super_resolve():
    from metavsr.nodes.receiver import MetaVSRSuperResolve
    from metavsr.nodes.receiver_tiny import MetaVSRLoadEmbeddedReceiver
    from metavsr.nodes._check import MetaVSRInputError
    (model,) = MetaVSRLoadEmbeddedReceiver().load("tiny_sr_x4.safetensors", "cpu", 64)
    assert model.options.tile == 64 * 4  # the loader's LR tile, in output pixels
    lr = torch.rand(1, 20, 24, 3)
    edges = (torch.rand(1, 80, 96) > 0.9).float()
    (with_e,) = MetaVSRSuperResolve().run(model, lr, True, edges=edges)
    (without,) = MetaVSRSuperResolve().run(model, lr, False, edges=edges)
    direct = model.upscale(lr)
    assert with_e.shape == (1, 80, 96, 3)
    torch.testing.assert_close(without, direct)
    assert not torch.allclose(with_e, without)
    with pytest.raises(MetaVSRInputError, match="weights"):
        MetaVSRLoadEmbeddedReceiver().load("nope.safetensors", "cpu", 64)
    with pytest.raises(MetaVSRInputError, match="tile_size"):
        MetaVSRLoadEmbeddedReceiver().load("tiny_sr_x4.safetensors", "cpu", 5)
