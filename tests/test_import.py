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
