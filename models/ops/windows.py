"""Windows over a video: tiles, frame chunks and long-video segments, and how results come back.

Every receiver and every batched metric cuts its input with these functions, so there is one notion
of a window in the pack:

- :func:`starts` — window offsets along one axis with a given overlap (chunks, segments, batches);
- :func:`plan` / :func:`weight` / :func:`blend` — overlapping 3-D boxes ``(t0, t1, h0, h1, w0, w1)``
  whose results cross-fade with linear ramps over every overlap, never a hard cut (DOVE's own tiler
  hard-cuts, and users see seams there);
- :func:`margin_tiles` — tiles that carry a margin wider than a network's reach and keep only their
  core, so the result is exactly the whole-frame result (the embedded receiver);
- :func:`chunk_weights` — 1-D frame chunks whose cross-fade weights sum to one (samplers chunked
  in time);
- :func:`batches` — plain consecutive batches with an optional shared overlap (metric device batches).
"""
import math
from typing import Callable, List, Sequence, Tuple

import torch


def starts(length: int, size: int, overlap: int, unit: int = 1) -> list:
    """Start offsets of windows of ``size`` covering ``[0, length)`` with at least ``overlap`` shared
    positions between neighbours; every start is a multiple of ``unit``. ``size <= 0`` or
    ``size >= length`` gives one window."""
    if size <= 0 or size >= length:
        return [0]
    if not 0 <= overlap < size:
        raise ValueError(f"window overlap {overlap} must be in 0..{size - 1}")
    n = math.ceil((length - size) / (size - overlap)) + 1
    last = length - size
    out = sorted({min(last, int(round(i * last / (n - 1) / unit)) * unit) for i in range(n)})
    if out[-1] != last:  # rounding to the unit may stop short of the end
        out.append(last)
    return out


def ramp(n: int, ramp_len: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """[n] float32 weights: linear ramps of ``ramp_len`` at the ends that touch a neighbour."""
    w = torch.ones(n)
    if ramp_len > 0:
        r = torch.arange(1, ramp_len + 1, dtype=torch.float32) / (ramp_len + 1)
        k = min(ramp_len, n)
        if not at_start:
            w[:k] = torch.minimum(w[:k], r[:k])
        if not at_end:
            w[n - k:] = torch.minimum(w[n - k:], r[:k].flip(0))
    return w


def plan(frames: int, height: int, width: int, chunk: int, chunk_overlap: int, tile_h: int,
         tile_w: int, tile_overlap: int, unit_t: int = 1, unit_hw: int = 2) -> list:
    """All windows (time-major) over a latent ``[frames, height, width]`` grid.

    Sizes and overlaps are in latent units; a size of 0 means "whole axis". Window sizes are
    rounded down to the unit (patch size) so every window patchifies, and overlaps up to it.
    Returns ``(boxes, (overlap_t, overlap_h, overlap_w))``.
    """
    def fit(size, length, unit):
        if size <= 0 or size >= length:
            return length
        return min(length, max(2 * unit, size // unit * unit))  # room for a one-patch overlap

    def lap(overlap, size, length, unit):
        if size >= length:
            return 0
        # at least one patch of overlap, so neighbours always cross-fade (never a hard cut)
        return min(max(unit, -(-overlap // unit) * unit), size - unit)

    ct, th, tw = fit(chunk, frames, unit_t), fit(tile_h, height, unit_hw), fit(tile_w, width, unit_hw)
    co, oh, ow = lap(chunk_overlap, ct, frames, unit_t), lap(tile_overlap, th, height, unit_hw), \
        lap(tile_overlap, tw, width, unit_hw)
    boxes = []
    for t0 in starts(frames, ct, co, unit_t):
        for h0 in starts(height, th, oh, unit_hw):
            for w0 in starts(width, tw, ow, unit_hw):
                boxes.append((t0, t0 + ct, h0, h0 + th, w0, w0 + tw))
    return boxes, (co, oh, ow)


def weight(box, full, overlaps) -> torch.Tensor:
    """[t, h, w] blending weight of one window ``box`` inside the ``full = (F, H, W)`` grid."""
    (t0, t1, h0, h1, w0, w1), (F, H, W) = box, full
    wt = ramp(t1 - t0, overlaps[0], t0 == 0, t1 == F)
    wh = ramp(h1 - h0, overlaps[1], h0 == 0, h1 == H)
    ww = ramp(w1 - w0, overlaps[2], w0 == 0, w1 == W)
    return wt[:, None, None] * wh[None, :, None] * ww[None, None, :]


def scaled(boxes: Sequence[tuple], overlaps, s_hw: int, s_t: int = 1):
    """A plan's boxes and overlaps on a grid ``s_hw`` times larger in space (``s_t`` in time): what each
    window's result covers when a window of the input becomes ``s`` times larger (a decoder, an
    upscaler). Divide a scaled box by ``s`` to get the input window back."""
    big = [(t0 * s_t, t1 * s_t, h0 * s_hw, h1 * s_hw, w0 * s_hw, w1 * s_hw) for t0, t1, h0, h1, w0, w1 in boxes]
    return big, (overlaps[0] * s_t, overlaps[1] * s_hw, overlaps[2] * s_hw)


def blend(fn: Callable, boxes: Sequence[tuple], full: Tuple[int, int, int], overlaps, out: torch.Tensor,
          dims: Tuple[int, int, int], progress: Callable = None) -> torch.Tensor:
    """Run ``fn(box)`` on every box and cross-fade the results into ``out`` in place.

    boxes:    from :func:`plan`, over a grid ``full = (F, H, W)`` with ``overlaps`` from it too.
    out:      the result tensor (zeros); ``dims`` names its frame, height and width axes (in that
              order), and ``fn(box)`` returns the slice of ``out`` the box covers (same layout).
    progress: ``progress(i + 1, len(boxes))`` after each box.
    Returns ``out`` (weights summed and divided out; a single box is copied straight).
    """
    dt, dh, dw = dims
    if not dt < dh < dw:
        raise ValueError(f"blend: dims must name the frame, height and width axes in order, got {dims}")
    if len(boxes) == 1:
        y = fn(boxes[0])
        out.copy_(y.to(out.dtype))
        if progress is not None:
            progress(1, 1)
        return out
    wshape = [1] * out.ndim
    wsum = torch.zeros([full[0] if i == dt else full[1] if i == dh else full[2] if i == dw else 1
                        for i in range(out.ndim)], dtype=torch.float32, device=out.device)
    for i, box in enumerate(boxes):
        t0, t1, h0, h1, w0, w1 = box
        wt = weight(box, full, overlaps).to(out.device)
        shape = list(wshape)
        shape[dt], shape[dh], shape[dw] = t1 - t0, h1 - h0, w1 - w0
        wt = wt.reshape(shape)
        idx = [slice(None)] * out.ndim
        idx[dt], idx[dh], idx[dw] = slice(t0, t1), slice(h0, h1), slice(w0, w1)
        out[tuple(idx)] += fn(box).to(out.dtype) * wt
        wsum[tuple(idx)] += wt
        if progress is not None:
            progress(i + 1, len(boxes))
    return out.div_(wsum)


def margin_tiles(length: int, size: int, margin: int) -> List[Tuple[int, int, int, int]]:
    """Tiles of ``size`` along an axis of ``length``, each read with ``margin`` extra on both sides
    (clipped at the ends): ``(core0, core1, read0, read1)``. A network whose output at a pixel depends
    on at most ``margin`` neighbours gives, on the core, exactly what the whole axis would give."""
    size = max(1, int(size))
    return [(a, min(a + size, length), max(a - margin, 0), min(a + size + margin, length))
            for a in range(0, length, size)]


def batches(length: int, size: int, overlap: int = 0) -> List[Tuple[int, int]]:
    """Consecutive ``[start, stop)`` batches of at most ``size`` items, neighbours sharing ``overlap``
    items (1 for per-pair metrics, so every pair lands in one batch)."""
    if not 0 <= overlap < size:
        raise ValueError(f"batch overlap {overlap} must be in 0..{size - 1}")
    return [(s, min(s + size, length)) for s in range(0, max(length - overlap, 1), size - overlap)]


def chunk_weights(length: int, chunk: int, overlap: int) -> List[Tuple[int, int, torch.Tensor]]:
    """Temporal windows ``(start, stop, weight)`` over ``length`` frames; the weights ([stop-start]
    float64) sum to one at every frame.

    Windows come from :func:`starts` (``chunk`` frames, at least ``overlap`` shared with a
    neighbour; ``chunk <= 0`` or ``>= length`` is one window). Each ramps linearly over the frames it
    actually shares with each neighbour (``starts`` may space them closer than asked), from
    :func:`ramp`, then all are normalised so that every frame's weights sum to one.
    """
    if chunk <= 0 or chunk >= length:
        return [(0, length, torch.ones(length, dtype=torch.float64))]
    begins = starts(length, chunk, overlap)
    spans = [(s, min(s + chunk, length)) for s in begins]
    raw = []
    for i, (s, e) in enumerate(spans):
        left = spans[i - 1][1] - s if i > 0 else 0
        right = e - spans[i + 1][0] if i + 1 < len(spans) else 0
        w = torch.minimum(ramp(e - s, left, i == 0, True),
                          ramp(e - s, right, True, i + 1 == len(spans)))
        raw.append(w.to(torch.float64))
    total = torch.zeros(length, dtype=torch.float64)
    for (s, e), w in zip(spans, raw):
        total[s:e] += w
    return [(s, e, w / total[s:e]) for (s, e), w in zip(spans, raw)]
