"""Rate control for bi-level edge metadata: fewer edge bits for a sweep to trade against quality.

Three knobs, applied at the sender before JBIG2 coding:
- sparsity: Canny thresholds or a target edge density (``models.metadata.canny``, not here);
- thinning: edges cut to one-pixel-wide lines (skimage's morphological thinning), which removes
  the 2-pixel-thick stretches Canny leaves and every pixel JBIG2 would pay for there;
- resolution: the map coded at 1/2 or 1/4 size and nearest-neighbour upscaled at the receiver.

Shapes: edge maps are ``[H,W]`` or ``[T,H,W]`` uint8/bool, 1 = edge.
"""
import numpy as np
from skimage.morphology import thin as _thin

FACTORS = (1, 2, 4)
REDUCE_METHODS = ("any", "nearest")


def _stack(edges) -> np.ndarray:
    arr = np.asarray(edges)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ValueError(f"edge maps must be [H,W] or [T,H,W], got shape {arr.shape}")
    return arr != 0


def thin(edges) -> np.ndarray:
    """One-pixel-wide edges: ``[T,H,W]`` (or ``[H,W]``) -> same shape uint8, a subset of the input."""
    arr = _stack(edges)
    out = np.stack([_thin(frame) for frame in arr]).astype(np.uint8)
    return out if np.ndim(edges) == 3 else out[0]


def reduce(edges, factor: int, method: str = "any") -> np.ndarray:
    """Code-side resolution cut: ``[T,H,W]`` -> ``[T,ceil(H/f),ceil(W/f)]`` uint8.

    method "any": a low-res pixel is an edge if any pixel of its f x f block is (block maximum), so
    thin lines survive; "nearest": the block's top-left pixel (plain decimation, cheaper maps but
    broken lines). Edge blocks are padded with zeros.
    """
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {FACTORS}, got {factor!r}")
    if method not in REDUCE_METHODS:
        raise ValueError(f"method must be one of {REDUCE_METHODS}, got {method!r}")
    arr = _stack(edges)
    if factor == 1:
        out = arr.astype(np.uint8)
    elif method == "nearest":
        out = arr[:, ::factor, ::factor].astype(np.uint8)
    else:
        t, h, w = arr.shape
        hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
        pad = np.zeros((t, hp, wp), bool)
        pad[:, :h, :w] = arr
        out = pad.reshape(t, hp // factor, factor, wp // factor, factor).any(axis=(2, 4)).astype(np.uint8)
    return out if np.ndim(edges) == 3 else out[0]


def upscale(coded, factor: int, size) -> np.ndarray:
    """Receiver side: nearest-neighbour ``[T,h,w]`` -> ``[T,H,W]`` with ``size = (H, W)``, each
    low-res pixel covering its f x f block (cropped at the right/bottom edge)."""
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {FACTORS}, got {factor!r}")
    arr = _stack(coded)
    h, w = int(size[0]), int(size[1])
    if arr.shape[1] != -(-h // factor) or arr.shape[2] != -(-w // factor):
        raise ValueError(f"a {arr.shape[2]}x{arr.shape[1]} map does not upscale by {factor} to {w}x{h}")
    out = arr.repeat(factor, axis=1).repeat(factor, axis=2)[:, :h, :w].astype(np.uint8)
    return out if np.ndim(coded) == 3 else out[0]


def prepare(edges, thinning: bool = False, factor: int = 1, method: str = "any") -> np.ndarray:
    """Sender: the map that is actually coded (thinned at full resolution first, then reduced)."""
    arr = thin(edges) if thinning else _stack(edges).astype(np.uint8)
    if np.ndim(edges) == 2 and arr.ndim == 3:
        arr = arr[0]
    return reduce(arr, factor, method)
