"""The receiver platform: per-call options, the one input check, streaming across calls, determinism
and thread safety.

References: a toy causal receiver whose output is known in closed form (a running mean of the LR
frames, upscaled by pixel repetition, plus seeded noise drawn from a generator kept in the state),
and one uninterrupted run of the same receiver.
"""
import pickle
import threading

import pytest
import torch

from metavsr.models.receivers.base import (Configured, Receiver, ReceiverInputError, RunOptions, Streaming,
                                           StreamingReceiver, check_inputs, run_stream)


class ToyStream(Streaming):
    """Causal x2 receiver: hr_t = repeat2(mean(lr_0..lr_t)) + 0.01 * noise_t (noise seeded by
    options.seed, drawn in frame order); an edge map, when sent, is added at 0.1."""
    name, scale, metadata_kinds = "toy stream", 2, ("edges",)

    def start(self, options):
        g = torch.Generator().manual_seed(options.seed)
        return {"t": 0, "sum": None, "rng": g.get_state()}

    def push(self, state, lr_t, metadata_t):
        g = torch.Generator()
        g.set_state(state["rng"])
        total = lr_t.clone() if state["sum"] is None else state["sum"] + lr_t
        mean = total / (state["t"] + 1)
        hr = mean.repeat_interleave(2, 0).repeat_interleave(2, 1)
        hr = hr + 0.01 * torch.randn(hr.shape, generator=g)
        if "edges" in metadata_t:
            hr = hr + 0.1 * metadata_t["edges"]
        return hr.clamp(0, 1), {"t": state["t"] + 1, "sum": total, "rng": g.get_state()}


def _clip(t=7, h=5, w=6, seed=0):
    return torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(seed))


def test_streaming_in_chunks_equals_one_run():
    rx = ToyStream()
    assert isinstance(rx, StreamingReceiver) and isinstance(rx, Receiver)
    lr = _clip()
    edges = (torch.rand(7, 10, 12, 1, generator=torch.Generator().manual_seed(1)) > 0.8).float()
    opts = RunOptions(seed=5)
    whole, _ = run_stream(rx, lr, {"edges": edges}, opts)
    assert torch.equal(whole, rx.upscale(lr, {"edges": edges}, opts))
    # three calls, the state handed back in each time (and through pickle, as a saved session would)
    parts, state = [], None
    for a, b in ((0, 2), (2, 3), (3, 7)):
        hr, state = run_stream(rx, lr[a:b], {"edges": edges[a:b]}, opts, state)
        state = pickle.loads(pickle.dumps(state))
        parts.append(hr)
    assert torch.equal(torch.cat(parts), whole)
    # closed form for frame 3 without noise: the mean of frames 0..3
    mean3 = lr[:4].mean(0).repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert (whole[3] - (mean3 + 0.1 * edges[3])).abs().max() < 0.06


def test_a_state_handed_in_is_not_changed():
    rx, lr = ToyStream(), _clip()
    _, state = run_stream(rx, lr[:3])
    snapshot = pickle.dumps(state)
    a, _ = run_stream(rx, lr[3:], state=state)
    b, _ = run_stream(rx, lr[3:], state=state)  # the same state again: the same frames
    assert pickle.dumps(state) == snapshot and torch.equal(a, b)


def test_one_place_checks_inputs_and_kinds():
    rx = ToyStream()
    lr = _clip(2)
    with pytest.raises(ReceiverInputError, match="does not take depth metadata"):
        check_inputs(rx, lr, {"depth": torch.zeros(2, 10, 12, 1)})
    with pytest.raises(ReceiverInputError, match="edges: is 11x10 but the output is 12x10"):
        check_inputs(rx, lr, {"edges": torch.zeros(2, 10, 11, 1)})
    with pytest.raises(ReceiverInputError, match="edges: has 3 frames but lr has 2"):
        check_inputs(rx, lr, {"edges": torch.zeros(3, 10, 12)})
    with pytest.raises(ReceiverInputError, match="NaN"):
        check_inputs(rx, lr * float("nan"), None)
    frames, maps = check_inputs(rx, lr, {"edges": torch.ones(1, 10, 12)})  # one map for all frames
    assert maps["edges"].shape == (2, 10, 12, 1)


def test_run_options_are_frozen_and_validated():
    o = RunOptions(tile=256, tile_overlap=32)
    with pytest.raises(Exception):
        o.tile = 0  # frozen
    assert o.replace(seed=3).seed == 3 and o.seed == 0
    for bad, match in ((dict(tile=-1), "tile: must be a whole number"), (dict(tile=64, tile_overlap=64), "tile_overlap"),
                       (dict(chunk=9, chunk_overlap=9), "chunk_overlap"), (dict(steps=0), "steps"),
                       (dict(guidance=float("nan")), "guidance"), (dict(seed=1.5), "seed")):
        with pytest.raises(ReceiverInputError, match=match):
            RunOptions(**bad)


def test_configured_options_belong_to_the_pair():
    rx = ToyStream()
    a, b = Configured(rx, RunOptions(seed=1)), Configured(rx, RunOptions(seed=2))
    lr = _clip(3)
    assert a.receiver is b.receiver
    assert not torch.equal(a.upscale(lr), b.upscale(lr))
    assert torch.equal(a.upscale(lr), a.upscale(lr)) and torch.equal(a.upscale(lr, seed=2), b.upscale(lr))


def _threads(fn, n=2):
    out, errors = [None] * n, []

    def work(i):
        try:
            out[i] = fn()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    return out


def test_same_options_same_frames_also_from_two_threads():
    """The shipped embedded receiver and a tiny CogVideoX pipeline: identical output for identical
    options, sequentially and from two threads at once on the same model object."""
    from metavsr.models.receivers.tiny.receiver import load_embedded
    tiny = load_embedded()
    lr = _clip(2, 20, 24)
    edges = (torch.rand(2, 80, 96, 1, generator=torch.Generator().manual_seed(2)) > 0.9).float()
    opts = RunOptions(tile=48)
    ref = tiny.upscale(lr, {"edges": edges}, opts)
    assert torch.equal(tiny.upscale(lr, {"edges": edges}, opts), ref)
    for out in _threads(lambda: tiny.upscale(lr, {"edges": edges}, opts)):
        assert torch.equal(out, ref)


def test_cogvideox_same_options_from_two_threads(tmp_path):
    import cogvideox_fixtures as configs
    from metavsr.models.receivers.cogvideox import load
    from metavsr.models.receivers.cogvideox.pipeline import DEFAULT_OPTIONS
    pipe = load(configs.tiny_folder(str(tmp_path / "m"), "tiny_15", metadata_kinds=["edges"]), dtype="fp32",
                device="cpu")
    lr = _clip(2, 8, 8)
    edges = torch.rand(2, 32, 32, 1, generator=torch.Generator().manual_seed(3))
    opts = DEFAULT_OPTIONS.replace(vae_tiling=False, seed=7)
    ref = pipe.upscale(lr, {"edges": edges}, opts)
    assert torch.equal(pipe.upscale(lr, {"edges": edges}, opts), ref)
    for out in _threads(lambda: pipe.upscale(lr, {"edges": edges}, opts)):
        assert torch.equal(out, ref)
    # a different seed draws a different VAE posterior sample: the options really reach the run
    assert not torch.equal(pipe.upscale(lr, {"edges": edges}, opts.replace(seed=8)), ref)
