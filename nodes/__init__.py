"""ComfyUI adapters. Every module here that defines ``NODE_CLASS_MAPPINGS`` is registered.

Modules are discovered rather than listed so that each node family owns exactly one file.
"""
import importlib
import pkgutil

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name.startswith("_"):
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    for _key, _cls in getattr(_mod, "NODE_CLASS_MAPPINGS", {}).items():
        if _key in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"MetaVSR: node id {_key!r} defined twice (second in nodes/{_info.name}.py)")
        NODE_CLASS_MAPPINGS[_key] = _cls
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_mod, "NODE_DISPLAY_NAME_MAPPINGS", {}))
