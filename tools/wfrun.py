"""Validate and execute UI-format workflows against node classes, without a ComfyUI server.

Execution follows ComfyUI's rules for lists: a node without ``INPUT_IS_LIST`` runs once per item
of its longest list input (shorter inputs repeat their last item), outputs flagged in
``OUTPUT_IS_LIST`` are flattened, and ``{"ui": ..., "result": ...}`` returns are unwrapped.
"""
from .wfbuild import input_specs, is_widget

MODE_MUTED, MODE_BYPASS = 2, 4


def object_info(classes: dict) -> dict:
    """The subset of ComfyUI's /object_info that ``ui_to_api.convert`` reads."""
    info = {}
    for name, cls in classes.items():
        types = cls.INPUT_TYPES()
        info[name] = {"input": types, "input_order": {k: list(v) for k, v in types.items() if v},
                      "output": list(cls.RETURN_TYPES), "display_name": name}
    return info


def _types_match(a, b) -> bool:
    return a == "*" or b == "*" or a == b or (a == "COMBO" or b == "COMBO") or \
        set(str(a).split(",")) & set(str(b).split(","))


def validate(wf: dict, classes: dict, frontend_only=frozenset()) -> list:
    """Return a list of problems (empty when the workflow is consistent with the classes)."""
    problems = []
    nodes = {n["id"]: n for n in wf["nodes"]}
    for n in wf["nodes"]:
        t = n["type"]
        if t in frontend_only:
            continue
        if t not in classes:
            problems.append(f"node {n['id']}: unknown type {t}")
            continue
        cls = classes[t]
        specs = input_specs(cls)
        widgets = [(name, spec) for name, spec, _ in specs if is_widget(spec)]
        values = list(n.get("widgets_values") or [])
        i = 0
        for name, spec in widgets:
            if i >= len(values):
                problems.append(f"node {n['id']} {t}: missing widget value for {name}")
                break
            v = values[i]
            i += 1
            typ = spec[0]
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if typ == "INT" and (opts.get("control_after_generate") or name in ("seed", "noise_seed")):
                if i < len(values) and values[i] in ("fixed", "increment", "decrement", "randomize"):
                    i += 1
            if isinstance(typ, list):
                if v not in typ and not (opts.get("image_upload") or opts.get("video_upload")):
                    problems.append(f"node {n['id']} {t}: {name}={v!r} not in {typ}")
            elif typ in ("INT", "FLOAT"):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ == "INT" and v != int(v)):
                    problems.append(f"node {n['id']} {t}: {name}={v!r} is not {typ}")
                elif ("min" in opts and v < opts["min"]) or ("max" in opts and v > opts["max"]):
                    problems.append(f"node {n['id']} {t}: {name}={v!r} outside {opts.get('min')}..{opts.get('max')}")
            elif typ == "BOOLEAN" and not isinstance(v, bool):
                problems.append(f"node {n['id']} {t}: {name}={v!r} is not BOOLEAN")
            elif typ == "STRING" and not isinstance(v, str):
                problems.append(f"node {n['id']} {t}: {name}={v!r} is not STRING")
        if i < len(values):
            problems.append(f"node {n['id']} {t}: {len(values) - i} surplus widget values {values[i:]}")
        linked = {inp["name"] for inp in n.get("inputs") or [] if inp.get("link") is not None}
        for name, spec, required in specs:
            if required and not is_widget(spec) and name not in linked:
                problems.append(f"node {n['id']} {t}: required input {name} is not connected")
    for link in wf.get("links") or []:
        lid, src, sslot, dst, dslot, ltype = link[:6]
        if src not in nodes or dst not in nodes:
            problems.append(f"link {lid}: dangling")
            continue
        s, d = nodes[src], nodes[dst]
        if s["type"] in frontend_only or d["type"] in frontend_only:
            continue
        if s["type"] not in classes or d["type"] not in classes:
            continue
        stype = classes[s["type"]].RETURN_TYPES[sslot]
        dinp = (d.get("inputs") or [])[dslot]
        if dinp.get("link") != lid:
            problems.append(f"link {lid}: target slot {dslot} of node {dst} does not point back to it")
        spec = dict((nm, sp) for nm, sp, _ in input_specs(classes[d["type"]])).get(
            (dinp.get("widget") or {}).get("name") or dinp["name"])
        if spec is None:
            problems.append(f"link {lid}: node {dst} {d['type']} has no input {dinp['name']}")
            continue
        dtype = "COMBO" if isinstance(spec[0], list) else spec[0]
        if not _types_match(stype, dtype):
            problems.append(f"link {lid}: {s['type']} output {stype} -> {d['type']}.{dinp['name']} ({dtype})")
        if lid not in (s["outputs"][sslot].get("links") or []):
            problems.append(f"link {lid}: origin output of node {src} does not list it")
    return problems


def execute(prompt: dict, classes: dict) -> dict:
    """Run an API-format prompt; returns {node id: (outputs as lists, ui list)}."""
    done = {}

    def run(nid):
        if nid in done:
            return done[nid]
        node = prompt[nid]
        cls = classes[node["class_type"]]
        args = {}
        for k, v in node["inputs"].items():
            if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and v[0] in prompt:
                args[k] = run(v[0])[0][v[1]]
            else:
                args[k] = [v["__value__"] if isinstance(v, dict) and "__value__" in v else v]
        obj = cls()
        fn = getattr(obj, cls.FUNCTION)
        n_out = len(cls.RETURN_TYPES)
        outs, uis = [[] for _ in range(n_out)], []
        out_is_list = getattr(cls, "OUTPUT_IS_LIST", (False,) * n_out)
        calls = [args] if getattr(cls, "INPUT_IS_LIST", False) else [
            {k: v[min(i, len(v) - 1)] for k, v in args.items()}
            for i in range(max([len(v) for v in args.values()] or [1]))]
        for kw in calls:
            res = fn(**kw)
            if isinstance(res, dict):
                uis.append(res.get("ui"))
                res = res.get("result", ())
            for j in range(n_out):
                if out_is_list[j]:
                    outs[j].extend(res[j])
                else:
                    outs[j].append(res[j])
        done[nid] = (outs, uis)
        return done[nid]

    for nid in prompt:
        run(nid)
    return done
