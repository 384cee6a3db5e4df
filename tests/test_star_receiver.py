"""STAR as a receiver: loading (checkpoint forms, strict checks, VAE, text), the call (windows, offload,
seed, colour fixes) on the tiny random models of tests/star_fixtures.py. The sampler and the U-Net are
checked against the authors' code in tests/test_star.py; here, what the receiver adds."""
import json
import math
import os
import zipfile

import pytest
import torch

import star_fixtures as SF
from metavsr.models import sampling as S
from metavsr.models.ops import colour
from metavsr.models.receivers import star
from metavsr.models.receivers.base import RunOptions
from metavsr.models.receivers.star.receiver import latent_rgb, pad_to, valid_latent


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return SF.make_files(str(tmp_path_factory.mktemp("star")))


@pytest.fixture(scope="module")
def receiver(files):
    unet, extra = star.load_unet(files["safetensors"], torch.float32)
    assert extra == []
    pos, neg = star.load_text(files["text"])
    fast = star.STARSettings(mode="normal", steps=3)   # 3 model steps: the tests look at plumbing
    return star.STAR(unet, star.load_vae(files["vae"], torch.float32), pos, neg, dtype=torch.float32, settings=fast)


def _lr(t=2, h=8, w=12, seed=0):
    return torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- loading
def test_both_checkpoint_forms_load_the_same_weights(files):
    a, _ = star.load_unet(files["safetensors"], torch.float32)
    b, _ = star.load_unet(files["pt"], torch.float32)
    ref, sa, sb = SF.build(0).state_dict(), a.state_dict(), b.state_dict()
    for k, v in ref.items():
        assert torch.equal(sa[k], v) and torch.equal(sb[k], v), k


def test_checkpoint_errors_name_the_file_and_the_keys(files, tmp_path):
    sd = SF.build(0).state_dict()
    cfg = json.load(open(files["pt"][:-3] + ".json"))

    def pt(name, state, with_cfg=True):
        p = tmp_path / name
        torch.save(state, p)
        if with_cfg:
            (tmp_path / (name[:-3] + ".json")).write_text(json.dumps(cfg))
        return str(p)
    missing = dict(sd)
    missing.pop("VideoControlNet.input_hint_block.weight")
    with pytest.raises(star.STARModelError, match="1 missing \\(VideoControlNet.input_hint_block.weight\\)"):
        star.load_unet(pt("missing.pt", missing))
    shaped = dict(sd, **{"out.2.weight": torch.zeros(4, 32, 1, 1)})
    with pytest.raises(star.STARModelError, match="out.2.weight: file \\[4, 32, 1, 1\\], expected \\[4, 32, 3, 3\\]"):
        star.load_unet(pt("shaped.pt", shaped))
    _, extra = star.load_unet(pt("extra.pt", dict(sd, **{"y_embedder.y_embedding": torch.zeros(3)})), torch.float32)
    assert extra == ["y_embedder.y_embedding"]
    # without its config a tiny checkpoint is measured against the released shapes, and says so
    with pytest.raises(star.STARModelError, match="wrong shape"):
        star.load_unet(pt("nocfg.pt", sd, with_cfg=False))
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(star.STARModelError, match="empty"):
        star.load_unet(str(empty))
    lfs = tmp_path / "lfs.pt"
    lfs.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 8000000000\n")
    with pytest.raises(star.STARModelError, match="Git LFS pointer"):
        star.load_unet(str(lfs))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(open(files["pt"], "rb").read()[:4096])
    with pytest.raises(star.STARModelError, match="cut.pt"):
        star.load_unet(str(cut))
    with pytest.raises(star.STARModelError, match="models/STAR/"):
        star.load_unet(str(tmp_path / "nothere.pt"))
    # a pickle that is not weights-only is refused without running it
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("evil/data.pkl", b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(star.STARModelError, match="weights-only"):
        star.load_unet(str(evil))


def test_vae_and_text_errors(files, tmp_path):
    with pytest.raises(star.STARModelError, match="does not exist"):
        star.load_vae(str(tmp_path / "none"))
    bad = tmp_path / "vae"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    with pytest.raises(star.STARModelError, match="not the SVD temporal decoder"):
        star.load_vae(str(bad))
    (bad / "config.json").write_text(open(os.path.join(files["vae"], "config.json")).read())
    with pytest.raises(star.STARModelError, match="holds no diffusion_pytorch_model"):
        star.load_vae(str(bad))
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(bad / "diffusion_pytorch_model.fp16.safetensors"))
    with pytest.raises(star.STARModelError, match="missing"):
        star.load_vae(str(bad))
    wrong = str(tmp_path / "text.safetensors")
    save_file({"positive": torch.zeros(1, 4, 768)}, wrong)
    with pytest.raises(star.STARModelError, match="expected \\[1, tokens"):
        star.load_text(wrong)


# --------------------------------------------------------------------------- the call
def test_upscale_shape_range_and_seed(receiver):
    lr = _lr()
    a = receiver.upscale(lr, options=RunOptions(seed=3))
    assert a.shape == (2, 32, 48, 3) and a.dtype == torch.float32 and 0 <= float(a.min()) <= float(a.max()) <= 1
    assert torch.equal(receiver.upscale(lr, options=RunOptions(seed=3)), a)
    assert not torch.equal(receiver.upscale(lr, options=RunOptions(seed=4)), a)


def test_upscale_is_encode_sdedit_sample_decode(receiver):
    """With one window and no colour fix the call is exactly: bilinear x4 -> VAE sample -> SDEdit at
    t = noise_level - 1 -> dpmpp_2m_sde with CFG -> VAE decode (the draws in that order)."""
    r = receiver.configured(colour_fix="none")
    lr = _lr(t=2, h=8, w=16)
    got = r.upscale(lr, options=RunOptions(seed=5))
    g = torch.Generator().manual_seed(5)
    vae, sf = r.vae, r.vae.config.scaling_factor
    up = torch.nn.functional.interpolate(lr.permute(0, 3, 1, 2), scale_factor=4, mode="bilinear") * 2 - 1
    zs = []
    for i in range(2):
        d = vae.encode(up[i:i + 1]).latent_dist
        zs.append((d.mean + d.std * torch.randn(d.mean.shape, generator=g)) * sf)
    z = torch.cat(zs).permute(1, 0, 2, 3)[None]                         # [1,4,2,4,8]
    abar = S.logsnr_cosine_interp()
    pad = lambda x: torch.nn.functional.pad(x.flatten(1, 2), (0, 0, 0, 6), mode="replicate").view(1, 4, 2, 10, 8)  # noqa: E731

    def v(x, t):
        def net(text):
            return r.unet(pad(x), t, text, pad(z))[..., :4, :8]
        return S.cfg(lambda *_: net(r.positive), lambda *_: net(r.negative), 7.5, 0.2)(x, t)
    noise0 = torch.randn(z.shape, generator=g)
    x = S.add_noise(z, noise0, 899, abar) * math.sqrt(1 - float(abar[899]))
    with torch.no_grad():
        z0 = S.sample_dpmpp_2m_sde(S.v_prediction(v, abar, round_t=True), x, S.star_timesteps(3, 899, 0, "normal"),
                                   abar, generator=g)
        want = ((vae.decode(z0[0].permute(1, 0, 2, 3) / sf, num_frames=2).sample + 1) / 2).clamp(0, 1)
    assert float((got - want.permute(0, 2, 3, 1)).abs().max()) < 1e-5


def test_windows_cover_the_clip_and_offload_changes_nothing(receiver):
    lr = _lr(t=3, h=8, w=24)
    whole = receiver.upscale(lr)
    one_window = receiver.configured(chunk=8, chunk_overlap=4, tile=512).upscale(lr)          # windows larger than the clip
    assert torch.equal(one_window, whole)
    windowed = receiver.configured(chunk=2, chunk_overlap=1, tile=64, tile_overlap=32).upscale(lr)
    assert windowed.shape == whole.shape and torch.isfinite(windowed).all()
    assert torch.equal(receiver.configured(vae_tile=512).upscale(lr), whole)      # one VAE tile: no change
    wide = _lr(t=2, h=8, w=48)
    tiled = receiver.configured(vae_tile=128, vae_tile_overlap=64)
    assert len(tiled._vae_tiles(32, 192, 1)[0]) > 1 and len(tiled._vae_tiles(4, 24, 8)[0]) > 1
    out = tiled.upscale(wide)
    assert out.shape == (2, 32, 192, 3) and torch.isfinite(out).all()
    for mode in ("model", "sequential"):
        other = star.STAR(receiver.unet, receiver.vae, receiver.positive, receiver.negative, dtype=torch.float32,
                          offload=mode, settings=receiver.settings)
        assert torch.equal(other.upscale(lr), whole)
    star.STAR(receiver.unet, receiver.vae, receiver.positive, receiver.negative, dtype=torch.float32,
              settings=receiver.settings)          # back to offload none for the other tests


def test_progress_counts_and_previews(receiver):
    seen = []
    receiver.upscale(_lr(t=4), progress=lambda d, n, p=None: seen.append((d, n, None if p is None else tuple(p.shape))))
    n = seen[-1][1]
    assert n == 4 + receiver.steps_for() + 2 and seen[-1][0] == n
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert any(p == (4, 6, 3) for _, _, p in seen)        # a latent preview per step (first frame)
    assert seen[-1][2] == (32, 48, 3)                      # the last decoded frame


def test_settings_are_checked():
    for kw, msg in ((dict(mode="slow"), "mode"), (dict(colour_fix="x"), "colour_fix"), (dict(steps=0), "steps"),
                    (dict(chunk=8, chunk_overlap=8), "chunk_overlap"), (dict(tile=32), "tile"),
                    (dict(rescale=2.0), "rescale"), (dict(noise_level=1), "noise_level"),
                    (dict(vae_tile=64), "vae_tile")):
        with pytest.raises(star.STARInputError, match=f"^{msg}"):
            star.STARSettings(**kw)


def test_latent_padding_rule():
    for h in range(1, 40):
        for w in (1, 7, 8, 9, 30):
            hh, ww = valid_latent(h, w)
            assert hh >= h and ww >= w and star.latent_size_ok(hh, ww) and hh - h < 8 and ww - w < 8
    x, off = pad_to(torch.zeros(1, 3, 5, 6), 8, 8, centre=True, value=1.0)
    assert x.shape == (1, 3, 8, 8) and off == (1, 1) and float(x[0, 0, 0, 0]) == 1.0
    assert latent_rgb(torch.zeros(4, 2, 3)).shape == (2, 3, 3)


def test_canvas_input_is_centred_on_white(receiver):
    lr = _lr(t=1, h=10, w=14)
    up, (left, top) = receiver.configured(canvas=True)._input(lr)
    assert up.shape == (1, 3, 720, 1280) and (left, top) == ((1280 - 56) // 2, (720 - 40) // 2)
    assert float(up[0, :, 0, 0].min()) == 1.0 and float(up[0, :, top + 20, left + 28].max()) < 1.0
    plain, off = receiver._input(lr)
    assert plain.shape == (1, 3, 40, 56) and off == (0, 0)


# --------------------------------------------------------------------------- colour fixes
def test_adain_takes_the_lr_statistics():
    g = torch.Generator().manual_seed(0)
    out = torch.rand(2, 3, 16, 16, generator=g) * 0.5
    lr = torch.rand(2, 3, 4, 4, generator=g) * 0.3 + 0.4
    fixed = colour.adain(out, lr)
    assert torch.allclose(fixed.mean(dim=(2, 3)), lr.mean(dim=(2, 3)), atol=1e-5)
    # sqrt(var + 1e-5) as StableSR: within 0.5 % for these variances (~7e-3)
    assert torch.allclose(fixed.flatten(2).std(dim=2), lr.flatten(2).std(dim=2), rtol=5e-3)


def test_wavelet_keeps_the_output_detail_and_the_lr_colour():
    g = torch.Generator().manual_seed(1)
    out = torch.rand(1, 3, 64, 64, generator=g) * 0.2 + 0.1
    lr = torch.full((1, 3, 16, 16), 0.6)
    fixed = colour.wavelet(out, lr)
    hi_out, _ = colour.wavelet_split(out)
    hi_fix, lo_fix = colour.wavelet_split(fixed)
    assert abs(float(fixed.mean()) - 0.6) < 0.01            # the LR's (flat) colour
    assert torch.allclose(hi_fix, hi_out, atol=2e-2)          # and the output's detail
    assert float(hi_out.abs().mean()) > 0.03


# --------------------------------------------------------------------------- nodes
@pytest.fixture
def models_root(tmp_path, monkeypatch):
    SF.make_files(str(tmp_path), star_dir="star")       # outside ComfyUI: $METAVSR_MODELS/<kind>
    monkeypatch.setenv("METAVSR_MODELS", str(tmp_path))
    return tmp_path


def test_nodes_load_prompt_and_super_resolve(models_root):
    from metavsr.nodes._check import MetaVSRInputError
    from metavsr.nodes.receiver import MetaVSRSuperResolve
    from metavsr.nodes.receiver_star import MetaVSRLoadSTAR, MetaVSRSTARPrompt
    req = MetaVSRLoadSTAR.INPUT_TYPES()["required"]
    assert {"star-tiny.safetensors", "star-tiny-pt.pt", "light_deg.pt"} <= set(req["checkpoint"][0])
    assert "prompts-tiny.safetensors" not in req["checkpoint"][0] and "svd-vae-tiny" in req["vae"][0]
    assert "prompts-tiny.safetensors" in MetaVSRSTARPrompt.INPUT_TYPES()["optional"]["embeddings"][0]
    (model,) = MetaVSRLoadSTAR().load("star-tiny.safetensors", "svd-vae-tiny", dtype="fp32", offload="none")
    lr = _lr()
    with pytest.raises(MetaVSRInputError, match="MetaVSR STAR Prompt"):
        MetaVSRSuperResolve().run(model, lr, False)
    g = torch.Generator().manual_seed(0)
    pos = [[torch.randn(1, 154, 1024, generator=g), {"pooled_output": None}]]
    neg = [[torch.randn(1, 77, 1024, generator=g), {}]]
    configured, info = MetaVSRSTARPrompt().run(model, mode="normal", steps=2, positive=pos, negative=neg)
    assert "2 steps from t=899" in info and configured.receiver.positive.shape == (1, 77, 1024)
    (out,) = MetaVSRSuperResolve().run(configured, lr, False)
    assert out.shape == (2, 32, 48, 3)
    # the same text from a file, and the errors that name the input
    configured2, _ = MetaVSRSTARPrompt().run(model, mode="normal", steps=2, embeddings="prompts-tiny.safetensors")
    assert configured2.receiver.positive.shape == (1, 8, 1024)
    with pytest.raises(MetaVSRInputError, match="^positive: connect CLIP Text Encode"):
        MetaVSRSTARPrompt().run(model)
    with pytest.raises(MetaVSRInputError, match="^negative: classifier-free guidance needs"):
        MetaVSRSTARPrompt().run(model, positive=pos)
    with pytest.raises(MetaVSRInputError, match="^positive: the text encoder gives 768-wide"):
        MetaVSRSTARPrompt().run(model, positive=[[torch.zeros(1, 77, 768), {}]], negative=neg)
    with pytest.raises(MetaVSRInputError, match="^checkpoint: no file 'light_deg.pt'.*SherryX/STAR"):
        MetaVSRLoadSTAR().load("light_deg.pt", "svd-vae-tiny")
    with pytest.raises(MetaVSRInputError, match="^vae: no folder 'stable-video-diffusion-vae'"):
        MetaVSRLoadSTAR().load("star-tiny.safetensors", "stable-video-diffusion-vae")


def test_converter_writes_a_loadable_safetensors(files, tmp_path):
    import runpy
    conv = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "tools", "convert_star.py"))["convert"]
    out = conv(files["pt"], str(tmp_path / "star.safetensors"), "fp32")
    a, _ = star.load_unet(out, torch.float32)
    ref = SF.build(0).state_dict()
    sa = a.state_dict()
    assert all(torch.equal(sa[k], v) for k, v in ref.items())
    half = conv(files["pt"], str(tmp_path / "star16.safetensors"), "fp16")
    assert os.path.getsize(half) < 0.6 * os.path.getsize(out)
    with pytest.raises(SystemExit, match="overwrite"):
        conv(out, out)


def test_fine_tuning_moves_only_the_controlnet_and_liem(tmp_path):
    """train/train_star.py on the tiny model (CPU, 2 steps): the v + b(t) DF loss trains what STAR
    trains, and the result loads as a checkpoint."""
    import importlib.util
    import numpy as np
    spec = importlib.util.spec_from_file_location("train_star", os.path.join(os.path.dirname(__file__), "..", "train",
                                                                              "train_star.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    data = tmp_path / "clips"
    data.mkdir()
    y, x = np.mgrid[0:72, 0:72]
    clip = np.stack([np.stack([128 + 100 * np.sin(x / 5 + i + c) * np.cos(y / 7) for c in range(3)], -1)
                     for i in range(3)]).astype(np.uint8)
    np.save(data / "clip.npy", clip)
    out = str(tmp_path / "ft.safetensors")
    mod.main(["--tiny", "--data", str(data), "--out", out, "--steps", "2", "--frames", "2", "--crop", "64",
              "--lr", "1e-3", "--log-every", "1"])
    tuned, _ = star.load_unet(out, torch.float32)
    before = SF.build(0).state_dict()
    after = tuned.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("VideoControlNet.") or ".local" in k for k in moved)
    assert any(".local" in k and not k.startswith("VideoControlNet.") for k in moved)   # the U-Net's LIEM too
    names = set(before)
    assert len(mod.trainable(tuned)) == sum(1 for k in names if k.startswith("VideoControlNet.") or ".local" in k)


def test_step_loss_gradient_reaches_the_controlnet_through_the_df_term(files):
    import importlib.util
    import numpy as np
    spec = importlib.util.spec_from_file_location("train_star", os.path.join(os.path.dirname(__file__), "..", "train",
                                                                              "train_star.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model, vae = SF.build(0), SF.build_vae(0)
    for p in mod.trainable(model):
        p.requires_grad_(True)
    hr = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    abar = S.logsnr_cosine_interp()
    loss, parts = mod.step_loss(model, vae, hr, torch.zeros(1, 8, 1024), abar, np.random.default_rng(3),
                                torch.Generator().manual_seed(0), df_mode="radial", df_weight=1e3)
    # weight the DF term heavily and compare its gradient alone with the full loss's
    w = model.VideoControlNet.input_hint_block.weight
    g_all = torch.autograd.grad(loss, w, retain_graph=True)[0]
    assert parts["df"] > 0 and float(g_all.abs().sum()) > 0 and 0 <= parts["t"] < 1000
