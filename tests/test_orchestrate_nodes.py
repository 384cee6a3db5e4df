"""The orchestration nodes (nodes/orchestrate.py) and the gate input of MetaVSR Super-Resolve: what
they output on a small two-scene clip, that gated frames are received exactly as pixel-only, and
that bad inputs are named."""
import numpy as np
import pytest
import torch

from metavsr.models import link
from metavsr.models.metadata.canny import canny_edges
from metavsr.models.orchestrator import mixed_set
from metavsr.models.receivers.tiny.receiver import load_embedded
from metavsr.nodes._check import MetaVSRInputError
from metavsr.nodes.orchestrate import MetaVSRContentAnalysis, MetaVSROrchestrateMetadata, MetaVSRVerifyMetadata
from metavsr.nodes.receiver import MetaVSRSuperResolve
from metavsr.nodes.receiver_tiny import MetaVSRLoadEmbeddedReceiver


@pytest.fixture(scope="module")
def clip():
    """Two scenes of two frames: a text page, then a dark photo panning."""
    page = mixed_set.text_page(96, "DejaVuSans.ttf", 12, (20, 20, 20), (235, 235, 230), 0)
    pan = mixed_set.low_light(mixed_set.pan_clip(mixed_set._photo("astronaut"), 96, 2, 3.0))
    return np.concatenate([np.stack([page, page]), pan]).astype(np.float32)


@pytest.fixture(scope="module")
def sr_model():
    return MetaVSRLoadEmbeddedReceiver().load("tiny_sr_x4.safetensors", "cpu", 64)[0]


def test_content_analysis_node_finds_the_cut_and_labels(clip):
    out = MetaVSRContentAnalysis().run(torch.from_numpy(clip))
    table, bucket, text, edges, motion, flat, luma = out["result"]
    assert out["ui"]["text"] == [table]
    lines = table.splitlines()[2:]
    assert len(lines) == 2 and lines[0].split()[1] == "text" and lines[1].split()[1] == "low-light"
    assert lines[0].startswith("   0-1") and lines[1].startswith("   2-3")
    assert 0 < edges < 0.5 and 0 < luma < 1 and motion > 0
    with pytest.raises(MetaVSRInputError, match="face_cascade"):
        MetaVSRContentAnalysis().run(torch.from_numpy(clip), 0.5, "/no/such/cascade.xml")


def test_orchestrate_node_outputs_what_it_chose(clip, sr_model):
    node = MetaVSROrchestrateMetadata()
    out = node.run(sr_model, torch.from_numpy(clip), "HN", "lambda", 30.0, 100.0, "20, 70", "0.04", True, 30.0)
    lr, edges, gate, bits, table, plot = out["result"]
    assert lr.shape == (4, 24, 24, 3) and edges.shape == (4, 96, 96) and plot.shape[0] == 1
    rows = table.splitlines()[2:4]
    assert len(rows) == 2
    for row, frames in zip(rows, ((0, 1), (2, 3))):
        quality, option = row.split()[2].split("/")
        with_edges = option != "none"
        assert all(gate["present"][f] == with_edges for f in frames)
        assert bool(edges[list(frames)].sum() > 0) == with_edges
        # the received base layer is the link's for that quality
        q = int(quality[1:])
        ref = link.send_base(clip[frames[0]:frames[1] + 1], q, "HN").received
        np.testing.assert_allclose(lr[list(frames)].numpy(), ref, atol=1e-6)
    assert bits == sum(int(r.split()[3]) for r in rows)
    # a budget is met
    out2 = node.run(sr_model, torch.from_numpy(clip), "HN", "budget kbps", 0.0, 300.0, "20, 70", "0.04", True, 30.0)
    assert out2["result"][3] <= 300.0 * 1000 * 4 / 30.0
    with pytest.raises(MetaVSRInputError, match="budget_kbps: .*below the cheapest"):
        node.run(sr_model, torch.from_numpy(clip), "HN", "budget kbps", 0.0, 10.0, "20, 70", "0.04", True, 30.0)


@pytest.mark.parametrize("args, match", [
    (dict(qualities="ten"), "qualities"), (dict(qualities="0, 50"), "qualities"),
    (dict(edge_densities="0.9"), "edge_densities"), (dict(mode="best"), "mode")])
def test_orchestrate_node_names_bad_inputs(clip, sr_model, args, match):
    kw = dict(regime="HN", mode="lambda", lambda_=30.0, budget_kbps=100.0, qualities="20, 70",
              edge_densities="0.04", sharp_edges=False, fps=30.0)
    kw.update(args)
    with pytest.raises(MetaVSRInputError, match=match):
        MetaVSROrchestrateMetadata().run(sr_model, torch.from_numpy(clip), **kw)
    with pytest.raises(MetaVSRInputError, match="multiple of 4"):
        MetaVSROrchestrateMetadata().run(sr_model, torch.from_numpy(clip[:, :94]), **{**kw, **dict(mode="lambda")})


def test_verify_gate_and_super_resolve_run_rejected_frames_pixel_only(sr_model):
    hr = mixed_set.cartoon(128, 1)[None].repeat(2, 0)
    lr = link.send_base(hr, 80, "NN").received
    e = canny_edges(hr, 50, 120).astype(np.float32)
    e[1] = np.roll(e[1], 3, axis=1)                       # frame 1's map moved by 3 px
    gate, table = MetaVSRVerifyMetadata().run(torch.from_numpy(lr), torch.from_numpy(e), 1.5, 0.96)["result"]
    assert gate["present"].tolist() == [True, False] and "pixel-only" in table
    (sr,) = MetaVSRSuperResolve().run(sr_model, torch.from_numpy(lr), True, torch.from_numpy(e), None, gate)
    m = load_embedded()
    with_edges = link.receive(m, lr[:1], {"edges": e[:1]})
    pixel_only = link.receive(m, lr[1:])
    np.testing.assert_allclose(sr[0].numpy(), with_edges[0], atol=1e-6)
    np.testing.assert_allclose(sr[1].numpy(), pixel_only[0], atol=1e-6)
    # a sender's gate marks frames sent without edges: they stay pixel-only whatever the check says
    g2, _ = MetaVSRVerifyMetadata().run(torch.from_numpy(lr), torch.from_numpy(e), 1.5, 0.96,
                                        dict(present=np.array([False, True])))["result"]
    assert g2["present"].tolist() == [False, False]
    with pytest.raises(MetaVSRInputError, match="gate"):
        MetaVSRSuperResolve().run(sr_model, torch.from_numpy(lr), True, torch.from_numpy(e), None,
                                  dict(present=np.array([True])))
    with pytest.raises(MetaVSRInputError, match="edges"):
        MetaVSRVerifyMetadata().run(torch.from_numpy(lr), torch.from_numpy(e[:1]), 1.5, 0.96)


def test_verify_second_stage_runs_the_receiver(sr_model):
    hr = mixed_set.cartoon(128, 1)[None].repeat(2, 0)
    lr = link.send_base(hr, 80, "NN").received
    e = canny_edges(hr, 50, 120).astype(np.float32)
    one, _ = MetaVSRVerifyMetadata().run(torch.from_numpy(lr), torch.from_numpy(e), 1.5, 0.96)["result"]
    two, table = MetaVSRVerifyMetadata().run(torch.from_numpy(lr), torch.from_numpy(e), 1.5, 0.96, None, sr_model,
                                             1.05)["result"]
    m = load_embedded()
    from metavsr.models.orchestrator import gate as g
    ratio = g.inconsistency(lr, link.receive(m, lr, {"edges": e}), link.receive(m, lr))
    assert one["present"].all()
    assert two["present"].tolist() == (ratio <= 1.05).tolist() and "fit" in table
    # a strict limit drops every map
    strict, _ = MetaVSRVerifyMetadata().run(torch.from_numpy(lr), torch.from_numpy(e), 1.5, 0.96, None, sr_model,
                                            1.0)["result"]
    assert strict["present"].tolist() == (ratio <= 1.0).tolist()


def test_orchestrated_gate_carries_a_signature_the_verify_node_uses(clip, sr_model):
    """On a clean channel the sender's signature decides; a map moved on the way is refused; the
    signature's bytes are in the bits; on the HN channel the LR is altered, the maps' CRCs decide:
    the true maps pass, a moved one does not."""
    out = MetaVSROrchestrateMetadata().run(sr_model, torch.from_numpy(clip), "NN", "lambda", 0.0, 100.0,
                                           "70", "0.04", False, 30.0)
    lr, edges, gate, bits, table, _ = out["result"]
    sig = gate["signature"]
    assert sig.codec == "gate-signature" and gate["present"].any()
    assert sig.nbytes == 32 * int(gate["present"].sum())
    rows = [r.split() for r in table.splitlines()[2:-2]]
    assert bits == sum(int(r[3]) for r in rows)
    g, vt = MetaVSRVerifyMetadata().run(lr, edges, 1.5, 0.96, gate)["result"]
    assert g["present"].tolist() == gate["present"].tolist() and "signature's deviation" in vt
    assert "alt." not in "\n".join(vt.splitlines()[1:5])
    # the signature is conclusive: with it the second stage does not run (no fit column)
    g1, t1 = MetaVSRVerifyMetadata().run(lr, edges, 1.5, 0.96, gate, sr_model, 1.0)["result"]
    assert g1["present"].tolist() == gate["present"].tolist() and "fit" not in t1.splitlines()[0]
    moved = edges.clone()
    f = int(np.flatnonzero(gate["present"])[0])
    moved[f] = torch.roll(moved[f], 2, dims=1)
    g2, t2 = MetaVSRVerifyMetadata().run(lr, moved, 1.5, 0.96, gate)["result"]
    assert not g2["present"][f] and "  map  " in t2.splitlines()[1 + f]
    hn = MetaVSROrchestrateMetadata().run(sr_model, torch.from_numpy(clip), "HN", "lambda", 0.0, 100.0,
                                          "70", "0.04", False, 30.0)["result"]
    g3, t3 = MetaVSRVerifyMetadata().run(hn[0], hn[1], 1.5, 0.96, hn[2])["result"]
    assert all("  alt.  " in row for row in t3.splitlines()[1:5] if not row.endswith("  map"))
    assert g3["present"].tolist() == hn[2]["present"].tolist()      # every true map kept
    hn_moved = hn[1].clone()
    f = int(np.flatnonzero(hn[2]["present"])[0])
    hn_moved[f] = torch.roll(hn_moved[f], 2, dims=1)
    g4, _ = MetaVSRVerifyMetadata().run(hn[0], hn_moved, 1.5, 0.96, hn[2])["result"]
    assert not g4["present"][f] and g4["present"].sum() == hn[2]["present"].sum() - 1
    with pytest.raises(MetaVSRInputError, match="signature covers"):
        MetaVSRVerifyMetadata().run(lr[:2], edges[:2], 1.5, 0.96, dict(gate, present=gate["present"][:2]))
