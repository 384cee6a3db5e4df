"""Overlapping windows over a latent video and the feathered weights that blend them back.

A window is a ``(t0, t1, h0, h1, w0, w1)`` box in latent units. Weights ramp linearly across every
overlap and are 1 elsewhere, so neighbouring windows cross-fade instead of meeting at a hard cut
(DOVE's own tiler hard-cuts, and users see seams there).
"""
import math

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
