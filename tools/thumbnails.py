"""Make the Templates-browser thumbnails workflows/<name>.jpg from the real frontend.

    python tools/thumbnails.py                                  # every shipped workflow
    python tools/thumbnails.py --workflow workflows/sender_toolkit.json --tree /tmp/comfy_harness158

ComfyUI serves ``<pack>/workflows/<name>.jpg`` beside ``<name>.json`` to the Templates browser
(app/custom_node_manager.py). The browser shows it in a square card top with ``max-h-64
object-contain``: at most 256 x 256 CSS px (frontend 1.58.1: cards in a
``grid-cols-[repeat(auto-fill,minmax(15rem,1fr))]`` grid, CardTop ``aspect-square``; 1.27.10:
``w-64`` cards, the same image classes). A whole graph of 3000 px would put its 14 px titles at about
1 px there, so each thumbnail is a square crop of the key part of the graph (FOCUS below: the
nodes that show the result, with their titles) of MIN_SIDE..MAX_SIDE graph units (titles at
about 5.6 CSS px on the card, 11 device px on a HiDPI screen), rendered by the real frontend
(classic renderer, its default; zoom 1.6, above its low-quality threshold) after the workflow ran
(tools/frontend.js thumb), and saved as a SIZE x SIZE JPEG (2x the card for HiDPI screens).
Workflows that need downloaded weights are shown as loaded, not run.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.harness import comfy_server, frontend_js, frontend_version, shipped_workflows  # noqa: E402
from tools.wfbuild import ROOT, TITLE_H, node_boxes, pack_classes  # noqa: E402

SIZE = 512          # JPEG side (the card is <= 256 CSS px)
MAX_SIDE = 640      # graph units in the crop at most: titles (14 px) stay >= 5.6 CSS px at 256 px (11 on HiDPI)
MIN_SIDE = 640
MARGIN = 16
BADGE = 80          # graph units kept clear above the focus (the card's "Node graph" badge)
QUALITY = 85
README_SIDE = 1400  # whole-graph README pictures: titles readable on a laptop screen, ~70-140 KB
# nodes (titles) each thumbnail frames, in order of importance: the crop starts at the first one
FOCUS = {
    "sender_toolkit": ["Every stage, side by side"],
    "jbig2_roundtrip": ["Canny edges (sent)", "JBIG2 decoded edges"],
    "metasr_embedded_demo": ["A/B split view"],
    "compare_conditioning": ["RD: psnr"],
    "metasr_cogvideox": ["SR with edge tokens", "SR pixel-only (DOVE-style)", "MetaSR (CogVideoX one-step)"],
    "star_vsr": ["STAR prompt and sampler", "SR: STAR", "STAR (I2VGen-XL, light degradations)"],
    "stream_vsr": ["SR causal (temporal guidance)", "SR per frame (no temporal guidance)",
                   "embedded streaming receiver (or Stream-DiffVSR)"],
    "orchestrated_sr": ["RD: fixed choices vs orchestrated; J per candidate"],
}


def crop_for(wf, focus):
    """Square crop (x, y, side, side) in graph units: the box of the focus nodes (titles included),
    grown to MIN_SIDE, cut to MAX_SIDE from the first focus node's top-left corner."""
    boxes = node_boxes(wf)
    by_title = {(n.get("title") or n["type"]): n["id"] for n in wf["nodes"]}
    ids = [by_title[t] for t in focus if t in by_title]
    if not ids:   # default: every image preview
        ids = [n["id"] for n in wf["nodes"] if n["type"] == "PreviewImage"] or [wf["nodes"][-1]["id"]]
    x0 = min(boxes[i][0] for i in ids) - MARGIN
    y0 = min(boxes[i][1] for i in ids) - MARGIN
    x1 = max(boxes[i][0] + boxes[i][2] for i in ids) + MARGIN
    y1 = max(boxes[i][1] + boxes[i][3] for i in ids) + MARGIN
    side = min(MAX_SIDE, max(MIN_SIDE, x1 - x0, y1 - y0))
    fx, fy = boxes[ids[0]][0] - MARGIN, boxes[ids[0]][1] - MARGIN
    # centre the focus box in the square where it fits, else keep the first node's corner in view;
    # leave BADGE graph units above it where possible (1.58.1 lays a "Node graph" badge over the
    # card's top-left corner)
    cx = x0 - (side - (x1 - x0)) / 2 if x1 - x0 <= side else fx
    free = side - (y1 - y0)
    cy = y0 - min(max(free, 0), max(free / 2, BADGE)) if free >= 0 else fy - BADGE
    return [int(cx), int(cy), int(side), int(side)]


def whole_graph(wf, zoom=0.65):
    """Crop and pixel width of the whole graph at ``zoom`` (>= 0.6 keeps classic text drawn)."""
    boxes = node_boxes(wf).values()
    x0 = min(b[0] for b in boxes) - MARGIN
    y0 = min(b[1] for b in boxes) - MARGIN
    x1 = max(b[0] + b[2] for b in boxes) + MARGIN
    y1 = max(b[1] + b[3] for b in boxes) + MARGIN
    return [int(x0), int(y0), int(x1 - x0), int(y1 - y0)], int((x1 - x0) * zoom)


def needs_weights(wf, classes):
    return any(getattr(classes.get(n["type"]), "NEEDS_WEIGHTS", False) for n in wf["nodes"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default="/tmp/comfy_harness158", help="harness tree ($COMFY_HARNESS)")
    ap.add_argument("--port", type=int, default=8292)
    ap.add_argument("--workflow", action="append", default=None)
    ap.add_argument("--out-dir", help="write the JPEGs here instead of beside the workflows")
    ap.add_argument("--vue", type=int, default=0, help="1: Nodes 2.0 renderer")
    ap.add_argument("--full", action="store_true",
                    help="whole-graph pictures for the README instead: docs/workflows/<name>.jpg (at most "
                         "%d px a side)" % README_SIDE)
    a = ap.parse_args()
    from PIL import Image
    classes = pack_classes()
    from metavsr.models.atomic import save_image
    workflows = [os.path.abspath(w) for w in (a.workflow or shipped_workflows())]
    print("frontend %s" % frontend_version(a.tree))
    with comfy_server(a.tree, a.port) as srv, tempfile.TemporaryDirectory() as tmp:
        for path in workflows:
            stem = os.path.splitext(os.path.basename(path))[0]
            with open(path) as f:
                wf = json.load(f)
            if a.full:
                crop, px = whole_graph(wf)
            else:
                crop, px = crop_for(wf, FOCUS.get(stem, [])), 2 * SIZE
            png = os.path.join(tmp, stem + ".png")
            args = ["--workflow", path, "--out", png, "--crop", ",".join(map(str, crop)), "--px", px,
                    "--vue", a.vue]
            run = not needs_weights(wf, classes)
            if run:
                args.append("--queue")
            res = frontend_js(srv, "thumb", *args, tree=a.tree)
            folder = a.out_dir or (os.path.join(ROOT, "docs", "workflows") if a.full else os.path.dirname(path))
            out = os.path.join(folder, stem + ".jpg")
            with Image.open(png) as im:
                im = im.convert("RGB")
                if a.full:
                    im.thumbnail((README_SIDE, README_SIDE), Image.LANCZOS)
                else:
                    im = im.resize((SIZE, SIZE), Image.LANCZOS)
                save_image(out, im, quality=QUALITY if not a.full else 80, optimize=True)
                wh = im.size
            print("%s: crop %s (graph units, title bars at y - %d), %s, %dx%d px, %.0f KB" % (
                os.path.basename(out), crop, TITLE_H, ("ran: %s" % (res.get("run") or {}).get("status")) if run
                else "not run (needs weights)", wh[0], wh[1], os.path.getsize(out) / 1024), flush=True)


if __name__ == "__main__":
    main()
