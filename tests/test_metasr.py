"""CogVideoX one-step SR with metadata tokens (models/receivers/cogvideox), on tiny random configs on the CPU.

References: DOVE's own inference code (recorded output, tests/data/metasr_README.md), diffusers'
``CogVideoXTransformer3DModel.forward`` (0 metadata), and an identity of softmax attention: if every
token (text and visual) appears exactly twice, attention is unchanged; so with the text tokens doubled
and a metadata latent equal to the video latent, the output equals the plain one iff the metadata
tokens carry the positions of the visual tokens they are aligned with.
"""
import copy
import os
import warnings

import numpy as np
import pytest
import torch

import cogvideox_fixtures as configs
from metavsr.models.ops import windows
from metavsr.models.receivers.cogvideox import MetaSRInputError, MetaSRModelError, load, tokens
from metavsr.models.receivers.base import Receiver
from metavsr.models.receivers.cogvideox.pipeline import DEFAULT_OPTIONS, vae_tile

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("tiny_15", "tiny_2b", "tiny_5b")
DOVE_PRESETS = PRESETS
OPTS = DEFAULT_OPTIONS.replace(vae_tiling=False)  # the tiny VAE's random GroupNorms dislike tiles


def run(pipe, x, maps=None, progress=None, **changes):
    """The list-form call with the test options (plus ``changes``)."""
    return pipe(x, maps, progress, OPTS.replace(**changes))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("metasr")
    return {p: configs.tiny_folder(str(root / p), p, seed=0) for p in PRESETS}


@pytest.fixture(scope="module")
def pipes(folders):
    out = {}
    for p, d in folders.items():
        out[p] = load(d, dtype="fp32", device="cpu")
    return out


def _video(t, h, w, seed=0):
    """Smooth random frames [T,H,W,3] in 0..1 (no external data needed)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(t, 3, h, w, generator=g)
    return torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False).permute(0, 2, 3, 1).contiguous()


def _latent(tf, seed=0):
    pt = tf.config.patch_size_t or 1
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 2 * pt, tf.config.in_channels, 8, 12, generator=g)


# ---- DOVE parity ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", DOVE_PRESETS)
def test_matches_dove_inference_code(pipes, preset):
    ref = np.load(os.path.join(HERE, "data", "metasr_dove_reference.npz"))
    pipe = pipes[preset]
    fp = ref[f"{preset}_fingerprint"]
    assert configs.fingerprint(pipe.transformer) == pytest.approx(fp[0], rel=1e-9), \
        "tiny weights changed (torch init?): re-record tests/data/metasr_dove_reference.npz"
    assert configs.fingerprint(pipe.vae) == pytest.approx(fp[1], rel=1e-9)
    frames = torch.from_numpy(ref[f"{preset}_input"]).float() / 255.0
    out = run(pipe, frames).numpy()
    want = ref[f"{preset}_output"]
    assert out.shape == want.shape
    assert np.abs(out - want).max() < 1e-4
    assert want.std() > 0.01  # the reference is not a flat image that anything would match


@pytest.mark.parametrize("preset", PRESETS)
def test_zero_metadata_is_the_plain_transformer(pipes, preset):
    tf = pipes[preset].transformer
    lat = _latent(tf)
    text = pipes[preset].prompt_embedding
    ts = torch.full((1,), 399)
    f, h, w = lat.shape[1], lat.shape[3], lat.shape[4]
    pos = tokens.Positions(tf, f, h, w, "cpu").window((0, f, 0, h, 0, w))
    with torch.no_grad():
        ours = tokens.forward(tf, lat, [], text, ts, pos)
        rope = pos if tf.config.use_rotary_positional_embeddings else None
        theirs = tf(hidden_states=lat, encoder_hidden_states=text, timestep=ts, image_rotary_emb=rope,
                    return_dict=False)[0]
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("preset", PRESETS)
def test_metadata_tokens_share_visual_positions(pipes, preset):
    tf = pipes[preset].transformer
    lat = _latent(tf)
    text = pipes[preset].prompt_embedding
    ts = torch.full((1,), 399)
    f, h, w = lat.shape[1], lat.shape[3], lat.shape[4]
    positions = tokens.Positions(tf, f, h, w, "cpu")
    pos = positions.window((0, f, 0, h, 0, w))
    text2 = torch.cat([text, text], 1)
    with torch.no_grad():
        plain = tokens.forward(tf, lat, [], text, ts, pos)
        dup = tokens.forward(tf, lat, [lat.clone()], text2, ts, pos)
        other = tokens.forward(tf, lat, [_latent(tf, seed=5)], text2, ts, pos)
        # control: the same duplicate tokens at other positions (half the grid away) are not invisible
        if isinstance(pos, tuple):
            half = pos[0].shape[0] // 2
            moved = _forward_custom_rope(tf, lat, text2, ts, tuple(torch.cat([p, p.roll(half, 0)]) for p in pos))
        else:
            moved = _forward_custom_abs(tf, lat, text2, ts, pos, pos.roll(pos.shape[0] // 2, 0))
    assert (dup - plain).abs().max() < 1e-4 * plain.abs().max()
    assert (other - plain).abs().max() > 1e-3
    assert (moved - plain).abs().max() > 1e-3


def _forward_custom_rope(tf, lat, text, ts, rope2):
    """Visual + duplicate tokens, the duplicates given the rotary frequencies in ``rope2[S:]``."""
    emb = tf.time_embedding(tf.time_proj(ts).to(lat.dtype), None)
    e = tf.patch_embed(text, lat)
    txt, vis = e[:, :text.shape[1]], e[:, text.shape[1]:]
    hidden = torch.cat([vis, vis], 1)
    for b in tf.transformer_blocks:
        hidden, txt = b(hidden_states=hidden, encoder_hidden_states=txt, temb=emb, image_rotary_emb=rope2)
    return _readout(tf, hidden[:, :vis.shape[1]], emb, lat)


def _forward_custom_abs(tf, lat, text, ts, pos_vis, pos_meta):
    emb = tf.time_embedding(tf.time_proj(ts).to(lat.dtype), None)
    pe = tf.patch_embed
    pe.use_positional_embeddings = False
    try:
        e = pe(text, lat)
    finally:
        pe.use_positional_embeddings = True
    txt, raw = e[:, :text.shape[1]], e[:, text.shape[1]:]
    hidden = torch.cat([raw + pos_vis.to(raw.dtype), raw + pos_meta.to(raw.dtype)], 1)
    for b in tf.transformer_blocks:
        hidden, txt = b(hidden_states=hidden, encoder_hidden_states=txt, temb=emb, image_rotary_emb=None)
    return _readout(tf, hidden[:, :raw.shape[1]], emb, lat)


def _readout(tf, hidden, emb, lat):
    b, f, c, h, w = lat.shape
    x = tf.proj_out(tf.norm_out(tf.norm_final(hidden), temb=emb))
    p, pt = tf.config.patch_size, tf.config.patch_size_t
    if pt is None:
        return x.reshape(b, f, h // p, w // p, -1, p, p).permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
    x = x.reshape(b, f // pt, h // p, w // p, -1, pt, p, p)
    return x.permute(0, 1, 5, 4, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(1, 2)


def test_metadata_changes_output_and_order_does_not_matter(pipes):
    pipe = pipes["tiny_15"]
    x = _video(2, 12, 16)
    edges = (_video(2, 48, 64, seed=1)[..., :1] > 0.5).float()
    depth = _video(2, 48, 64, seed=2)[..., :1]
    plain = run(pipe, x)
    with_edges = run(pipe, x, [edges])
    assert (with_edges - plain).abs().max() > 1e-3
    assert torch.equal(run(pipe, x, []), plain)
    # no type embedding: tokens of different maps are told apart by content only
    a, b = run(pipe, x, [edges, depth]), run(pipe, x, [depth, edges])
    assert (a - b).abs().max() < 1e-5
    assert (a - with_edges).abs().max() > 1e-4


# ---- shapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset,t", [("tiny_15", 1), ("tiny_15", 2), ("tiny_15", 9), ("tiny_15", 10),
                                      ("tiny_15", 17), ("tiny_2b", 1), ("tiny_2b", 10), ("tiny_5b", 2)])
def test_frame_counts_and_odd_sizes(pipes, preset, t):
    x = _video(t, 7, 9)
    out = run(pipes[preset], x, [torch.rand(1, 28, 36, 1)])
    assert out.shape == (t, 28, 36, 3) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_first_frames_do_not_depend_on_padding_length(pipes):
    """A 2-frame and a 9-frame call see the same padded 9-frame clip when the tail repeats."""
    x = _video(2, 8, 8)
    nine = torch.cat([x, x[-1:].expand(7, -1, -1, -1)])
    pipe = pipes["tiny_2b"]
    assert (run(pipe, x) - run(pipe, nine)[:2]).abs().max() < 1e-5


# ---- tiling / chunking --------------------------------------------------------------------------
def _variant(pipe, attn_scale):
    q = copy.copy(pipe)
    q.transformer = copy.deepcopy(pipe.transformer)
    for b in q.transformer.transformer_blocks:
        b.attn1.to_out[0].weight.data.mul_(attn_scale)
        b.attn1.to_out[0].bias.data.mul_(attn_scale)
    return q


def _denoise(q, lat, metas=(), progress=None, **changes):
    with torch.no_grad():
        return q.denoise(lat, list(metas), q.prompt_embedding, OPTS.replace(**changes), progress)


@pytest.mark.parametrize("preset", DOVE_PRESETS)
def test_windows_blend_exactly_when_tokens_are_independent(pipes, preset):
    """Without attention every token is computed alone, so any window layout must give the untiled
    result: the weights are a partition of unity and each window gets its global positions."""
    q = _variant(pipes[preset], 0.0)
    g = torch.Generator().manual_seed(3)
    lat = torch.randn(1, 6, 4, 8, 16, generator=g)  # 6 latent frames ~ 21 frames at 64x128
    meta = torch.randn(1, 6, 4, 8, 16, generator=g)
    ref = _denoise(q, lat, [meta], tile=0, tile_overlap=0, chunk=0, chunk_overlap=0)
    for tile, tov, chunk, cov in ((32, 16, 0, 0), (0, 0, 9, 4), (48, 16, 17, 8)):
        calls = []
        out = _denoise(q, lat, [meta], lambda d, t, *_: calls.append(d), tile=tile, tile_overlap=tov, chunk=chunk,
                       chunk_overlap=cov)
        assert len(calls) > 1, (tile, chunk)
        assert (out - ref).abs().max() < 1e-5, (tile, chunk)


@pytest.mark.parametrize("preset", DOVE_PRESETS)
def test_tiling_on_vs_off_within_tolerance(pipes, preset):
    """With (weakened) attention, windows see less context than the whole clip; the blended result
    stays close to the untiled one, end to end through the VAE."""
    q = _variant(pipes[preset], 0.1)
    x = _video(17, 8, 16)
    ref = run(q, x, tile=0, tile_overlap=0, chunk=0, chunk_overlap=0)
    tiled = OPTS.replace(tile=32, tile_overlap=16, chunk=17, chunk_overlap=8)
    assert q.count_windows(17, 8, 16, tiled) > 2
    diff = (q(x, options=tiled) - ref).abs()
    assert diff.max() < 0.05 and diff.mean() < 1e-3


def test_vae_tiling_runs_and_stays_close(pipes):
    """diffusers' blended VAE tiling (sizes fitted by ``vae_tile``); random GroupNorm statistics make
    tiles differ more than a trained VAE would, so only a loose bound is checked."""
    pipe = copy.copy(pipes["tiny_2b"])
    x = _video(9, 16, 24)
    ref = run(pipe, x)
    pipe.vae_tile = (32, 48)  # the VAE's own tile size (a property of the model), fitted per call
    out = run(pipe, x, vae_tiling=True)
    pipe.vae.disable_tiling()
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert (out - ref).abs().mean() < 0.1


def test_vae_tile_sizes_fit_diffusers_tiler():
    for size in range(64, 4097, 64):
        for tile, ov in ((240, 1 / 6), (360, 1 / 5), (48, 1 / 3)):
            t = vae_tile(size, tile, ov)
            if t >= size:
                continue
            stride = int(t * (1 - ov))
            assert stride % 8 == 0
            assert size - stride * ((size - 1) // stride) >= 32


def test_window_plan_covers_and_overlaps():
    for length, size, ov, unit in ((20, 6, 2, 2), (13, 4, 1, 1), (96, 90, 16, 2), (7, 7, 2, 1), (6, 4, 2, 2)):
        st = windows.starts(length, size, ov, unit)
        assert st[0] == 0 and st[-1] == max(length - size, 0)
        assert all(s % unit == 0 for s in st[:-1])
        cover = np.zeros(length)
        for s in st:
            cover[s:s + size] += 1
        assert cover.min() >= 1
        for a, b in zip(st, st[1:]):
            assert a + size - b >= ov  # neighbours share at least the requested overlap
    boxes, ovs = windows.plan(6, 20, 20, 4, 2, 8, 8, 4, unit_t=2, unit_hw=2)
    total = torch.zeros(6, 20, 20)
    for box in boxes:
        t0, t1, h0, h1, w0, w1 = box
        wt = windows.weight(box, (6, 20, 20), ovs)
        assert wt.min() > 0 and wt.max() <= 1
        total[t0:t1, h0:h1, w0:w1] += wt
    assert total.min() > 0
    r = windows.ramp(6, 2, False, False)
    assert torch.allclose(r, torch.tensor([1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3]))


# ---- memory modes, progress ---------------------------------------------------------------------
def test_offload_modes_and_progress(folders):
    x = _video(2, 8, 8)
    results = []
    for mode in ("none", "model", "sequential"):
        pipe = load(folders["tiny_15"], dtype="fp32", device="cpu", offload=mode)
        calls = []
        results.append(run(pipe, x, progress=lambda d, t, *_: calls.append((d, t)), tile=16, tile_overlap=8))
        total = calls[-1][1]
        assert total == 2 + pipe.count_windows(2, 8, 8, OPTS.replace(tile=16, tile_overlap=8)) and total > 3
        assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1][0] == total
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


def test_progress_exception_cancels(pipes):
    class Cancelled(Exception):
        pass

    def cancel(done, total, preview=None):
        raise Cancelled

    with pytest.raises(Cancelled):
        run(pipes["tiny_2b"], _video(1, 8, 8), progress=cancel)


# ---- loading ------------------------------------------------------------------------------------
def test_bad_folders_name_the_expected_files(tmp_path, folders):
    with pytest.raises(MetaSRModelError, match="transformer/config.json"):
        load(str(tmp_path / "nothing"))
    broken = tmp_path / "broken"
    (broken / "transformer").mkdir(parents=True)
    (broken / "transformer" / "config.json").write_text("{}")
    with pytest.raises(MetaSRModelError) as e:
        load(str(broken))
    msg = str(e.value)
    assert "transformer/diffusion_pytorch_model.safetensors" in msg and "vae/config.json" in msg
    assert "scheduler/scheduler_config.json" in msg
    with pytest.raises(MetaSRModelError, match="bf16, fp16, fp32"):
        load(folders["tiny_2b"], dtype="int8")
    with pytest.raises(MetaSRInputError, match="offload"):
        load(folders["tiny_2b"], device="cpu", offload="disk")


def test_prompt_embedding_sources(tmp_path, folders, pipes):
    import shutil
    d = tmp_path / "noemb"
    shutil.copytree(folders["tiny_2b"], d)
    os.remove(d / "prompt_embedding.safetensors")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pipe = load(str(d), dtype="fp32", device="cpu")
    assert any("zero prompt embedding" in str(x.message) for x in w)
    assert pipe.prompt_embedding.shape == (1, 226, 8) and not pipe.prompt_embedding.any()
    (d / "prompt_embeddings").mkdir()
    shutil.copy(os.path.join(folders["tiny_2b"], "prompt_embedding.safetensors"),
                d / "prompt_embeddings" / "e3b0c442.safetensors")
    pipe = load(str(d), dtype="fp32", device="cpu")
    assert torch.equal(pipe.prompt_embedding, pipes["tiny_2b"].prompt_embedding)


def test_bf16_runs(folders):
    pipe = load(folders["tiny_15"], dtype="bf16", device="cpu")
    out = run(pipe, _video(2, 8, 8))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


# ---- bad inputs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("frames,meta,match", [
    (torch.rand(8, 8, 3), None, r"\[T,H,W,3\]"),
    (torch.rand(1, 8, 8, 4), None, r"\[T,H,W,3\]"),
    (torch.zeros(0, 8, 8, 3), None, "empty"),
    (torch.full((1, 8, 8, 3), float("nan")), None, "NaN"),
    (torch.full((1, 8, 8, 3), 2.0), None, "0..1"),
    ([[0.5]], None, "tensor"),
    (torch.zeros(1, 1, 2049, 3), None, "8192 px"),
    (torch.rand(2, 8, 8, 3), torch.rand(2, 32, 32, 1), "list"),
    (torch.rand(2, 8, 8, 3), [torch.rand(2, 8, 8, 1)], "output is 32x32"),
    (torch.rand(2, 8, 8, 3), [torch.rand(3, 32, 32, 1)], "3 frames"),
    (torch.rand(2, 8, 8, 3), [torch.rand(2, 32, 32, 2)], r"\[T,32,32,1\|3\]"),
    (torch.rand(2, 8, 8, 3), [torch.rand(2, 32, 32, 1) * 3], "0..1"),
    (torch.rand(2, 8, 8, 3), [torch.rand(32, 32, 1)], r"metadata\[0\]: is 1x32 but the output is 32x32"),
])
def test_bad_inputs_rejected(pipes, frames, meta, match):
    from metavsr.models.receivers.base import ReceiverInputError  # MetaSRInputError is one too
    with pytest.raises(ReceiverInputError, match=match):
        run(pipes["tiny_2b"], frames, meta)


def test_receiver_interface(pipes):
    from metavsr.models.receivers.base import ReceiverInputError
    pipe = copy.copy(pipes["tiny_2b"])
    assert isinstance(pipe, Receiver) and pipe.scale == 4
    x = _video(1, 8, 8)
    edges = torch.rand(1, 32, 32, 1)
    with pytest.raises(ReceiverInputError, match="does not take edges metadata"):
        pipe.upscale(x, {"edges": edges}, OPTS)
    pipe.metadata_kinds = ("edges", "depth")
    assert torch.equal(pipe.upscale(x, {"edges": edges}, OPTS), run(pipe, x, [edges]))


def test_long_videos_run_in_cross_faded_segments(pipes):
    """Frames seen by one segment are that segment's own run; frames in an overlap are a convex
    mix of the two runs, weighted by linear ramps."""
    pipe = pipes["tiny_2b"]
    x = _video(20, 8, 8)
    calls = []
    out = run(pipe, x, progress=lambda d, t, *_: calls.append((d, t)), segment=9, segment_overlap=4)
    assert out.shape == (20, 32, 32, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1][0] == calls[-1][1]
    assert windows.starts(20, 9, 4) == [0, 4, 7, 11]
    a, b = run(pipe, x[0:9], segment=0), run(pipe, x[4:13], segment=0)
    assert (out[:4] - a[:4]).abs().max() < 1e-6  # frames 0-3: only the first segment
    wa = windows.ramp(9, 4, True, False)[4:7, None, None, None]  # frames 4-6: first and second segment
    wb = windows.ramp(9, 4, False, False)[:3, None, None, None]
    assert (out[4:7] - (a[4:7] * wa + b[:3] * wb) / (wa + wb)).abs().max() < 1e-5
    assert (a[4:7] - b[:3]).abs().max() > 1e-3  # the two runs differ, so the mix is tested
