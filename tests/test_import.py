"""Importing the pack registers every node family and loads no model and compiles nothing."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import sys, time
sys.path.insert(0, %r)
t0 = time.perf_counter()
from _pack import load_pack
pack = load_pack("metavsr_probe")
elapsed = time.perf_counter() - t0
from metavsr_probe.nodes import IMPORT_ERRORS
assert not IMPORT_ERRORS, IMPORT_ERRORS
import numba.core.registry
compiled = []
for name, mod in list(sys.modules.items()):
    if not name.startswith("metavsr_probe"):
        continue
    for attr in vars(mod).values():
        if isinstance(attr, numba.core.registry.CPUDispatcher) and attr.signatures:
            compiled.append(f"{name}.{attr.__name__}")
assert not compiled, f"compiled at import: {compiled}"
import torch
big = [o for o in __import__("gc").get_objects() if isinstance(o, torch.nn.Module)]
assert not big, f"modules built at import: {[type(o).__name__ for o in big][:5]}"
print(len(pack.NODE_CLASS_MAPPINGS), round(elapsed, 2))
"""


def test_import_is_light_and_complete():
    out = subprocess.run([sys.executable, "-c", PROBE % ROOT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    n, _seconds = out.stdout.split()
    assert int(n) >= 10


def test_numba_cache_shared_between_import_names(tmp_path):
    """The pack imported as ``metavsr`` (scripts, tests) and under another name (ComfyUI loads it by
    folder path) shares one on-disk numba cache: kernels that call other kernels still load."""
    code = ("import sys; sys.path.insert(0, %r); from _pack import load_pack; p = load_pack(%r);"
            "import numpy as np; m = sys.modules[%r + '.models.codec.jbig2'];"
            "b = (np.random.default_rng(0).random((40, 50)) < 0.1).astype(np.uint8);"
            "assert (m.decode(m.encode(b, template=0)) == b).all();"
            "q = sys.modules[%r + '.models.codec.bitdepth'];"
            "q.quantize(np.random.default_rng(0).random((1, 8, 8, 3)), 2); print('ok')")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    for name in ("metavsr", "custom_nodes_pack", "metavsr", "custom_nodes_pack"):
        out = subprocess.run([sys.executable, "-c", code % (ROOT, name, name, name)], env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    assert any(tmp_path.rglob("*.nbi"))  # the cache was really used


def test_pyproject_matches_requirements():
    """The registry metadata ([project] dependencies) lists exactly requirements.txt, and neither pins torch."""
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        meta = tomllib.load(f)
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        reqs = [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]
    assert sorted(meta["project"]["dependencies"]) == sorted(reqs)
    assert not any(r.lower().startswith("torch") for r in reqs)
    assert "tool" in meta and "comfy" in meta["tool"]


MAX_TITLE = 30  # characters: a default-width node (about 300 px at 14 px type) shows the whole title


def test_every_node_documents_inputs_and_outputs():
    """V1 node API as the frontend shows it: a description, a tooltip on every input and every output,
    and a display name short enough not to be cut off on a default-width node."""
    import metavsr
    problems = []
    for nid, cls in metavsr.NODE_CLASS_MAPPINGS.items():
        if not getattr(cls, "DESCRIPTION", ""):
            problems.append(f"{nid}: no DESCRIPTION")
        for section, inputs in cls.INPUT_TYPES().items():
            for name, spec in (inputs or {}).items():
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if not opts.get("tooltip"):
                    problems.append(f"{nid}.{name}: no tooltip")
        tips = getattr(cls, "OUTPUT_TOOLTIPS", None)
        if cls.RETURN_TYPES and (not tips or len(tips) != len(cls.RETURN_TYPES) or not all(tips)):
            problems.append(f"{nid}: OUTPUT_TOOLTIPS {tips!r} do not match RETURN_TYPES {cls.RETURN_TYPES}")
        title = metavsr.NODE_DISPLAY_NAME_MAPPINGS.get(nid, "")
        if not title.startswith("MetaVSR ") or len(title) > MAX_TITLE:
            problems.append(f"{nid}: display name {title!r} (must start with 'MetaVSR ', at most {MAX_TITLE} chars)")
    assert not problems, "\n".join(problems)
