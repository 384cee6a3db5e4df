"""Every shipped workflow reads well in the real frontend: no two nodes overlap (title bars
included), no node is saved smaller than the frontend draws it (sizes measured in the classic and
Nodes 2.0 renderers by tools/measure_nodes.py, recorded in tools/node_sizes.json), and every
wire runs left to right (a node sits right of each of its sources).

The same checks run in a browser on the loaded graph with ``python tools/ui_check.py``.
"""
import glob
import json
import os

import pytest

import metavsr
from tools import comfy_core
from tools.wfbuild import (TITLE_H, NodeSizes, Text, Workflow, backward_links, node_boxes, overlapping_pairs,
                           undersized)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))
CLASSES = {**comfy_core.NODE_CLASS_MAPPINGS, **metavsr.NODE_CLASS_MAPPINGS}
SIZES = NodeSizes.load()


def _load(path):
    with open(path) as f:
        return json.load(f)


def _name(wf, nid):
    n = next(n for n in wf["nodes"] if n["id"] == nid)
    return "%s '%s'" % (nid, n.get("title") or n["type"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_no_overlapping_nodes(path):
    wf = _load(path)
    pairs = overlapping_pairs(node_boxes(wf))
    assert not pairs, "%d overlapping node pairs: %s" % (len(pairs), "; ".join(
        "%s / %s (%dx%d px)" % (_name(wf, a), _name(wf, b), w, h) for a, b, w, h in pairs))


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_sizes_at_least_measured(path):
    wf = _load(path)
    bad = undersized(wf, SIZES, CLASSES)
    assert not bad, "nodes saved smaller than the frontend draws them (run tools/measure_nodes.py for " \
        "unmeasured types, then regenerate): " + "; ".join(
            "%s %s saved %s, needs %s" % (_name(wf, i), t, s, need) for i, t, s, need in bad)


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_links_run_left_to_right(path):
    wf = _load(path)
    bad = backward_links(wf)
    assert not bad, "targets left of (or under) their source: " + "; ".join(
        "link %s: %s -> %s" % (lid, _name(wf, s), _name(wf, d)) for lid, s, d in bad)


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_every_type_measured(path):
    missing = sorted({n["type"] for n in _load(path)["nodes"]} - {
        t for r in SIZES.renderers.values() for t in r["types"]})
    assert not missing, "not in tools/node_sizes.json (run tools/measure_nodes.py): %s" % missing


def test_measurements_cover_both_renderers():
    """node_sizes.json holds the classic renderer of both frontends and Nodes 2.0 of the newer one."""
    kinds = {(r["frontend"], r["nodes_2"]) for r in SIZES.renderers.values()}
    assert {f for f, _ in kinds} >= {"1.27.10", "1.58.1"}, kinds
    assert any(v for _, v in kinds), "no Nodes 2.0 measurement"


def test_checks_catch_bad_layouts():
    """The checks fail where they should: two nodes at the same place, a node whose title bar
    touches the node above, a preview left of its source, a node saved too small."""
    wf = Workflow(CLASSES)
    img = wf.node("LoadImage", image="example.png", title="HR")
    jpg = wf.node("MetaVSRJPEG", images=img[0], quality=50)
    wf.node("PreviewImage", images=jpg[0])
    wf.layout()
    good = wf.to_json()
    assert not overlapping_pairs(node_boxes(good)) and not backward_links(good)
    assert not undersized(good, SIZES, CLASSES)
    bad = json.loads(json.dumps(good))
    a, b, c = bad["nodes"]
    c["pos"] = [a["pos"][0], a["pos"][1] + a["size"][1] + TITLE_H - 5]    # title under a's bottom edge
    c["pos"][0] = a["pos"][0]
    assert overlapping_pairs(node_boxes(bad))
    assert backward_links(bad)                                          # preview left of the JPEG node
    b["size"] = [b["size"][0], 40]
    assert [i for i, *_ in undersized(bad, SIZES, CLASSES)] == [b["id"]]
    # an output node given room for its text is at least as large as the measured PreviewAny
    need = SIZES.need("PreviewAny", None, (), Text(8, 60))
    assert need[1] > SIZES.need("PreviewAny")[1] and need[0] >= 60 * 6


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_thumbnail_fits_the_templates_card(path):
    """The Templates browser shows <name>.jpg in a square card of at most 256 CSS px
    (tools/thumbnails.py): a square JPEG of at least 2x that, under 300 KB."""
    from PIL import Image
    jpg = path[:-5] + ".jpg"
    assert os.path.getsize(jpg) < 300 * 1024, "%s is %d KB" % (os.path.basename(jpg), os.path.getsize(jpg) // 1024)
    with Image.open(jpg) as im:
        assert im.format == "JPEG"
        w, h = im.size
    assert w == h and w >= 512, "%s is %dx%d" % (os.path.basename(jpg), w, h)
