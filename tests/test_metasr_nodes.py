"""The CogVideoX loader node and the generic Super-Resolve node on a tiny random MetaSR folder found
through the ``diffusers`` model folders (``$METAVSR_MODELS/diffusers`` outside ComfyUI)."""
import pytest
import torch

import cogvideox_fixtures as configs
from metavsr.nodes._check import MetaVSRInputError
from metavsr.nodes.receiver import MetaVSRSuperResolve
from metavsr.nodes.receiver_cogvideox import MetaVSRLoadCogVideoXSR


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    configs.tiny_folder(str(root / "diffusers" / "MetaSR-tiny"), "tiny_15", metadata_kinds=["edges"])
    configs.tiny_folder(str(root / "diffusers" / "DOVE-tiny"), "tiny_2b")
    (root / "diffusers" / "not-a-model").mkdir()
    return root


@pytest.fixture(autouse=True)
def env(models_root, monkeypatch):
    monkeypatch.setenv("METAVSR_MODELS", str(models_root))


def _load(name, **kw):
    args = dict(dtype="fp32", offload="none", tile_size=0, tile_overlap=0, chunk_frames=0, chunk_overlap=0,
                vae_tiling=False)
    args.update(kw)
    return MetaVSRLoadCogVideoXSR().load(name, **args)[0]


def test_lists_folders_and_runs_with_edges():
    names = MetaVSRLoadCogVideoXSR.INPUT_TYPES()["required"]["model"][0]
    assert {"MetaSR-tiny", "DOVE-tiny", "DOVE"} <= set(names) and "not-a-model" not in names
    model = _load("MetaSR-tiny")
    assert model.metadata_kinds == ("edges",) and model.scale == 4
    lr = torch.rand(2, 8, 12, 3)
    edges = (torch.rand(2, 32, 48) > 0.8).float()
    node = MetaVSRSuperResolve()
    (with_meta,) = node.run(model, lr, True, edges=edges)
    (without,) = node.run(model, lr, False, edges=edges)
    assert with_meta.shape == (2, 32, 48, 3) and (with_meta - without).abs().max() > 1e-4
    # the loader's settings are per node; the weights are shared
    other = _load("MetaSR-tiny", tile_size=32, tile_overlap=16)
    assert other.receiver is model.receiver and model.options.tile == 0 and other.options.tile == 32


def test_plain_model_refuses_metadata_and_override():
    model = _load("DOVE-tiny")
    assert model.metadata_kinds == ()
    lr = torch.rand(1, 8, 8, 3)
    with pytest.raises(MetaVSRInputError, match="does not take edges"):
        MetaVSRSuperResolve().run(model, lr, True, edges=torch.zeros(1, 32, 32))
    forced = _load("DOVE-tiny", metadata_kinds="edges+depth")
    assert forced.metadata_kinds == ("edges", "depth")


def test_loader_errors_name_the_fix():
    with pytest.raises(MetaVSRInputError, match="models/diffusers/DOVE/") as e:
        _load("DOVE")
    assert "transformer/config.json" in str(e.value)
    with pytest.raises(MetaVSRInputError, match="incomplete"):
        _load("not-a-model")
    with pytest.raises(MetaVSRInputError, match="tile_overlap"):
        _load("DOVE-tiny", tile_size=64, tile_overlap=64)
    with pytest.raises(MetaVSRInputError, match="chunk_overlap"):
        _load("DOVE-tiny", chunk_frames=9, chunk_overlap=9)
    with pytest.raises(MetaVSRInputError, match="timestep"):
        _load("DOVE-tiny", timestep=1000)
