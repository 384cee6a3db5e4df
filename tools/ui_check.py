"""Browser box check: load (and run) every shipped workflow in the real ComfyUI frontend and
report what a user would see go wrong.

    python tools/ui_check.py                              # every workflow, both harness trees
    python tools/ui_check.py --workflow workflows/jbig2_roundtrip.json --tree /tmp/comfy_harness158
    python tools/ui_check.py --no-run --json /tmp/ui_check.json --shots /tmp/shots

Per harness tree (../shared/harness/build.sh; frontend 1.27.10 and 1.58.1 by default) and renderer
(classic LiteGraph canvas; Nodes 2.0 where tools/node_sizes.json records it as usable), each
workflow is loaded with the frontend's own loadGraphData, then queued like the Run button
(tools/frontend.js boxes). After loading and again after the run every node is shown at zoom 1 and
its on-screen box is read: classic = node.pos/node.size plus the 30 px title bar above pos;
Nodes 2.0 = the node's DOM element. Reported: missing node types, the run's status, overlapping
node pairs, nodes whose Nodes 2.0 box is larger than the saved size (content pushed out), text
previews whose text does not fit (scrollHeight > clientHeight), and the size of the A/B compare
slider image. tests/test_layout.py is the offline form of the overlap check.
Exit status 0 when no workflow has an overlap, a grown node or a text that does not fit.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.harness import (comfy_server, frontend_js, frontend_version, shipped_workflows, tree_args,  # noqa: E402
                           trees_of)
from tools.wfbuild import NodeSizes  # noqa: E402


def renderers_for(ver, sizes):
    out = [("classic", 0)]
    rec = sizes.doc.get("renderers", {}).get(ver + " Nodes 2.0")
    if rec and "types" in rec:
        out.append(("Nodes 2.0", 1))
    return out


def summarize(res, vue):
    key = "overlaps_dom" if vue else "overlaps_classic"
    out = {"missing_node_types": res.get("missing_node_types"), "node_count": res.get("node_count"),
           "run": res.get("run"), "page_errors": res.get("page_errors")}
    for phase in ("loaded", "after_run"):
        p = res.get(phase)
        if not p:
            continue
        grown, overflow, sliders = [], [], []
        for b in p["boxes"]:
            if vue and b.get("dom"):
                dh = b["dom"][3] - 30 - b["size"][1]
                dw = b["dom"][2] - b["size"][0]
                if dh > 1 or dw > 1:
                    grown.append({"id": b["id"], "title": b["title"], "saved": [round(v) for v in b["size"]],
                                  "shown": [round(b["dom"][2]), round(b["dom"][3] - 30)]})
            for t in b.get("texts") or []:
                if t.get("overflow"):
                    overflow.append({"id": b["id"], "title": b["title"], "lines": t["lines"], "scroll": t["scroll"],
                                     "client": t["client"]})
            if b["type"] == "MetaVSRABCompare":
                sliders.append({"id": b["id"], "saved": [round(v) for v in b["size"]],
                                "slider_box": [round(v) for v in b["images"][0]["box"][2:]] if b.get("images") else None,
                                "image_shown": [round(v) for v in b["images"][0]["shown"]]
                                if b.get("images") and b["images"][0].get("shown") else None,
                                "widgets": b.get("widgets")})
        out[phase] = {"overlaps": p[key], "grown_nodes": grown, "text_overflow": overflow, "ab_slider": sliders}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tree_args(ap)
    ap.add_argument("--workflow", action="append", default=None)
    ap.add_argument("--no-run", action="store_true", help="only load, do not queue")
    ap.add_argument("--renderer", choices=["classic", "Nodes 2.0"], action="append", default=None)
    ap.add_argument("--json", help="write the full report here")
    ap.add_argument("--shots", help="folder for a screenshot per workflow and renderer")
    ap.add_argument("--timeout", type=int, default=600)
    a = ap.parse_args()
    sizes = NodeSizes.load()
    workflows = [os.path.abspath(w) for w in (a.workflow or shipped_workflows())]
    report, bad = [], 0
    for tree in trees_of(a):
        ver = frontend_version(tree)
        with comfy_server(tree, a.port) as srv:
            for rname, vue in renderers_for(ver, sizes):
                if a.renderer and rname not in a.renderer:
                    continue
                for wf in workflows:
                    stem = os.path.splitext(os.path.basename(wf))[0]
                    args = ["--workflow", wf, "--vue", vue, "--timeout", a.timeout, "--width", 1600, "--height", 1000]
                    if not a.no_run:
                        args.append("--queue")
                    if a.shots:
                        os.makedirs(a.shots, exist_ok=True)
                        args += ["--shot", os.path.join(a.shots, "%s_%s_%s.png" % (stem, ver, "vue" if vue else "classic"))]
                    res = frontend_js(srv, "boxes", *args, timeout=a.timeout + 300, tree=tree)
                    s = summarize(res, vue)
                    s.update({"workflow": os.path.basename(wf), "frontend": ver, "renderer": rname})
                    report.append(s)
                    last = s.get("after_run") or s.get("loaded") or {}
                    first = s.get("loaded") or {}
                    problems = (len(first.get("overlaps", [])) + len(last.get("overlaps", [])) +
                                len(last.get("grown_nodes", [])) + len(last.get("text_overflow", [])) +
                                len(s["missing_node_types"] or []))
                    bad += problems > 0
                    run = s.get("run") or {}
                    sl = "; ".join("A/B slider %s, image %s" % (x["slider_box"], x["image_shown"])
                                   for x in last.get("ab_slider", []) if x["slider_box"])
                    print("%-26s %-8s %-9s overlaps %d loaded / %d after run, grown %d, text overflow %d, "
                          "missing %s, run %s%s%s" % (
                              s["workflow"], ver, rname, len(first.get("overlaps", [])), len(last.get("overlaps", [])),
                              len(last.get("grown_nodes", [])), len(last.get("text_overflow", [])),
                              s["missing_node_types"] or "none", run.get("status", "-"),
                              (" (%s)" % run["error"][:160]) if run.get("error") else "", ("; " + sl) if sl else ""),
                          flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
