"""ComfyUI adapters. Every module here that defines ``NODE_CLASS_MAPPINGS`` is registered.

Modules are discovered rather than listed so that each node family owns exactly one file. A family
whose optional dependency is missing is reported and skipped instead of taking the whole pack down
(``IMPORT_ERRORS`` keeps the reasons; the test-suite requires it to be empty).
"""
import importlib
import logging
import pkgutil

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
IMPORT_ERRORS = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name.startswith("_"):
        continue
    try:
        _mod = importlib.import_module(f"{__name__}.{_info.name}")
    except ImportError as _exc:
        IMPORT_ERRORS[_info.name] = _exc
        logging.getLogger("MetaVSR").warning(
            "MetaVSR: the %s nodes are unavailable (%s); install the pack's requirements.txt", _info.name, _exc)
        continue
    for _key, _cls in getattr(_mod, "NODE_CLASS_MAPPINGS", {}).items():
        if _key in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"MetaVSR: node id {_key!r} defined twice (second in nodes/{_info.name}.py)")
        NODE_CLASS_MAPPINGS[_key] = _cls
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_mod, "NODE_DISPLAY_NAME_MAPPINGS", {}))
