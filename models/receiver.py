"""The interface every receiver (super-resolution model) implements, so one node family serves all.

A receiver takes decoded LR frames plus optional metadata maps at HR size and returns HR frames:

    lr:        [T,H,W,3] float32 0..1 (CPU tensor)
    metadata:  {kind: [T,sH,sW,C] float32 0..1}, kinds drawn from ``model.metadata_kinds``
               (``"edges"``: C=1, 1 = edge; ``"depth"``: C=1, near = 1); missing kinds mean
               "not transmitted" and the model runs pixel-only for them
    progress:  optional ``(done, total)`` callback; receivers call it once per tile/chunk/step
    returns    [T,sH,sW,3] float32 0..1 (CPU tensor), s = ``model.scale``
"""
from typing import Callable, Dict, Optional, Protocol, Tuple, runtime_checkable

import torch

SR_MODEL_TYPE = "METAVSR_SR_MODEL"  # ComfyUI socket type name
METADATA_KINDS = ("edges", "depth")


@runtime_checkable
class SRModel(Protocol):
    name: str
    scale: int
    metadata_kinds: Tuple[str, ...]

    def upscale(self, lr: torch.Tensor, metadata: Optional[Dict[str, torch.Tensor]] = None,
                progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
        ...
