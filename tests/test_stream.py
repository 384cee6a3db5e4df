"""Stream-DiffVSR receiver: parity with the authors' pipeline (recorded reference), streaming across
calls, the released VAE key layout, the flow helpers and the loader's errors."""
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

import stream_fixtures
from metavsr.models import sampling
from metavsr.models.receivers.base import RunOptions, run_stream
from metavsr.models.receivers.stream import ModelFolderError, StreamSettings, load
from metavsr.models.receivers.stream import flow as flows
from metavsr.models.receivers.stream.tae import TAEConfig, TemporalTAE

DATA = os.path.join(os.path.dirname(__file__), "data")
REF = os.path.join(DATA, "stream_diffvsr_reference.safetensors")


def _reference():
    with safe_open(REF, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _injected(lr, flows_lr):
    """An estimator that returns the recorded LR flow of the pair (found by the current frame)."""
    def estimate(prev, cur):
        i = next(i for i in range(1, len(lr)) if torch.equal(lr[i], cur))
        assert torch.equal(lr[i - 1], prev)
        return flows_lr[i - 1]
    return estimate


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return stream_fixtures.make_folder(str(tmp_path_factory.mktemp("stream") / "Stream-DiffVSR"), seed=0)


@pytest.fixture(scope="module")
def ref():
    return _reference()[0]


@pytest.fixture(scope="module")
def model(folder, ref):
    return load(folder, dtype="fp32", device="cpu", settings=StreamSettings(flow=_injected(ref["lr"], ref["flows_lr"])))


def test_fixture_is_the_recorded_one(model, ref):
    # the reference was made from make_folder(seed=0); a changed init would make the parity test moot
    got = [stream_fixtures.fingerprint(m) for m in (model.unet, model.controlnet, model.vae)]
    got.append(float(model.prompt_embeds.double().abs().sum()))
    assert np.allclose(got, ref["fingerprint"].tolist(), rtol=1e-9)


def test_matches_the_authors_pipeline(model, ref, folder):
    """Frames 0 (no ControlNet, no TPM) to 3 against StreamDiffVSRPipeline run beside the project on the
    same folder, flows and seed (tests/data/stream_diffvsr_README.md)."""
    hr, state = run_stream(model, ref["lr"], options=RunOptions(seed=1234))
    assert hr.shape == ref["hr"].shape
    err = (hr - ref["hr"]).abs().amax(dim=(1, 2, 3))
    assert float(err.max()) < 1e-4, err.tolist()
    # the temporal paths matter: without the recorded flows frames 1.. change, frame 0 does not
    other = load(folder, dtype="fp32", device="cpu", settings=StreamSettings(flow=flows.zero))
    hr0, _ = run_stream(other, ref["lr"], options=RunOptions(seed=1234))
    assert torch.equal(hr0[0], hr[0])
    assert float((hr0[1:] - hr[1:]).abs().max()) > 1e-2
    assert state["frame"] == 4 and state["stats"]["frames"] == 4


def test_initial_noise_is_the_authors_draw(ref):
    g = torch.Generator("cpu").manual_seed(1234)
    noise = torch.cat([torch.randn(1, 4, 8, 12, generator=g) for _ in range(4)])
    assert torch.equal(noise, ref["noise"])


def test_chunked_runs_with_the_state_carried_are_bit_identical(model, ref):
    lr = ref["lr"]
    whole, _ = run_stream(model, lr, options=RunOptions(seed=7))
    parts, state = [], None
    for a, b in ((0, 1), (1, 3), (3, 4)):
        if state is not None:
            state = pickle.loads(pickle.dumps(state))  # what a queue run hands the next one
        out, state = run_stream(model, lr[a:b], options=RunOptions(seed=7), state=state)
        parts.append(out)
    assert torch.equal(torch.cat(parts), whole)


def test_per_frame_mode_drops_only_the_temporal_guidance(model, ref):
    lr = ref["lr"]
    causal, _ = run_stream(model, lr, options=RunOptions(seed=7))
    per, _ = run_stream(model, lr, options=RunOptions(seed=7, temporal=False))
    assert torch.equal(per[0], causal[0]) and float((per[1:] - causal[1:]).abs().max()) > 1e-2
    # a frame no longer depends on the frames before it; its noise is still the t-th draw
    other = lr.clone()
    other[0] = torch.rand(other[0].shape, generator=torch.Generator().manual_seed(3))
    per_other, _ = run_stream(model, other, options=RunOptions(seed=7, temporal=False))
    assert torch.equal(per_other[1:], per[1:]) and not torch.equal(per_other[0], per[0])
    same, _ = run_stream(model, lr[:1].repeat(3, 1, 1, 1), options=RunOptions(seed=7, temporal=False))
    assert torch.equal(same[0], per[0]) and float((same[1] - same[0]).abs().max()) > 1e-3
    # a continued stream runs with the settings of the call that continues it
    _, state = run_stream(model, lr[:2], options=RunOptions(seed=7))
    rest, _ = run_stream(model, lr[2:], options=RunOptions(seed=7, temporal=False), state=state)
    assert torch.equal(rest, per[2:])


def test_a_stream_keeps_its_size(model, ref):
    _, state = run_stream(model, ref["lr"][:1])
    with pytest.raises(ValueError, match="keeps one size"):
        run_stream(model, torch.rand(1, 12, 8, 3), state=state)


def test_ddim_plan_from_the_folder_matches_diffusers():
    from diffusers import DDIMScheduler
    for cfg in (stream_fixtures.SCHEDULER, dict(beta_schedule="linear", prediction_type="epsilon", clip_sample=False,
                                                 timestep_spacing="leading", steps_offset=1)):
        plan = sampling.ddim_from_config(cfg, 4)
        sch = DDIMScheduler.from_config(cfg)
        sch.set_timesteps(4)
        assert plan.timesteps.tolist() == sch.timesteps.tolist()
        assert abs(plan.final_alpha - float(sch.final_alpha_cumprod)) < 1e-7
        g = torch.Generator().manual_seed(0)
        w = torch.randn(4, 4, generator=g) * 0.3

        def net(x, t):
            return torch.einsum("ij,bjhw->bihw", w.to(x.dtype), x) * (1 + t.to(x.dtype)[:, None, None, None] / 1000)
        x = torch.randn(1, 4, 5, 6, generator=g)
        ours = sampling.sample_ddim(plan.denoiser(net), x, plan.timesteps, plan.alphas_cumprod,
                                    final_alpha=plan.final_alpha, step_ratio=plan.step_ratio)
        y = x.clone()
        for t in sch.timesteps:
            y = sch.step(net(y, t.reshape(1)), t, y).prev_sample
        # diffusers keeps its schedule in float32, ours in float64
        assert float((ours - y).abs().max()) < 1e-4 * float(y.abs().max())
    with pytest.raises(ValueError, match="clip_sample"):
        sampling.ddim_from_config({}, 4)  # diffusers' default clips x0, which the plan does not do


@pytest.mark.parametrize("layout", ["x4", "default"])
def test_released_vae_key_layout_loads_strictly(layout):
    """Our module tree has the state-dict keys and shapes of the authors' TemporalAutoencoderTiny built
    at full size (recorded from their class on the meta device, tests/data/stream_diffvsr_README.md)."""
    with open(os.path.join(DATA, "stream_vae_keys.json")) as f:
        recorded = json.load(f)[layout]
    cfg = dict(encoder_block_out_channels=(64,) * (3 if layout == "x4" else 4))
    cfg["decoder_block_out_channels"] = cfg["encoder_block_out_channels"]
    cfg["num_encoder_blocks"] = (1, 3, 3) if layout == "x4" else (1, 3, 3, 3)
    cfg["num_decoder_blocks"] = (3, 3, 1) if layout == "x4" else (3, 3, 3, 1)
    with torch.device("meta"):
        ours = TemporalTAE(TAEConfig.from_dict(cfg))
    got = {k: list(v.shape) for k, v in ours.state_dict().items()}
    assert got == {k: list(v) for k, v in recorded.items()}
    assert list(got) == list(recorded)  # same order too


def test_warp_reproduces_the_authors_sampling_grid():
    """Zero flow is not the identity: the grid is normalised by W-1 and sampled with
    align_corners=False, i.e. x' = x W / (W - 1) - 0.5 with zero padding (checked by hand)."""
    w, h = 12, 5
    img = torch.arange(w, dtype=torch.float64).repeat(h, 1)[None, None]
    out = flows.warp(img, torch.zeros(1, h, w, 2, dtype=torch.float64))[0, 0, 2]
    xs = np.arange(w) * w / (w - 1) - 0.5
    x0 = np.floor(xs).astype(int)
    f = xs - x0
    row = np.arange(w, dtype=np.float64)

    def at(i):
        return np.where((i >= 0) & (i < w), row[np.clip(i, 0, w - 1)], 0.0)
    want = (1 - f) * at(x0) + f * at(x0 + 1)
    assert 2 * h / (h - 1) - 0.5 == 2.0  # row 2 samples row 2 exactly, so only x is interpolated
    assert np.allclose(out.numpy(), want, atol=1e-12)


def test_dis_flow_points_to_where_pixels_were():
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=g), size=(48, 64), mode="bicubic",
                                           align_corners=False).clamp(0, 1)
    prev = base[0].permute(1, 2, 0)
    cur = torch.roll(prev, shifts=3, dims=1)      # content moved 3 px right
    f = flows.dis(prev, cur)
    inner = f[8:-8, 8:-8]
    assert abs(float(inner[..., 0].median()) + 3) < 0.3 and abs(float(inner[..., 1].median())) < 0.3
    hr = flows.to_hr(f, 4)
    assert hr.shape == (1, 192, 256, 2) and abs(float(hr[0, 40:-40, 40:-40, 0].median()) + 12) < 1.5


def _copy(folder, tmp_path):
    dst = str(tmp_path / "m")
    shutil.copytree(folder, dst)
    return dst


def test_loader_errors_name_the_file(folder, tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load(str(tmp_path / "nothing"), dtype="fp32", device="cpu")
    m = _copy(folder, tmp_path)
    os.remove(os.path.join(m, "empty_prompt_embeds.safetensors"))
    with pytest.raises(ModelFolderError, match="empty_prompt_embeds.safetensors"):
        load(m, dtype="fp32", device="cpu")
    shutil.rmtree(m)
    m = _copy(folder, tmp_path)
    vae_cfg = os.path.join(m, "vae", "config.json")
    cfg = json.load(open(vae_cfg))
    cfg["num_decoder_blocks"] = [2, 2, 2]
    cfg["num_encoder_blocks"] = [2, 2, 2]
    json.dump(cfg, open(vae_cfg, "w"))
    with pytest.raises(ModelFolderError, match=r"vae.*(missing|unexpected)"):
        load(m, dtype="fp32", device="cpu")
    cfg["num_decoder_blocks"] = [1, 1, 1]
    json.dump(cfg, open(vae_cfg, "w"))
    with pytest.raises(ModelFolderError, match="encoder and 1|pairs every decoder block"):
        load(m, dtype="fp32", device="cpu")
    shutil.rmtree(m)
    m = _copy(folder, tmp_path)
    os.remove(os.path.join(m, "controlnet", "diffusion_pytorch_model.safetensors"))
    with pytest.raises(ModelFolderError, match="controlnet/diffusion_pytorch_model.safetensors"):
        load(m, dtype="fp32", device="cpu")
    shutil.rmtree(m)
    m = _copy(folder, tmp_path)
    with open(os.path.join(m, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(dict(stream_fixtures.SCHEDULER, clip_sample=True), f)
    with pytest.raises(ModelFolderError, match="scheduler_config.json.*clip_sample"):
        load(m, dtype="fp32", device="cpu")
    with pytest.raises(ModelFolderError, match="edge hint"):
        load(folder, dtype="fp32", device="cpu", settings=StreamSettings(edge_hint=True))


def test_tiles_cover_the_frame(folder):
    lr = torch.rand(2, 16, 24, 3, generator=torch.Generator().manual_seed(3))
    m = load(folder, dtype="fp32", device="cpu", settings=StreamSettings(flow=flows.zero))
    whole, _ = run_stream(m, lr, options=RunOptions(seed=1))
    one, _ = run_stream(m, lr, options=RunOptions(seed=1, tile=96, tile_overlap=16))  # a tile >= the frame
    assert torch.equal(whole, one)
    tiled, _ = run_stream(m, lr, options=RunOptions(seed=1, tile=48, tile_overlap=16))
    assert tiled.shape == whole.shape and bool(torch.isfinite(tiled).all())


# ------------------------------------------------------------------ nodes
@pytest.fixture()
def models_root(folder, tmp_path, monkeypatch):
    root = tmp_path / "models"
    (root / "diffusers").mkdir(parents=True)
    os.symlink(folder, root / "diffusers" / "Stream-tiny")
    monkeypatch.setenv("METAVSR_MODELS", str(root))
    return root


def test_stream_node_continues_across_queue_runs(models_root):
    from metavsr.nodes.receiver import MetaVSRSuperResolve
    from metavsr.nodes.receiver_stream import MetaVSRLoadStreamDiffVSR, MetaVSRStreamSuperResolve
    names = MetaVSRLoadStreamDiffVSR.INPUT_TYPES()["required"]["model"][0]
    assert "Stream-tiny" in names and "Stream-DiffVSR" in names
    (model,) = MetaVSRLoadStreamDiffVSR().load("Stream-tiny", dtype="fp32", flow="dis", seed=5)
    lr = torch.rand(5, 8, 12, 3, generator=torch.Generator().manual_seed(0))
    (whole,) = MetaVSRSuperResolve().run(model, lr, False)
    node = MetaVSRStreamSuperResolve()
    a, _, info = node.run(model, lr[:2], continue_stream=False, stream_id="clip")
    b, state, _ = node.run(model, lr[2:], continue_stream=True, stream_id="clip")
    assert torch.equal(torch.cat([a, b]), whole) and state["frame"] == 5 and "s/frame" in info
    # a new stream starts again from frame 0; a state socket overrides the stored one
    c, _, _ = node.run(model, lr[:2], continue_stream=False, stream_id="clip")
    assert torch.equal(c, a)
    d, _, info = node.run(model, lr[:2], continue_stream=False, stream_id="per", temporal_guidance=False)
    assert torch.equal(d[0], a[0]) and not torch.equal(d[1], a[1]) and "per frame" in info
    with pytest.raises(Exception, match="continue_stream off"):
        node.run(model, torch.rand(1, 12, 8, 3), continue_stream=True, stream_id="clip")


def test_loader_node_names_the_missing_folder(models_root):
    from metavsr.nodes._check import MetaVSRInputError
    from metavsr.nodes.receiver_stream import MetaVSRLoadStreamDiffVSR
    with pytest.raises(MetaVSRInputError, match="huggingface.co/Jamichsu/Stream-DiffVSR"):
        MetaVSRLoadStreamDiffVSR().load("Stream-DiffVSR")
    with pytest.raises(MetaVSRInputError, match="raft_weights"):
        MetaVSRLoadStreamDiffVSR().load("Stream-tiny", flow="raft")
