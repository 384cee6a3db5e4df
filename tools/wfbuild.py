"""Build ComfyUI UI-format workflow JSON (the format the frontend saves and loads) from Python.

    wf = Workflow(classes)                     # {node type: class with INPUT_TYPES}
    img = wf.node("LoadImage", image="x.png", title="HR image")
    deg = wf.node("MetaVSRChannelDegrade", images=img[0], regime="HN")
    wf.node("PreviewAny", source=rate[0], show=Text(lines=6, cols=60))
    wf.save("workflows/demo.json")             # lays the graph out first (see layout())

Keyword arguments that are outputs (``node[i]`` or ``node["NAME"]``) become links; the rest are
widget values (missing widgets take their defaults). Widget order, seed control values and socket
types come from the classes, so a saved workflow matches what the frontend would write.

Layout (``Workflow.layout``, run by ``save``): every node gets the size the real frontend needs
for it (``tools/node_sizes.json``, measured by ``tools/measure_nodes.py`` in ComfyUI's classic and
Nodes 2.0 renderers; the maximum over renderers, plus room for its title, its multiline text and
what it shows after a run, ``show=Text(...)`` / ``show=Image(...)``), and a place: columns by
dependency rank (a node sits right of all its sources, so wires run left to right; loaders with no
inputs sit just left of their first consumer), nodes in a column ordered by where their sources
are (branches stay together) and stacked with their title bars (30 px above ``pos``) and a gap
between them. ``band="name"`` puts a part of the graph in its own horizontal band below the others.
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def is_widget(spec) -> bool:
    typ = spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return not opts.get("forceInput") and (isinstance(typ, list) or typ in WIDGET_TYPES or typ == "COMBO")


def input_specs(cls):
    """[(name, spec, required)] in the frontend's widget order (required, then optional)."""
    types = cls.INPUT_TYPES()
    out = []
    for section in ("required", "optional"):
        for name, spec in (types.get(section) or {}).items():
            out.append((name, spec, section == "required"))
    return out


def default_value(spec):
    typ, opts = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    if "default" in opts:
        return opts["default"]
    if isinstance(typ, list):
        return typ[0]
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[typ]


def socket_type(spec) -> str:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


class Output:
    def __init__(self, node, slot):
        self.node, self.slot = node, slot


class Node:
    def __init__(self, wf, nid, type_, cls):
        self.wf, self.id, self.type, self.cls = wf, nid, type_, cls

    def __getitem__(self, key):
        names = list(getattr(self.cls, "RETURN_NAMES", None) or self.cls.RETURN_TYPES)
        slot = key if isinstance(key, int) else names.index(key) if key in names else list(self.cls.RETURN_TYPES).index(key)
        return Output(self, slot)


class Workflow:
    def __init__(self, classes: dict):
        self.classes = classes
        self.nodes, self.links, self._objs, self._hints, self._inputs = [], [], {}, {}, {}
        self.laid_out = False

    def node(self, type_, pos=None, size=None, title=None, show=None, band=0, column=None, **inputs):
        """Add a node. ``show``: what an output node displays after a run (``Text`` / ``Image``), so
        that the layout gives it room; ``band``: layout band; ``column``: nodes with the same key
        share a column (the rightmost any of them needs), e.g. previews to compare side by side;
        ``pos`` / ``size``: fixed place / minimum size (the layout still grows a node to its
        measured size)."""
        cls = self.classes[type_]
        nid = len(self.nodes) + 1
        obj = Node(self, nid, type_, cls)
        specs = input_specs(cls)
        unknown = set(inputs) - {n for n, _, _ in specs}
        if unknown:
            raise KeyError(f"{type_} has no inputs {sorted(unknown)}")
        ins, widgets = [], []
        for name, spec, _required in specs:
            val = inputs.get(name)
            if is_widget(spec):
                if isinstance(val, Output):
                    ins.append({"name": name, "type": socket_type(spec), "widget": {"name": name},
                                "link": self._link(val, obj, len(ins), socket_type(spec))})
                    widgets.append(default_value(spec))
                else:
                    widgets.append(default_value(spec) if val is None else val)
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if spec[0] == "INT" and (opts.get("control_after_generate") or name in ("seed", "noise_seed")):
                    widgets.append("fixed")
            else:
                link = self._link(val, obj, len(ins), spec[0]) if isinstance(val, Output) else None
                ins.append({"name": name, "type": spec[0], "link": link})
        names = list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)
        outs = [{"name": n, "type": t, "links": [], "slot_index": i}
                for i, (n, t) in enumerate(zip(names, cls.RETURN_TYPES))]
        self._hints[nid] = {"show": show, "band": band, "pos": pos, "size": size, "column": column}
        self._inputs[nid] = dict(inputs)
        if size is None:
            size = (340, 60 + 26 * (len(ins) + len(widgets) + len(outs)))
        entry = {"id": nid, "type": type_, "pos": list(pos or (0, 0)), "size": list(size), "flags": {}, "order": nid - 1,
                 "mode": 0, "inputs": ins, "outputs": outs, "properties": {"Node name for S&R": type_},
                 "widgets_values": widgets}
        if title:
            entry["title"] = title
        self.nodes.append(entry)
        self._objs[nid] = obj
        # fill the origin side of links created for this node
        for link in self.links:
            if link[3] == nid:
                self.nodes[link[1] - 1]["outputs"][link[2]]["links"].append(link[0])
        return obj

    def _link(self, out: Output, dst: Node, dst_slot: int, dst_type) -> int:
        src_type = out.node.cls.RETURN_TYPES[out.slot]
        lid = len(self.links) + 1
        self.links.append([lid, out.node.id, out.slot, dst.id, dst_slot, src_type if dst_type == "*" else dst_type])
        return lid

    def to_json(self) -> dict:
        return {"id": "00000000-0000-4000-8000-000000000000", "revision": 0,
                "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                "nodes": self.nodes, "links": self.links, "groups": [], "config": {},
                # opens at 80 % with the first column clear of the frontend's floating toolbars
                "extra": {"ds": {"scale": 0.8, "offset": [60, 100]}}, "version": 0.4}

    def layout(self, sizes=None, probe=False, **opts):
        """Size and place every node (see the module docstring); ``opts`` override ``LAYOUT``.
        ``probe``: run the graph once without ComfyUI (``tools/wfrun.py``, ``probe_image``) and size
        text and image previews from what they really show (falls back to the ``show`` hints)."""
        shown = self.probe() if probe else {}
        layout(self, sizes or NodeSizes.load(), shown=shown, **opts)
        self.laid_out = True
        return self

    def api_prompt(self) -> dict:
        """The API-format prompt of this graph (what the frontend would queue)."""
        prompt = {}
        for n in self.nodes:
            nid, cls = n["id"], self.classes[n["type"]]
            given = self._inputs.get(nid, {})
            inputs = {}
            for name, spec, _ in input_specs(cls):
                val = given.get(name)
                if isinstance(val, Output):
                    inputs[name] = [str(val.node.id), val.slot]
                elif is_widget(spec):
                    inputs[name] = default_value(spec) if val is None else val
            prompt[str(nid)] = {"class_type": n["type"], "inputs": inputs}
        return prompt

    def probe(self, image=None) -> dict:
        """Run the graph offline on ``image`` (default: workflows/metavsr_sample.png); returns
        {node id: Text | (h, w)} for PreviewAny texts and the images of PreviewImage / A/B compare.
        Returns {} with a warning when the graph cannot run here (e.g. weights not downloaded)."""
        import warnings
        from . import comfy_core
        from .wfrun import execute
        if any(getattr(self.classes.get(n["type"]), "NEEDS_WEIGHTS", False) for n in self.nodes):
            return {}  # cannot run without downloaded weights: the show= hints size its previews
        try:
            comfy_core.LoadImage.test_image = image if image is not None else probe_image()
            results = execute(self.api_prompt(), self.classes)
        except Exception as e:  # noqa: BLE001 - any failure only means: no probe, use the hints
            warnings.warn("probe run failed (%s: %s); using the show= hints" % (type(e).__name__, e))
            return {}
        finally:
            comfy_core.LoadImage.test_image = None
        shown = {}
        for n in self.nodes:
            outs, uis = results.get(str(n["id"]), ([], []))
            if n["type"] == "PreviewAny":
                texts = [str(t) for ui in uis if ui for t in (ui.get("text") or [])]
                if texts:
                    shown[n["id"]] = Text.of(texts)
            elif n["type"] == "PreviewImage":
                src = self._inputs[n["id"]].get("images")
                img = results.get(str(src.node.id), ([], []))[0][src.slot] if isinstance(src, Output) else []
                if img:
                    shown[n["id"]] = tuple(img[0].shape[1:3])
            elif n["type"] == "MetaVSRABCompare" and outs and outs[0]:
                shown[n["id"]] = tuple(outs[0][0].shape[1:3])
        return shown

    def save(self, path):
        if not self.laid_out:
            self.layout()
        from _pack import load_pack
        load_pack()
        from metavsr.models.atomic import write_json
        write_json(path, self.to_json(), indent=1)  # a failed regeneration leaves the old file whole


def pack_classes() -> dict:
    """Every MetaVSR node plus the core stand-ins of ``tools/comfy_core.py``, keyed by node type."""
    from _pack import load_pack
    from . import comfy_core
    return {**comfy_core.NODE_CLASS_MAPPINGS, **load_pack().NODE_CLASS_MAPPINGS}


def save_workflow(wf: "Workflow", name: str, probe=True):
    """Lay out ``wf`` (probing what its previews show, see ``Workflow.layout``) and write it as
    ``workflows/<name>`` in the repository."""
    if not wf.laid_out:
        wf.layout(probe=probe)
    wf.save(os.path.join(ROOT, "workflows", name))


# ---- layout ------------------------------------------------------------------------------------

SIZES_JSON = os.path.join(ROOT, "tools", "node_sizes.json")
TITLE_H = 30            # LiteGraph.NODE_TITLE_HEIGHT: the title bar sits above a node's pos
LAYOUT = {"hgap": 90,   # between columns (room for the wires)
          "vgap": 40,   # between the bottom of one node and the title bar of the next
          "band_gap": 140,
          "origin": (0, 0),
          "slack": 4,   # extra height on measured sizes (rounding of DOM boxes)
          "error_room": 24}   # a loader that needs downloaded weights shows its error under its widgets
                              # (Nodes 2.0 on 1.58.1: +20 px after a failed run)


AB_SLIDER = 540   # A/B compare: the native slider at >= 512 px under Nodes 2.0 (measured chrome around it)


class Text:
    """An output node shows ``lines`` lines of up to ``cols`` characters after a run (PreviewAny)."""
    MAX_COLS = 64   # wider text wraps (the preview wraps at word boundaries)

    def __init__(self, lines, cols=60):
        self.lines, self.cols = int(lines), int(cols)

    @classmethod
    def of(cls, texts):
        """Room for the longest of ``texts``, long lines wrapped at MAX_COLS (word wrap: a line of n
        characters takes ceil(n / (MAX_COLS - 10)) lines)."""
        lines, cols = 1, 1
        for t in texts:
            rows = str(t).split("\n")
            lines = max(lines, sum(1 if len(r) <= cls.MAX_COLS else -(-len(r) // (cls.MAX_COLS - 10)) for r in rows))
            cols = max(cols, min(cls.MAX_COLS, max(len(r) for r in rows)))
        return cls(lines, cols)


class Image:
    """An output node shows an image at ``w`` x ``h`` graph units after a run (PreviewImage, the
    A/B compare slider)."""
    def __init__(self, w, h):
        self.w, self.h = int(w), int(h)


def _widget_map(cls, values):
    """{widget name: value} from a node's widgets_values (skips seed control values)."""
    out, vals, i = {}, list(values or []), 0
    for name, spec, _ in input_specs(cls):
        if not is_widget(spec) or i >= len(vals):
            continue
        out[name] = vals[i]
        i += 1
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if spec[0] == "INT" and (opts.get("control_after_generate") or name in ("seed", "noise_seed")):
            if i < len(vals) and vals[i] in ("fixed", "increment", "decrement", "randomize"):
                i += 1
    return out


def multiline_values(cls, values):
    """Values of a node's multiline STRING widgets, in widget order (the order of its text areas)."""
    wm = _widget_map(cls, values)
    return [str(wm.get(name, "")) for name, spec, _ in input_specs(cls)
            if is_widget(spec) and spec[0] == "STRING" and len(spec) > 1 and isinstance(spec[1], dict)
            and spec[1].get("multiline")]


class NodeSizes:
    """What the real frontend needs for a node (``tools/node_sizes.json``), max over renderers."""

    def __init__(self, doc):
        self.doc = doc
        self.renderers = {k: v for k, v in doc.get("renderers", {}).items() if "types" in v}
        self.missing = set()

    @classmethod
    def load(cls, path=SIZES_JSON):
        with open(path) as f:
            return cls(json.load(f))

    def measured(self, type_):
        return any(type_ in r["types"] for r in self.renderers.values())

    @staticmethod
    def _title_w(r, title):
        tf = r.get("title_font") or {}
        chars = tf.get("chars") or {}
        avg = sum(chars.values()) / len(chars) if chars else 8.0
        return tf.get("pad", 40) + sum(chars.get(c, avg) for c in title)

    def need(self, type_, title=None, multiline=(), show=None, slack=0):
        """[w, h] of the node body (title bar excluded) that every measured renderer needs."""
        best = None
        for r in self.renderers.values():
            base = r["types"].get(type_)
            if base is None:
                continue
            w, h = float(base[0]), float(base[1])
            shown = title or r.get("titles", {}).get(type_)   # the frontend draws a title up to w - 60 px
            if shown:
                w = max(w, self._title_w(r, shown))
            for ta, text in zip(r.get("textareas", {}).get(type_, []), multiline):
                rows = text.split("\n")
                need_h = ta["pad_v"] + len(rows) * ta["line_h"] + slack
                need_w = ta["pad_h"] + max(len(x) for x in rows) * ta["char_w"] + slack
                h += max(0.0, need_h - ta["client"][1])
                w += max(0.0, need_w - ta["client"][0])
            tp = r.get("text_preview")
            if isinstance(show, Text) and tp and type_ == "PreviewAny":
                h = max(h, tp["chrome_h"] + tp["pad_v"] + show.lines * tp["line_h"] + slack)
                w = max(w, tp["chrome_w"] + tp["pad_h"] + show.cols * tp["char_w"] + slack)
            im = r.get("images", {}).get(type_)
            if isinstance(show, Image) and im:
                h = max(h, im["chrome_h"] + show.h)
                w = max(w, im["chrome_w"] + show.w)
            best = [w, h] if best is None else [max(best[0], w), max(best[1], h)]
        if best is None:
            self.missing.add(type_)
            return None
        return [int(-(-best[0] // 1)), int(-(-(best[1] + slack) // 1))]


def _graph(nodes, links):
    ids = [n["id"] for n in nodes]
    srcs = {i: [] for i in ids}
    cons = {i: [] for i in ids}
    for link in links:
        _, s, _, d = link[:4]
        if s in srcs and d in srcs and s != d:
            if s not in srcs[d]:
                srcs[d].append(s)
            if d not in cons[s]:
                cons[s].append(d)
    return ids, srcs, cons


def ranks(nodes, links, columns=None):
    """Column of each node: longest path from the graph's sources (nodes sharing a ``columns`` key
    take the largest rank of their group, and everything downstream moves right with them); a node
    without inputs then moves to just left of its leftmost consumer."""
    ids, srcs, cons = _graph(nodes, links)
    columns = columns or {}
    rank = {i: 0 for i in ids}
    for _ in range(len(ids) + 2):   # longest path by relaxation (a DAG settles in <= len(ids) rounds)
        changed = False
        for i in ids:
            r = max([rank[s] + 1 for s in srcs[i]] + [rank[i]])
            if r != rank[i]:
                rank[i], changed = r, True
        for key in set(columns.values()):
            group = [i for i in ids if columns.get(i) == key]
            top = max(rank[i] for i in group)
            for i in group:
                if rank[i] != top:
                    rank[i], changed = top, True
        if not changed:
            break
    else:
        raise ValueError("workflow graph has a cycle")
    for i in ids:
        if not srcs[i] and cons[i] and i not in columns:
            rank[i] = max(0, min(rank[c] for c in cons[i]) - 1)
    return rank


def probe_image():
    """The sample image the shipped workflows load (workflows/metavsr_sample.png) as [1,H,W,3]."""
    import numpy as np
    import torch
    from PIL import Image as PILImage
    with PILImage.open(os.path.join(ROOT, "workflows", "metavsr_sample.png")) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)[None]


def _show(hint, probed):
    """What a node shows: a probed text wins over the hint; a probed image (h, w) keeps the hint's
    display width and takes its height from the image's aspect ratio."""
    if isinstance(probed, Text):
        return probed
    if isinstance(probed, tuple) and isinstance(hint, Image):
        h, w = probed
        return Image(hint.w, int(round(hint.w * h / max(w, 1))))
    return hint


def layout(wf, sizes, shown=None, **opts):
    """Size every node of ``wf`` (a Workflow) from ``sizes`` (NodeSizes) and place it: see the
    module docstring. ``shown``: probed content ({node id: Text | (h, w)}, see Workflow.probe)."""
    o = dict(LAYOUT, **opts)
    shown = shown or {}
    nodes = wf.nodes
    by_id = {n["id"]: n for n in nodes}
    for n in nodes:
        hint = wf._hints.get(n["id"], {})
        cls = wf.classes.get(n["type"])
        show = _show(hint.get("show"), shown.get(n["id"]))
        need = sizes.need(n["type"], n.get("title"), multiline_values(cls, n.get("widgets_values")) if cls else (),
                          show, o["slack"])
        if need is None:   # not measured yet: keep the builder's estimate; tools/measure_nodes.py records it
            need = n["size"]
        if getattr(cls, "NEEDS_WEIGHTS", False):
            need = [need[0], need[1] + o["error_room"]]
        if hint.get("size"):
            need = [max(a, b) for a, b in zip(need, hint["size"])]
        n["size"] = [int(need[0]), int(need[1])]
    rank = ranks(nodes, wf.links, {i: h["column"] for i, h in wf._hints.items() if h.get("column") is not None})
    _, srcs, cons = _graph(nodes, wf.links)
    # columns: x from the widest node of each (non-empty) rank
    cols = sorted(set(rank.values()))
    x, col_x = o["origin"][0], {}
    for r in cols:
        col_x[r] = x
        x += max(by_id[i]["size"][0] for i in rank if rank[i] == r) + o["hgap"]
    # bands in the order they first appear
    bands = []
    for n in nodes:
        b = wf._hints.get(n["id"], {}).get("band", 0)
        if b not in bands:
            bands.append(b)
    order = {n["id"]: k for k, n in enumerate(nodes)}
    # the source on a node's first connected input (loaders without inputs only when there is no
    # other): the node lines up with it and is ordered by it
    primary = {}
    for link in sorted(wf.links, key=lambda l: (not srcs[l[1]], l[3], l[4])):
        primary.setdefault(link[3], link[1])
    grouped = {i for i, h in wf._hints.items() if h.get("column") is not None}
    y = {}
    top = o["origin"][1] + TITLE_H
    for b in bands:
        members = [n["id"] for n in nodes if wf._hints.get(n["id"], {}).get("band", 0) == b]
        prev = {}
        for it in range(2):
            y_it = {}
            for r in cols:
                col = [i for i in members if rank[i] == r]
                key, desired = {}, {}
                for i in col:
                    ss = [y_it[s] + by_id[s]["size"][1] / 2 for s in srcs[i] if s in y_it]
                    cc = [prev[c] for c in cons[i] if c in prev]
                    p = primary.get(i)
                    if ss:                       # ordered by and aligned with the primary source
                        desired[i] = y_it[p] if p in y_it else min(y_it[s] for s in srcs[i] if s in y_it)
                        key[i] = desired[i] + 1e-3 * sum(ss) / len(ss)
                    elif cc:                     # a loader: beside its first consumer (known from the last pass)
                        key[i] = desired[i] = min(cc)
                    else:
                        key[i], desired[i] = -1.0, top
                    if i in grouped:             # a named column keeps the builder's order, stacked from the top
                        key[i], desired[i] = float(order[i]), top
                cur = top
                for i in sorted(col, key=lambda i: (i not in grouped, key[i], order[i])):
                    y_it[i] = max(desired[i], cur)
                    cur = y_it[i] + by_id[i]["size"][1] + o["vgap"] + TITLE_H
            prev = y_it
        # whole pixels, re-stacked so that rounding cannot create an overlap
        for r in cols:
            cur = top
            for i in sorted([i for i in members if rank[i] == r], key=lambda i: (prev[i], order[i])):
                y[i] = max(int(round(prev[i])), cur)
                cur = y[i] + by_id[i]["size"][1] + o["vgap"] + TITLE_H
        top = max(y[i] + by_id[i]["size"][1] for i in members) + o["band_gap"] + TITLE_H
    for n in nodes:
        hint = wf._hints.get(n["id"], {})
        n["pos"] = list(hint["pos"]) if hint.get("pos") else [int(col_x[rank[n["id"]]]), int(y[n["id"]])]
    if sizes.missing:
        import warnings
        warnings.warn("node types not in %s (run tools/measure_nodes.py): %s" % (
            os.path.relpath(SIZES_JSON, ROOT), ", ".join(sorted(sizes.missing))))
    return wf


# ---- checks on a saved workflow (tests/test_layout.py, tools/ui_check.py) ------------------------

def node_boxes(wf: dict, title_h=TITLE_H):
    """{node id: (x, y, w, h)} of each node as drawn, the title bar above ``pos`` included."""
    out = {}
    for n in wf["nodes"]:
        x, y = n["pos"][0], n["pos"][1]
        w, h = n["size"][0], n["size"][1]
        if (n.get("flags") or {}).get("collapsed"):
            h = 0
        out[n["id"]] = (x, y - title_h, w, h + title_h)
    return out


def overlapping_pairs(boxes: dict, tol=0.5):
    """[(id_a, id_b, overlap w, overlap h)] for every pair of boxes that overlap."""
    ids, res = list(boxes), []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            (ax, ay, aw, ah), (bx, by, bw, bh) = boxes[a], boxes[b]
            w = min(ax + aw, bx + bw) - max(ax, bx)
            h = min(ay + ah, by + bh) - max(ay, by)
            if w > tol and h > tol:
                res.append((a, b, w, h))
    return res


def backward_links(wf: dict):
    """Links whose target node does not sit right of its source node's box (the wire would run
    right to left): [(link id, source id, target id)]."""
    nodes = {n["id"]: n for n in wf["nodes"]}
    res = []
    for link in wf.get("links") or []:
        lid, s, _, d = link[:4]
        if s in nodes and d in nodes and nodes[d]["pos"][0] < nodes[s]["pos"][0] + nodes[s]["size"][0]:
            res.append((lid, s, d))
    return res


def undersized(wf: dict, sizes: NodeSizes, classes: dict):
    """[(node id, type, saved size, needed size)] for nodes saved smaller than the frontend needs
    (measured size, title, multiline text); types without a measurement are reported with None."""
    res = []
    for n in wf["nodes"]:
        cls = classes.get(n["type"])
        need = sizes.need(n["type"], n.get("title"), multiline_values(cls, n.get("widgets_values")) if cls else ())
        if need is None or n["size"][0] + 0.5 < need[0] or n["size"][1] + 0.5 < need[1]:
            res.append((n["id"], n["type"], list(n["size"]), need))
    return res
