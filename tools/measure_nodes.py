"""Measure node sizes in the real ComfyUI frontend and write tools/node_sizes.json.

    python tools/measure_nodes.py                       # both harness trees (1.27.10 and 1.58.1)
    python tools/measure_nodes.py --tree /tmp/comfy_harness158 --port 8291

For each harness tree (``../shared/harness/build.sh``; ``--tree`` or /tmp/comfy_harness and
/tmp/comfy_harness158) this starts ComfyUI with only this pack, opens the frontend in headless
Chromium (tools/frontend.js, playwright-core) and, for every node type of the pack and the core
nodes the workflows use:

* classic (LiteGraph) renderer: creates the node, saves it at 1x1, loads it back; the frontend
  grows each node to what it needs; records max(node.size after load, node.computeSize());
* Nodes 2.0 (``Comfy.VueNodes.Enabled``): the same graph, the DOM box of each node less the title
  bar (30 px: a node's pos is the top-left of its body, the title sits above it). A renderer whose
  nodes come out empty (0 px, e.g. the experimental Vue nodes of 1.27) is recorded as unusable;

and the geometry the layout needs for content: the title font's character widths, the PreviewAny
text area (line height, padding, node chrome around it), multiline text widgets, and, after a run,
the image area of PreviewImage and of the A/B compare slider. ``tools/wfbuild.py`` sizes every
node as the maximum over the recorded renderers.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.harness import comfy_server, frontend_js, frontend_version, tree_args, trees_of, ROOT  # noqa: E402

OUT = os.path.join(ROOT, "tools", "node_sizes.json")
SAMPLE = "metavsr_sample.png"


def node_types():
    from tools.wfbuild import pack_classes
    types = set(pack_classes())
    for f in os.listdir(os.path.join(ROOT, "workflows")):
        if f.endswith(".json"):
            with open(os.path.join(ROOT, "workflows", f)) as fh:
                types |= {n["type"] for n in json.load(fh)["nodes"]}
    return sorted(types)


def usable(m):
    """A renderer that leaves nodes without a size (0 px after loading) cannot be laid out against."""
    bad = [t for t, r in m["types"].items()
           if min(r["need"]) <= 0 or min(r["loaded"]) <= 0 or ("dom" in r and min(r["dom"]) <= 0)]
    return (not bad), bad


def renderer_record(m, vue):
    return {
        "frontend": m["frontend"], "nodes_2": bool(vue),
        "types": {t: r["need"] for t, r in sorted(m["types"].items())},
        "titles": {t: r["title"] for t, r in sorted(m["types"].items())},
        "textareas": {t: [{k: ta[k] for k in ("client", "line_h", "pad_v", "pad_h", "char_w") if k in ta}
                          for ta in r["textareas"]]
                      for t, r in sorted(m["types"].items()) if r.get("textareas")},
        "text_preview": {k: v for k, v in (m.get("text_preview") or {}).items()
                         if k in ("line_h", "pad_v", "pad_h", "char_w", "chrome_h", "chrome_w")},
        "images": {t: {k: v for k, v in r.items() if k in ("chrome_h", "chrome_w")}
                   for t, r in (m.get("images") or {}).items() if isinstance(r, dict) and "chrome_h" in r},
        "title_font": m["title_font"],
    }


def document(raw):
    modes = {}
    for name, m in raw.items():
        ok, bad = usable(m)
        if not ok:
            print("  %s: unusable (0-px nodes: %s); not recorded" % (name, ", ".join(bad[:6])))
            modes[name] = {"unusable": "nodes render with 0 px after loading: " + ", ".join(bad)}
            continue
        if m["missing"]:
            print("  %s: missing node types: %s" % (name, m["missing"]))
        modes[name] = renderer_record(m, m.get("vue"))
    best = {}
    for rec in modes.values():
        for t, wh in rec.get("types", {}).items():
            best[t] = [max(a, b) for a, b in zip(best.get(t, wh), wh)]
    return {
        "_note": ("Written by tools/measure_nodes.py (headless Chromium, tools/frontend.js) on %s. Per renderer: "
                  "'types' = body size [w, h] a node of that type needs with its default title ('titles'; classic: "
                  "max(size after loading a 1x1 node, computeSize()); Nodes 2.0: DOM box minus the 30 px title); "
                  "'textareas' = multiline text widgets at that size (client box, line height, padding); "
                  "'text_preview' = PreviewAny text area (node chrome around it); 'images' = node chrome around "
                  "the image of PreviewImage / the A/B compare slider after a run; 'title_font' = title "
                  "character widths. tools/wfbuild.py sizes nodes as the max over usable renderers."
                  % time.strftime("%Y-%m-%d")),
        "title_height": 30,
        "sample_image": SAMPLE,
        "max_types": dict(sorted(best.items())),
        "renderers": modes,
    }


def dumps(obj, indent=0):
    """JSON with one line per node type / record (small lists and flat objects inline)."""
    pad = " " * indent
    flat = lambda v: not isinstance(v, (dict, list)) or (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))
    if isinstance(obj, dict) and obj and not all(flat(v) for v in obj.values()):
        items = ["%s %s: %s" % (pad, json.dumps(k), dumps(v, indent + 1)) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and not all(flat(v) for v in obj):
        return "[\n" + ",\n".join(pad + " " + dumps(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tree_args(ap)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--raw", help="also write the raw measurements here")
    ap.add_argument("--from-raw", help="rebuild --out from raw measurements written earlier (no browser)")
    a = ap.parse_args()
    if a.from_raw:
        with open(a.from_raw) as f:
            raw = json.load(f)
    else:
        types = node_types()
        raw = {}
        for tree in trees_of(a):
            ver = frontend_version(tree)
            with comfy_server(tree, a.port) as srv:
                for vue in (0, 1):
                    name = ver + (" Nodes 2.0" if vue else "")
                    print("measuring %s (%s) ..." % (name, tree), flush=True)
                    raw[name] = frontend_js(srv, "measure", "--types", ",".join(types), "--vue", vue,
                                            "--image", SAMPLE, tree=tree)
        if not raw:
            sys.exit("no harness tree found; build one with ../shared/harness/build.sh")
        if a.raw:
            with open(a.raw, "w") as f:
                json.dump(raw, f, indent=1)
    doc = document(raw)
    with open(a.out, "w") as f:
        f.write(dumps(doc) + "\n")
    print("wrote %s (%s)" % (a.out, ", ".join("%s%s" % (k, " [unusable]" if "unusable" in v else "")
                                              for k, v in doc["renderers"].items())))


if __name__ == "__main__":
    main()
