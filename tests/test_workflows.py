"""Every shipped workflow matches the nodes' INPUT_TYPES, and every weight-free one runs.

The UI->API conversion is the harness's (``../shared/harness/ui_to_api.py``); the real ComfyUI
server and frontend are checked by ``../shared/harness/run_workflow.py`` outside the test-suite.
"""
import glob
import importlib.util
import json
import os

import pytest
import torch

import metavsr
from tools import comfy_core
from tools.wfrun import execute, object_info, validate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))
CLASSES = {**comfy_core.NODE_CLASS_MAPPINGS, **metavsr.NODE_CLASS_MAPPINGS}
UI_TO_API = os.path.join(ROOT, "..", "shared", "harness", "ui_to_api.py")


def _ui_to_api():
    if not os.path.exists(UI_TO_API):
        pytest.skip("../shared/harness/ui_to_api.py is not beside the checkout")
    spec = importlib.util.spec_from_file_location("ui_to_api", UI_TO_API)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _needs_weights(wf):
    return any(getattr(CLASSES.get(n["type"]), "NEEDS_WEIGHTS", False) for n in wf["nodes"])


def test_workflows_exist():
    names = {os.path.basename(p) for p in WORKFLOWS}
    assert "sender_toolkit.json" in names
    for p in WORKFLOWS:
        assert os.path.exists(p[:-5] + ".jpg"), f"{os.path.basename(p)} has no .jpg thumbnail"


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_matches_nodes(path):
    with open(path) as f:
        wf = json.load(f)
    assert validate(wf, CLASSES, comfy_core.FRONTEND_ONLY) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_runs(path, monkeypatch):
    with open(path) as f:
        wf = json.load(f)
    if _needs_weights(wf):
        pytest.skip("needs downloaded model weights")
    monkeypatch.setenv("METAVSR_INPUT_DIR", os.path.join(ROOT, "workflows"))  # the shipped clips
    prompt = _ui_to_api().convert(wf, object_info(CLASSES))
    comfy_core.LoadImage.test_image = comfy_core.sample_image((128, 128))
    results = execute(prompt, CLASSES)
    outputs = [nid for nid, node in prompt.items() if getattr(CLASSES[node["class_type"]], "OUTPUT_NODE", False)]
    assert outputs, "workflow has no output node"
    for nid in outputs:
        assert results[nid][1], f"output node {nid} produced nothing"


def _stream_vsr_results(wf, monkeypatch):
    monkeypatch.setenv("METAVSR_INPUT_DIR", os.path.join(ROOT, "workflows"))
    prompt = _ui_to_api().convert(wf, object_info(CLASSES))
    results = execute(prompt, CLASSES)
    by_title = {n.get("title"): str(n["id"]) for n in wf["nodes"]}
    causal = results[by_title["SR causal (temporal guidance)"]][0][0][0]
    per = results[by_title["SR per frame (no temporal guidance)"]][0][0][0]
    assert causal.shape == per.shape == (10, 192, 320, 3)
    assert torch.equal(causal[0], per[0]) and not torch.equal(causal[1:], per[1:])
    for label in ("causal", "per frame", "bicubic"):
        table = results[by_title[f"temporal metrics: {label}"]][0][3][0]
        assert table.startswith("10 frames") and "9-10" not in table and "8-9" in table
    for nid, node in prompt.items():
        if getattr(CLASSES[node["class_type"]], "OUTPUT_NODE", False):
            assert results[nid][1], f"output node {nid} produced nothing"
    return results, by_title


def test_stream_vsr_runs_with_the_embedded_streaming_receiver(monkeypatch):
    """stream_vsr.json as shipped: the embedded streaming model, no download; causal is steadier."""
    with open(os.path.join(ROOT, "workflows", "stream_vsr.json")) as f:
        wf = json.load(f)
    loader = next(n for n in wf["nodes"] if n["type"] == "MetaVSRLoadEmbeddedReceiver")
    assert loader["widgets_values"][0] == "tiny_stream_x4.safetensors"
    results, by_title = _stream_vsr_results(wf, monkeypatch)
    ewarp = {label: float(results[by_title[f"temporal metrics: {label}"]][0][2][0])
             for label in ("causal", "per frame")}
    assert ewarp["causal"] < ewarp["per frame"]


def test_stream_vsr_runs_with_stream_diffvsr_swapped_in(tmp_path, monkeypatch):
    """The README's swap: the loader replaced by MetaVSR Load Stream-DiffVSR (the tiny random folder
    of the tests under the released name) runs the same graph end to end."""
    import stream_fixtures
    stream_fixtures.make_folder(str(tmp_path / "diffusers" / "Stream-DiffVSR"), seed=0)
    monkeypatch.setenv("METAVSR_MODELS", str(tmp_path))
    with open(os.path.join(ROOT, "workflows", "stream_vsr.json")) as f:
        wf = json.load(f)
    loader = next(n for n in wf["nodes"] if n["type"] == "MetaVSRLoadEmbeddedReceiver")
    loader["type"] = "MetaVSRLoadStreamDiffVSR"
    loader["widgets_values"] = ["Stream-DiffVSR", "fp16", "dis", "none", 4, 0, 64, 0, "fixed", False, False]
    _stream_vsr_results(wf, monkeypatch)


def test_star_vsr_runs_with_tiny_star_files(tmp_path, monkeypatch):
    """star_vsr.json needs downloaded weights; its graph runs end to end with the tiny random STAR and
    SVD VAE of the tests under the released names (3 frames, one sampler step: the wiring, not the
    sampler, is under test here), the CLIP nodes being tools/comfy_core.py's stand-ins."""
    import shutil
    import star_fixtures
    files = star_fixtures.make_files(str(tmp_path), star_dir="star")
    shutil.copy(files["pt"], tmp_path / "star" / "light_deg.pt")
    shutil.copy(files["pt"][:-3] + ".json", tmp_path / "star" / "light_deg.json")
    os.symlink(files["vae"], tmp_path / "diffusers" / "stable-video-diffusion-vae")
    monkeypatch.setenv("METAVSR_MODELS", str(tmp_path))
    monkeypatch.setenv("METAVSR_INPUT_DIR", os.path.join(ROOT, "workflows"))
    with open(os.path.join(ROOT, "workflows", "star_vsr.json")) as f:
        wf = json.load(f)
    prompt = _ui_to_api().convert(wf, object_info(CLASSES))
    for node in prompt.values():
        if node["class_type"] == "MetaVSRLoadVideoFrames":
            node["inputs"]["frame_count"] = 3
        if node["class_type"] == "MetaVSRSTARPrompt":
            node["inputs"].update(mode="normal", steps=1)
    results = execute(prompt, CLASSES)
    by_title = {n.get("title"): str(n["id"]) for n in wf["nodes"]}
    sr = results[by_title["SR: STAR"]][0][0][0]
    assert sr.shape == (3, 192, 320, 3) and torch.isfinite(sr).all()
    assert "1 step from t=899" in results[by_title["STAR prompt and sampler"]][0][1][0]
    for nid, node in prompt.items():
        if getattr(CLASSES[node["class_type"]], "OUTPUT_NODE", False):
            assert results[nid][1], f"output node {nid} produced nothing"


def test_validator_catches_mistakes():
    """The checks above can fail: a wrong combo value, an out-of-range number and a type-mismatched
    link are all reported."""
    from tools.wfbuild import Workflow
    wf = Workflow(CLASSES)
    img = wf.node("LoadImage", image="example.png")
    jpg = wf.node("MetaVSRJPEG", images=img[0], quality=50)
    wf.node("PreviewImage", images=jpg[0])
    good = wf.to_json()
    assert validate(good, CLASSES, comfy_core.FRONTEND_ONLY) == []
    bad = json.loads(json.dumps(good))
    bad["nodes"][1]["widgets_values"] = [500, "4:1:1"]
    bad["links"][1][5] = "MASK"
    bad["nodes"][2]["inputs"][0]["link"] = None
    problems = "\n".join(validate(bad, CLASSES, comfy_core.FRONTEND_ONLY))
    assert "quality=500" in problems and "'4:1:1'" in problems and "images is not connected" in problems
    bad2 = json.loads(json.dumps(good))
    bad2["links"][0][2] = 1  # LoadImage MASK output -> JPEG images (IMAGE)
    assert any("MASK" in p for p in validate(bad2, CLASSES, comfy_core.FRONTEND_ONLY))


GENERATORS = sorted(p for p in glob.glob(os.path.join(ROOT, "tools", "make_*.py")) if not p.endswith("make_all.py"))


@pytest.mark.parametrize("path", GENERATORS, ids=os.path.basename)
def test_generator_reproduces_the_shipped_json_byte_for_byte(path):
    """Every shipped workflow is exactly what its tools/make_<name>.py writes, so a change to a node
    or a generator cannot leave a stale workflow behind (regenerate with python tools/make_all.py)."""
    import runpy
    name = os.path.basename(path)[len("make_"):-3]
    target = os.path.join(ROOT, "workflows", name + ".json")
    assert os.path.exists(target), f"{os.path.basename(path)} writes no shipped workflow"
    wf = runpy.run_path(path, run_name="regenerate")["build"]()
    wf.layout(probe=True)
    with open(target) as f:
        shipped = f.read()
    assert json.dumps(wf.to_json(), indent=1) + "\n" == shipped, \
        f"workflows/{name}.json is stale: run python tools/make_all.py"
