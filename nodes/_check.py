"""Input validation shared by all nodes: every error names the input and says how to fix it."""
import math

import torch


class MetaVSRInputError(ValueError):
    """Bad node input; the message names the input and the fix."""


def image(name: str, img, channels=(3,), min_size: int = 1) -> torch.Tensor:
    """Check an IMAGE ``[B,H,W,C]`` float 0..1 and return it as contiguous float32.

    ``channels`` lists the accepted C; 1- and 4-channel inputs get a hint to convert.
    """
    if not isinstance(img, torch.Tensor):
        raise MetaVSRInputError(f"{name}: expected an IMAGE tensor [B,H,W,C], got {type(img).__name__}.")
    if img.ndim == 3 and img.shape[-1] in (1, 3, 4):
        raise MetaVSRInputError(f"{name}: got shape {tuple(img.shape)}; an IMAGE needs a batch axis "
                                f"[B,H,W,C] (unsqueeze(0)).")
    if img.ndim != 4:
        raise MetaVSRInputError(f"{name}: expected [B,H,W,C], got shape {tuple(img.shape)}.")
    b, h, w, c = img.shape
    if b == 0:
        raise MetaVSRInputError(f"{name}: the batch is empty (0 frames); connect a node that outputs images.")
    if c not in channels:
        hint = (" It has an alpha channel: drop it (e.g. 'Convert Image' / split RGBA) before this node."
                if c == 4 else " It is single-channel: expand it to RGB (repeat the channel 3 times)."
                if c == 1 else "")
        raise MetaVSRInputError(f"{name}: expected {' or '.join(map(str, channels))} channels, got {c}.{hint}")
    if h < min_size or w < min_size:
        raise MetaVSRInputError(f"{name}: {w}x{h} is too small; this node needs at least "
                                f"{min_size}x{min_size} pixels.")
    img = img.float()
    if not torch.isfinite(img).all():
        raise MetaVSRInputError(f"{name}: contains NaN or Inf values; check the node that produced it.")
    lo, hi = float(img.min()), float(img.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise MetaVSRInputError(f"{name}: values must lie in 0..1 (found {lo:.3g}..{hi:.3g}); "
                                f"IMAGE tensors in ComfyUI are normalised floats.")
    return img.clamp(0, 1).contiguous()


def mask(name: str, m, binary: bool = False) -> torch.Tensor:
    """Check a MASK ``[B,H,W]`` float 0..1 (a single ``[H,W]`` is promoted) as :func:`image` checks
    an IMAGE: finite, in 0..1; with ``binary`` only 0 and 1."""
    if not isinstance(m, torch.Tensor):
        raise MetaVSRInputError(f"{name}: expected a MASK tensor [B,H,W], got {type(m).__name__}.")
    if m.ndim == 2:
        m = m.unsqueeze(0)
    if m.ndim != 3:
        raise MetaVSRInputError(f"{name}: expected a MASK [B,H,W], got shape {tuple(m.shape)}.")
    if m.shape[0] == 0 or m.shape[1] == 0 or m.shape[2] == 0:
        raise MetaVSRInputError(f"{name}: the mask is empty {tuple(m.shape)}.")
    m = m.float()
    finite = torch.isfinite(m)
    if not bool(finite.all()):
        raise MetaVSRInputError(f"{name}: contains {int((~finite).sum())} NaN or Inf values; check the "
                                f"node that produced the mask.")
    lo, hi = float(m.min()), float(m.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise MetaVSRInputError(f"{name}: values must lie in 0..1 (found {lo:.3g}..{hi:.3g}); MASK "
                                f"tensors in ComfyUI are normalised floats.")
    if binary:
        bad = ~((m == 0) | (m == 1))
        if bool(bad.any()):
            raise MetaVSRInputError(f"{name}: a bi-level mask must hold only 0 and 1 "
                                    f"({int(bad.sum())} other values); threshold it first "
                                    f"(e.g. a Canny metadata node, or mask > 0.5).")
    return m.clamp(0, 1).contiguous()


MAX_OUTPUT_BYTES = 8 << 30  # what one node output may take; larger ones are refused before allocating


def output_size(name: str, shape, fix: str, itemsize: int = 4, what: str = "output"):
    """Refuse an output of ``shape`` (float32 by default) above :data:`MAX_OUTPUT_BYTES` before it
    is allocated, naming the input that makes it that large and the fix."""
    n = 1
    for d in shape:
        n *= int(d)
    if n * itemsize > MAX_OUTPUT_BYTES:
        dims = "x".join(str(int(d)) for d in shape)
        raise MetaVSRInputError(f"{name}: the {what} would be {dims} ({n * itemsize / 2**30:.1f} GiB), over "
                                f"the {MAX_OUTPUT_BYTES >> 30} GiB one node output may take; {fix}.")


def number(name: str, value, lo=None, hi=None, integer: bool = False):
    """Check a scalar widget value against [lo, hi] (inclusive) and finiteness."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MetaVSRInputError(f"{name}: expected a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise MetaVSRInputError(f"{name}: must be finite, got {value!r}.")
    if integer and v != int(v):
        raise MetaVSRInputError(f"{name}: must be a whole number, got {value!r}.")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
        raise MetaVSRInputError(f"{name}: {value!r} is out of range; use a value in {rng}.")
    return int(v) if integer else v


def divisible(name: str, img: torch.Tensor, factor: int):
    """Require H and W to be multiples of ``factor`` and at least ``factor``."""
    _, h, w, _ = img.shape
    if h < factor or w < factor:
        raise MetaVSRInputError(f"{name}: {w}x{h} is smaller than the factor {factor}; use a larger "
                                f"image or a smaller factor.")
    if h % factor or w % factor:
        raise MetaVSRInputError(f"{name}: {w}x{h} is not divisible by {factor}; crop or pad it to "
                                f"{w - w % factor}x{h - h % factor} (or {-(-w // factor) * factor}x"
                                f"{-(-h // factor) * factor}) first.")
