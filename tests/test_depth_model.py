"""Depth from a local model folder (models/metadata/depth_model.py, MetaVSR Depth Estimate): a tiny
random Depth-Anything built in the test, checked against transformers' own depth-estimation pipeline
on the same folder; the map goes through the depth metadata losslessly with its bits counted."""
import json
import os

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from metavsr.models import link  # noqa: E402
from metavsr.models.metadata import depth_model  # noqa: E402
from metavsr.models.metadata.depth import DepthCoding  # noqa: E402
from metavsr.models.orchestrator import mixed_set  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    torch.manual_seed(0)
    bb = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                      image_size=56, patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"],
                      reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 16, 16],
                              fusion_hidden_size=16, head_hidden_size=8, patch_size=14)
    path = str(tmp_path_factory.mktemp("models") / "depth" / "tiny-depth-anything")
    DepthAnythingForDepthEstimation(cfg).eval().save_pretrained(path)
    with open(os.path.join(path, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "DPTImageProcessor", "do_resize": True, "size": {"height": 56, "width": 56},
                   "keep_aspect_ratio": True, "ensure_multiple_of": 14, "do_rescale": True, "rescale_factor": 1 / 255,
                   "do_normalize": True, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
                   "do_pad": False, "resample": 3}, f)
    return path


def test_depth_agrees_with_the_transformers_pipeline(folder):
    from PIL import Image
    from transformers import pipeline
    frame = mixed_set._crop(mixed_set._photo("astronaut"), 112, 0.3, 0.5)
    ours = depth_model.estimate(depth_model.load(folder), frame[None])[0]
    assert ours.shape == (112, 112) and ours.min() == 0.0 and ours.max() == 1.0
    pipe = pipeline("depth-estimation", model=folder, device="cpu")
    ref = pipe(Image.fromarray((frame * 255).round().astype(np.uint8)))["predicted_depth"]
    ref = torch.nn.functional.interpolate(ref.reshape(1, 1, *ref.shape[-2:]).float(), size=(112, 112),
                                          mode="bicubic", align_corners=False)[0, 0].numpy()
    # same network, same orientation (near = large); resampling differs a little
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.98


def test_depth_map_travels_losslessly_with_real_bits(folder):
    clip = mixed_set.pan_clip(mixed_set._photo("rocket"), 64, 2, 3.0)
    d = depth_model.estimate(depth_model.load(folder), clip)
    for bits, coder in ((6, "png"), (4, "jbig2")):
        sent = link.send_metadata("depth", d, coding=DepthCoding(bits, coder))
        levels = 2 ** bits - 1
        np.testing.assert_array_equal(np.round(sent.received * levels), np.round(np.round(d * levels)))
        assert sent.bits == 8 * sum(len(p) for p in sent.stream.payload) > 0


def test_depth_node_and_bad_folders(folder, monkeypatch, tmp_path):
    from metavsr.nodes._check import MetaVSRInputError
    from metavsr.nodes.metadata import MetaVSRDepthEstimate
    monkeypatch.setenv("METAVSR_MODELS", os.path.dirname(os.path.dirname(folder)))
    assert "tiny-depth-anything" in MetaVSRDepthEstimate.INPUT_TYPES()["required"]["model"][0]
    img = torch.from_numpy(mixed_set.cartoon(64, 0)[None])
    (out,) = MetaVSRDepthEstimate().run("tiny-depth-anything", img, "cpu")
    assert out.shape == (1, 64, 64, 3) and torch.equal(out[..., 0], out[..., 2])
    with pytest.raises(MetaVSRInputError, match="models/depth"):
        MetaVSRDepthEstimate().run("nope", img, "cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(depth_model.DepthModelError, match="config.json"):
        depth_model.load(str(empty))
    (empty / "config.json").write_text("{\"model_type\": \"dpt\", \"hidden_size\": -1}")
    with pytest.raises(depth_model.DepthModelError, match="could not load"):
        depth_model.load(str(empty))
