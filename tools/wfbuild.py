"""Build ComfyUI UI-format workflow JSON (the format the frontend saves and loads) from Python.

    wf = Workflow(classes)                     # {node type: class with INPUT_TYPES}
    img = wf.node("LoadImage", image="x.png", pos=(0, 0))
    deg = wf.node("MetaVSRChannelDegrade", images=img[0], regime="HN", pos=(400, 0))
    wf.save("workflows/demo.json")

Keyword arguments that are outputs (``node[i]`` or ``node["NAME"]``) become links; the rest are
widget values (missing widgets take their defaults). Widget order, seed control values and socket
types come from the classes, so a saved workflow matches what the frontend would write.
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
        self.nodes, self.links, self._objs = [], [], {}

    def node(self, type_, pos=(0, 0), size=None, title=None, **inputs):
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
        if size is None:
            size = (340, 60 + 26 * (len(ins) + len(widgets) + len(outs)))
        entry = {"id": nid, "type": type_, "pos": list(pos), "size": list(size), "flags": {}, "order": nid - 1,
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
                "extra": {"ds": {"scale": 0.8, "offset": [40, 40]}}, "version": 0.4}

    def save(self, path):
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=1)
            f.write("\n")


def pack_classes() -> dict:
    """Every MetaVSR node plus the core stand-ins of ``tools/comfy_core.py``, keyed by node type."""
    from _pack import load_pack
    from . import comfy_core
    return {**comfy_core.NODE_CLASS_MAPPINGS, **load_pack().NODE_CLASS_MAPPINGS}


def save_workflow(wf: "Workflow", name: str):
    """Write ``wf`` as ``workflows/<name>`` in the repository."""
    wf.save(os.path.join(ROOT, "workflows", name))
