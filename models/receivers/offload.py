"""Offload modes shared by the receivers with large models (CogVideoX, STAR).

- ``none``: every model lives on the compute device;
- ``model``: models live on the offload device (the CPU) and move to the compute device for their
  stage only (:func:`on_device`), so two large models never sit in device memory together;
- ``sequential``: as ``model``, and the largest model's stages (transformer blocks, U-Net stages)
  move one at a time through forward hooks (:func:`stage_hooks`): least memory, slowest.
"""
import contextlib
from typing import Iterable, List

import torch

MODES = ("none", "model", "sequential")


def stage_hooks(stages: Iterable[torch.nn.Module], device, home) -> List:
    """Hooks that move each stage to ``device`` for its forward pass and back to ``home`` after it;
    returns the handles (``handle.remove()`` undoes them)."""
    dev, off = torch.device(device), torch.device(home)
    handles = []
    for stage in stages:
        handles.append(stage.register_forward_pre_hook(lambda m, a: m.to(dev) and None))
        handles.append(stage.register_forward_hook(lambda m, a, o: m.to(off) and None))
    return handles


@contextlib.contextmanager
def on_device(modules: Iterable[torch.nn.Module], device, home, active: bool = True):
    """Move ``modules`` to ``device`` for the block, then back to ``home`` (and give the device's cache
    back); a no-op when not ``active`` (offload ``none``)."""
    if not active:
        yield
        return
    modules = list(modules)
    for m in modules:
        m.to(device)
    try:
        yield
    finally:
        for m in modules:
            m.to(home)
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
