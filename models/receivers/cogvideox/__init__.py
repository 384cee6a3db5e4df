"""CogVideoX one-step super-resolution with MetaSR metadata tokens (DOVE-compatible).

``load(folder, dtype=..., device=..., offload=...)`` returns a :class:`MetaSRPipeline`;
``pipeline(frames [T,H,W,3], metadata=[maps [T,4H,4W,C]]) -> [T,4H,4W,3]``. Importing this package
imports no diffusers; loading does.
"""
from .loading import MetaSRModelError, check_folder, load
from .pipeline import MetaSRInputError, MetaSRPipeline

__all__ = ["load", "check_folder", "MetaSRPipeline", "MetaSRInputError", "MetaSRModelError"]
