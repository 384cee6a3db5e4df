"""Checks shared by every weight loader: does a file hold exactly the tensors a model expects?

Loaders read ``{name: (shape, dtype)}`` from a file's header (nothing is loaded) and compare it with
the model's ``{name: shape}`` here, so a missing, extra or mis-shaped tensor is reported the same way
everywhere, before random initial values could stand in for it.
"""
from typing import Optional

import torch

# safetensors dtype names that are floating point (the header spelling)
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E4M3FN", "F8_E5M2FNUZ", "F8_E4M3FNUZ"}
REPORT = 3  # keys shown per category in a mismatch report


def is_float(dtype) -> bool:
    """A torch dtype or a safetensors dtype name is floating point."""
    return dtype.is_floating_point if isinstance(dtype, torch.dtype) else str(dtype) in FLOAT_DTYPES


def mismatch_report(expected: dict, held: dict, limit: int = REPORT) -> Optional[str]:
    """None if ``held`` ({name: (shape, dtype)}) has exactly the keys and shapes of ``expected``
    ({name: shape}) in floating point; else a sentence listing the first few missing / unexpected /
    mis-shaped / non-float keys with counts."""
    missing = sorted(set(expected) - set(held))
    unexpected = sorted(set(held) - set(expected))
    shaped = sorted(k for k in set(expected) & set(held) if tuple(held[k][0]) != tuple(expected[k]))
    typed = sorted(k for k in set(expected) & set(held) if k not in shaped and not is_float(held[k][1]))

    def eg(keys, fmt=str):
        more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
        return ", ".join(fmt(k) for k in keys[:limit]) + more
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({eg(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({eg(unexpected)})")
    if shaped:
        parts.append(f"{len(shaped)} with the wrong shape ("
                     + eg(shaped, lambda k: f"{k}: file {list(held[k][0])}, expected {list(expected[k])}") + ")")
    if typed:
        parts.append(f"{len(typed)} not floating point ({eg(typed, lambda k: f'{k}: {held[k][1]}')})")
    return "; ".join(parts) or None
