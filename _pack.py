"""Load this folder as the Python package ``metavsr`` from scripts and tests.

Inside ComfyUI the pack is imported by its folder name (``custom_nodes/<folder>``); outside it,
scripts and pytest need the same relative-import layout under a stable name. Importing the package
loads no model and compiles nothing.
"""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def load_pack(name: str = "metavsr"):
    """Import the repo root as package ``name`` (idempotent) and return the module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
