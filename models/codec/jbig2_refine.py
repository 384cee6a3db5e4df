"""JBIG2 generic refinement region coding with the MQ coder (ITU-T T.88 6.3).

A bitmap is coded with a template that spans the bitmap being coded and a *reference* bitmap:
GRTEMPLATE 0 (13 pixels: 3 fixed + GRAT1 on the coded bitmap, 8 fixed + GRAT2 on the reference)
or GRTEMPLATE 1 (10 pixels: 4 + 6), the reference pixel for (x, y) being the one at
(x - GRREFERENCEDX, y - GRREFERENCEDY), pixels outside either bitmap 0 (6.3.5.3). TPGRON (6.3.5.6):
each row starts with one decision (in the SLTP context) toggling LTP; in a row with LTP = 1 a pixel
whose 3x3 reference neighbourhood is uniform takes that value without coding, the others are coded
as usual. The encoder sets LTP = 1 exactly on the rows where that prediction holds everywhere.

Context bit order (the one jbig2dec and the standard's SLTP contexts use; only the SLTP context
depends on it, because it shares its adaptive state with the pixel context of the same number):
coded (-1,0) is bit 0, (1,-1) bit 1, (0,-1) bit 2, then GRAT1 (template 0) or (-1,-1) (template 1)
bit 3; then the reference from (1,1) down to (-1,-1) as listed in ``_REF``. The SLTP context is the
pattern with only the centre reference pixel set: 0x100 for GRTEMPLATE 0, 0x080 for GRTEMPLATE 1
(jbig2dec 0.19 uses 0x040 for GRTEMPLATE 1, i.e. the (1,0) pixel; so our encoders write TPGRON with
GRTEMPLATE 0 only, where every reader agrees).

The reference travels already shifted into the coded bitmap's coordinates and padded (both arrays
share one padded geometry), so the loops never test bounds. Runs of pixels whose whole context is 0
are coded in bulk with the generic coder's MPS-run routines; where a run ends is found in bit-packed
copies of the rows (``np.packbits`` order, a byte scan per query) rather than in per-pixel next-one
tables, whose construction cost more than the coding. In a typical TPGRON row only the pixels next
to reference edges are visited at all. The MQ coder and the run machinery are the generic region
coder's (``mq``, ``jbig2_generic``); nothing is duplicated.
"""
from typing import Optional

import numpy as np

from . import mq
from .jbig2_generic import _mps_run, _mps_run_decode, stretch_ends
from .mq import jit, leaf

NOMINAL_GRAT = ((-1, -1), (-1, -1))  # GRAT1 on the coded bitmap, GRAT2 on the reference (6.3.5.3)
# Fixed pixels (dx, dy) per template; template 0's GRAT pixels come on top.
_CUR = (((-1, 0), (1, -1), (0, -1)), ((-1, 0), (1, -1), (0, -1), (-1, -1)))
_REF = (((1, 1), (0, 1), (-1, 1), (1, 0), (0, 0), (-1, 0), (1, -1), (0, -1)),
        ((1, 1), (0, 1), (1, 0), (0, 0), (-1, 0), (0, -1)))
# the 3x3 reference window TPGRON tests: per row, its rightmost pixel (dx = 1) ends a zero run
_WIN_DY = np.array([-1, 0, 1], np.int64)
_WIN_HI = np.array([1, 1, 1], np.int64)
# column of the first set bit of a byte, MSB first (np.packbits order); 8 for 0
_LEAD = np.array([8] + [7 - int(np.log2(b)) for b in range(1, 256)], np.int64)


class RefinementError(ValueError):
    """Invalid refinement-region parameters (template, GRAT position, reference)."""


def check_grat(template: int, at, strict: bool = True) -> tuple:
    """Validate the GRAT pixels and return ``((dx1, dy1), (dx2, dy2))`` (template 0) or ``()``.

    GRAT1 lies on the coded bitmap among already-coded pixels (dy < 0, or dy = 0 and dx < 0);
    GRAT2 anywhere on the reference within -128..127 (the signed bytes of 7.4.7.3). ``strict``
    (the encoder) also refuses a position repeating a fixed pixel: legal, but a wasted context bit.
    """
    if template not in (0, 1):
        raise RefinementError(f"GRTEMPLATE must be 0 or 1, got {template!r}")
    if template == 1:
        if at not in (None, (), []):
            raise RefinementError("GRTEMPLATE 1 has no adaptive pixels")
        return ()
    at = NOMINAL_GRAT if at is None else tuple(tuple(int(v) for v in p) for p in at)
    if len(at) != 2 or any(len(p) != 2 for p in at):
        raise RefinementError(f"GRTEMPLATE 0 takes two GRAT pixels as (dx, dy) pairs, got {at!r}")
    (x1, y1), (x2, y2) = at
    if not (-128 <= x1 <= 127 and -128 <= y1 <= 0) or (y1 == 0 and x1 >= 0):
        raise RefinementError(f"GRAT1 ({x1}, {y1}) is outside the already-coded pixels of the region "
                              f"(-128<=dx<=127, -128<=dy<=0, dx<0 when dy=0)")
    if not (-128 <= x2 <= 127 and -128 <= y2 <= 127):
        raise RefinementError(f"GRAT2 ({x2}, {y2}) is outside -128..127")
    if strict and ((x1, y1) in _CUR[0] or (x2, y2) in _REF[0]):
        raise RefinementError(f"GRAT pixels {at!r} repeat a fixed pixel of GRTEMPLATE 0")
    return at


def _points(template, at):
    """The template's pixels on the coded bitmap and on the reference, as (dx, dy) lists."""
    cur = list(_CUR[template]) + ([at[0]] if template == 0 else [])
    ref = list(_REF[template]) + ([at[1]] if template == 0 else [])
    return cur, ref


def _margins(template, at):
    """Zero padding ``(top, bottom, left, right)`` shared by the coded and reference arrays."""
    cur, ref = _points(template, at)
    pts = cur + ref
    top = max(1, max(-dy for _, dy in pts))
    bottom = max(1, max(dy for _, dy in pts))
    left = max(1, max(-dx for dx, _ in pts))
    right = max(1, max(dx for dx, _ in pts))
    return top, bottom, left, right


def _grat_arrays(template, at):
    if template == 1:
        return 0, -1, 0, -1  # unused; any in-bounds position
    return at[0][0], at[0][1], at[1][0], at[1][1]


@leaf
def _window(ref, yy, xx):
    """Sum of the 3x3 reference neighbourhood of padded pixel ``(yy, xx)`` (0 or 9: uniform)."""
    s = 0
    for j in range(-1, 2):
        s += ref[yy + j, xx - 1] + ref[yy + j, xx] + ref[yy + j, xx + 1]
    return s


@leaf
def _next_bit(packed, r, j):
    """First column >= ``j`` holding a 1 in bit-packed row ``r`` (the padded width rounded up to
    bytes when none)."""
    nb = packed.shape[1]
    k = j >> 3
    if k >= nb:
        return nb << 3
    b = packed[r, k] & (0xFF >> (j & 7))
    while b == 0:
        k += 1
        if k >= nb:
            return nb << 3
        b = packed[r, k]
    return (k << 3) + _LEAD[b]


@leaf
def _run_end(packed, nr, yy, xx, left, rdy, rhi, w):
    """The first pixel (region column) at which a template pixel (rows ``rdy``, rightmost columns
    ``rhi`` of its stretches) meets a 1, seen from padded column ``xx``; ``w`` if none does.
    Padded row ``r`` lives in ``packed[r % nr]``."""
    end = w
    for i in range(rdy.shape[0]):
        e = _next_bit(packed, (yy + rdy[i]) % nr, xx + rhi[i]) - rhi[i] - left
        if e < end:
            end = e
    return end


@leaf
def _typical(cur, ref, cpk, rpk, yy, left, w):
    """1 when TPGRON's prediction holds on the whole row ``yy``: no coded 1 where the reference
    window is all 0 and no coded 0 where it is all 1. Visits only the 1s of both rows."""
    j = _next_bit(cpk, yy, left)
    while j < left + w:
        if _window(ref, yy, j) == 0:
            return 0
        j = _next_bit(cpk, yy, j + 1)
    j = _next_bit(rpk, yy, left)
    while j < left + w:
        if cur[yy, j] == 0 and _window(ref, yy, j) == 9:
            return 0
        j = _next_bit(rpk, yy, j + 1)
    return 1


@leaf
def _set_bit(packed, r, j):
    packed[r, j >> 3] |= 0x80 >> (j & 7)


@leaf
def _registers(cur, ref, yy, xx):
    """The sliding context registers for padded pixel ``(yy, xx)`` before its column ``xx + 1`` is
    shifted in: ``(c0, cu, r1, r0, rm)`` = coded (-1,0); coded row -1 and reference rows +1, 0, -1
    as bit windows whose LSB is the rightmost pixel (after the shift: dx -1, 0, 1 = bits 2, 1, 0)."""
    return (np.int64(cur[yy, xx - 1]),
            (np.int64(cur[yy - 1, xx - 1]) << 1) | np.int64(cur[yy - 1, xx]),
            (np.int64(ref[yy + 1, xx - 1]) << 1) | np.int64(ref[yy + 1, xx]),
            (np.int64(ref[yy, xx - 1]) << 1) | np.int64(ref[yy, xx]),
            (np.int64(ref[yy - 1, xx - 1]) << 1) | np.int64(ref[yy - 1, xx]))


@jit
def _code_refinement(cur, ref, h, w, top, left, t1, a1x, a1y, a2x, a2y, tpgron, decoding, data,
                     n_data, out, cpk, rpk, crdy, crhi, rrdy, rrhi, skip, cx):
    """Code (``decoding`` False: ``cur`` -> ``out``) or decode (``data[:n_data]`` -> ``cur``) one
    refinement region against the padded, shifted reference ``ref`` (same shape as ``cur``).

    Returns the end index of the coded bytes in ``out`` (encoding) or 0. ``rpk`` is the reference
    bit-packed (``np.packbits(ref, axis=1)``); ``cpk`` the coded bitmap's (encoder: whole; decoder:
    a ring of ``top + 1`` rows it fills as it decodes). ``crdy``/``crhi`` and ``rrdy``/``rrhi`` are
    the stretch ends of the coded and reference templates (:func:`stretch_ends`). The context is
    built from sliding registers (:func:`_registers`) in the bit order of the module doc. The work
    is bounded by ``h * (w + 1)`` decisions whatever the data holds. ``cx`` holds the 2^13 context
    states (GRTEMPLATE 1 uses the low 10 bits): zeros for a T.88 region, or those a previous region
    left (a clip that carries its contexts), updated in place.
    """
    a, c, ct, bp = mq.start(decoding, data, n_data)
    sltp_cx = 0x080 if t1 else 0x100  # the centre reference pixel alone (module doc)
    nr, hr = cpk.shape[0], rpk.shape[0]  # ring rows (decoder) / padded rows, for row indices
    ltp = 0
    for y in range(h):
        yy = y + top
        ro = yy % nr
        if decoding and skip:
            cpk[ro, :] = 0  # the ring slot of row yy - top - 1, which no template reaches any more
        if tpgron:
            if decoding:
                sltp, a, c, ct, bp = mq.decode_bit(a, c, ct, bp, data, n_data, cx, sltp_cx)
                ltp ^= sltp
            else:
                typ = _typical(cur, ref, cpk, rpk, yy, left, w)
                a, c, ct, bp = mq.encode_bit(a, c, ct, bp, out, cx, sltp_cx, typ ^ ltp)
                ltp = typ
        x = 0
        recheck = 0
        c0, cu, r1, r0, rm = _registers(cur, ref, yy, left)
        while x < w:
            xx = left + x
            cu = ((cu << 1) | cur[yy - 1, xx + 1]) & 7
            r1 = ((r1 << 1) | ref[yy + 1, xx + 1]) & 7
            r0 = ((r0 << 1) | ref[yy, xx + 1]) & 7
            rm = ((rm << 1) | ref[yy - 1, xx + 1]) & 7
            if ltp:  # typical row: a uniform reference window predicts the pixel
                if (r1 | r0 | rm) == 0:
                    x = _run_end(rpk, hr, yy, xx, left, _WIN_DY, _WIN_HI, w)
                    c0, cu, r1, r0, rm = _registers(cur, ref, yy, left + x)
                    continue
                if (r1 & r0 & rm) == 7:
                    if decoding:
                        cur[yy, xx] = 1
                        if skip:
                            _set_bit(cpk, ro, xx)
                    c0 = 1
                    x += 1
                    continue
            if t1:
                ctx = c0 | (cu << 1) | ((r1 & 3) << 4) | (r0 << 6) | (((rm >> 1) & 1) << 9)
            else:
                ctx = (c0 | ((cu & 3) << 1) | (np.int64(cur[yy + a1y, xx + a1x]) << 3) | (r1 << 4)
                       | (r0 << 7) | ((rm & 3) << 10) | (np.int64(ref[yy + a2y, xx + a2x]) << 12))
            if decoding:
                if skip and ctx == 0 and not ltp and x >= recheck:
                    end = min(_run_end(cpk, nr, yy, xx, left, crdy, crhi, w),
                              _run_end(rpk, hr, yy, xx, left, rrdy, rrhi, w))
                    recheck = end
                    if end - x >= 8:
                        x, a, c, ct, bp = _mps_run_decode(a, c, ct, bp, data, n_data, cx, x, end)
                        if x < end:  # pixel x decoded to 1
                            cur[yy, left + x] = 1
                            _set_bit(cpk, ro, left + x)
                            x += 1
                        c0, cu, r1, r0, rm = _registers(cur, ref, yy, left + x)
                        continue
                d, a, c, ct, bp = mq.decode_bit(a, c, ct, bp, data, n_data, cx, ctx)
                if d:
                    cur[yy, xx] = 1
                    if skip:
                        _set_bit(cpk, ro, xx)
            else:
                d = cur[yy, xx]
                if skip and ctx == 0 and d == 0 and not ltp and x >= recheck:
                    end = min(_run_end(cpk, nr, yy, xx, left, crdy, crhi, w),
                              _run_end(rpk, hr, yy, xx, left, rrdy, rrhi, w))
                    recheck = end
                    if end - x >= 8:
                        a, c, ct, bp = _mps_run(a, c, ct, bp, out, cx, end - x)
                        x = end
                        c0, cu, r1, r0, rm = _registers(cur, ref, yy, left + x)
                        continue
                a, c, ct, bp = mq.encode_bit(a, c, ct, bp, out, cx, ctx, d)
            c0 = np.int64(d)
            x += 1
    if decoding:
        return 0
    return mq.enc_flush(a, c, ct, bp, out)


def _shape(reference) -> tuple:
    ref = np.asarray(reference)
    if ref.ndim != 2 or min(ref.shape) < 1:
        raise RefinementError(f"reference must be a non-empty [H,W] array, got shape {ref.shape}")
    return ref.shape


def _padded_reference(reference, h, w, dx, dy, margins):
    """The reference in the coded bitmap's padded coordinates: ``ref[top + y, left + x] =
    reference[y - dy, x - dx]`` where that exists, 0 elsewhere, margins included (a displaced
    reference reaches past the region's edge). ``[h+top+bottom, w+left+right]`` uint8."""
    top, bottom, left, right = margins
    rh, rw = _shape(reference)
    pad = np.zeros((h + top + bottom, w + left + right), np.uint8)
    y0, y1 = max(-top, dy), min(h + bottom, rh + dy)
    x0, x1 = max(-left, dx), min(w + right, rw + dx)
    if y0 < y1 and x0 < x1:  # written in place: no second [h,w] temporary
        np.not_equal(np.asarray(reference)[y0 - dy:y1 - dy, x0 - dx:x1 - dx], 0,
                     out=pad[top + y0:top + y1, left + x0:left + x1], casting="unsafe")
    return pad


def _reach(template, at):
    cur, ref = _points(template, at)
    crdy, crhi = stretch_ends(cur + [(0, 0)])
    rrdy, rrhi = stretch_ends(ref)
    return crdy, crhi, rrdy, rrhi


def contexts() -> np.ndarray:
    """Fresh context states for one region (T.88 starts every region from these)."""
    return np.zeros(1 << 13, np.uint8)


def _contexts(cx):
    if cx is None:
        return contexts()
    if not isinstance(cx, np.ndarray) or cx.dtype != np.uint8 or cx.shape != (1 << 13,):
        raise RefinementError("contexts must be a uint8 array of 8192 states (refine.contexts())")
    return cx


def encode_refinement(bitmap, reference, dx: int = 0, dy: int = 0, template: int = 0, at=None,
                      tpgron: bool = False, cx: Optional[np.ndarray] = None) -> bytes:
    """Arithmetic-code the bi-level ``[H,W]`` ``bitmap`` (nonzero = 1) as refinement-region data
    against ``reference`` (``[RH,RW]``, any size; pixel (x, y) is predicted from reference pixel
    (x - dx, y - dy)). Returns the MQ bytes (ending in 0xFF 0xAC), without any segment header.
    ``cx``: context states to start from and update in place (:func:`contexts`; None: fresh, as T.88
    codes a region)."""
    at = check_grat(template, at)
    bitmap = np.asarray(bitmap)
    if bitmap.ndim != 2 or min(bitmap.shape) < 1:
        raise RefinementError(f"bitmap must be a non-empty [H,W] array, got shape {bitmap.shape}")
    h, w = bitmap.shape
    margins = _margins(template, at)
    top, _, left, _ = margins
    ref = _padded_reference(reference, h, w, int(dx), int(dy), margins)
    cur = np.zeros_like(ref)
    cur[top:top + h, left:left + w] = bitmap != 0
    crdy, crhi, rrdy, rrhi = _reach(template, at)
    out = np.zeros(mq.out_capacity(h * w + h), np.uint8)
    a1x, a1y, a2x, a2y = _grat_arrays(template, at)
    end = _code_refinement(cur, ref, h, w, top, left, template == 1, a1x, a1y, a2x, a2y, bool(tpgron),
                           False, out[:1], 0, out, np.packbits(cur, axis=1), np.packbits(ref, axis=1),
                           crdy, crhi, rrdy, rrhi, True, _contexts(cx))
    return out[1:end].tobytes()


def decode_memory(h: int, w: int, template: int, at) -> int:
    """Bytes :func:`decode_refinement` allocates for an ``[h,w]`` region (``at`` validated): the
    padded coded and reference bitmaps, the bit-packed reference and coded ring, the contexts and
    the returned bitmap. Pure arithmetic, for a caller's budget check before anything is allocated."""
    top, bottom, left, right = _margins(template, at)
    hp, wp = h + top + bottom, w + left + right
    return 2 * hp * wp + (hp + top + 1) * -(-wp // 8) + (1 << 13) + h * w


def decode_refinement(data, h: int, w: int, reference, dx: int = 0, dy: int = 0, template: int = 0,
                      at=None, tpgron: bool = False, fast: bool = True, cx: Optional[np.ndarray] = None
                      ) -> np.ndarray:
    """Decode refinement-region data into an ``[h,w]`` uint8 bitmap (1 = black) against
    ``reference`` displaced by (dx, dy) as in :func:`encode_refinement`.

    Any byte string decodes to *some* bitmap in bounded time (at most ``h * (w + 1)`` decisions);
    the caller bounds ``h * w`` and the memory (:func:`decode_memory`). ``fast=False`` decodes every
    pixel one by one (no bulk runs); the result is the same, which the tests check. ``cx`` as in
    :func:`encode_refinement`.
    """
    at = check_grat(template, at, strict=False)
    buf = np.frombuffer(data if isinstance(data, (bytes, bytearray, memoryview)) else bytes(data), np.uint8)
    n = buf.size
    if n == 0:
        buf = np.zeros(1, np.uint8)  # numba wants a typed non-empty array; n_data = 0 reads 0xFF
    margins = _margins(template, at)
    top, _, left, _ = margins
    ref = _padded_reference(reference, h, w, int(dx), int(dy), margins)
    cur = np.zeros_like(ref)
    crdy, crhi, rrdy, rrhi = _reach(template, at)
    # the decoder finds a run's end in its own row by decoding; it skips only when the coded
    # template's row-0 pixels form one stretch ending at the pixel (true unless GRAT1 is (dx<-2, 0))
    skip = bool(fast) and int((crdy == 0).sum()) == 1
    above = crdy < 0
    ring = np.zeros((top + 1, -(-cur.shape[1] // 8)), np.uint8)
    a1x, a1y, a2x, a2y = _grat_arrays(template, at)
    _code_refinement(cur, ref, h, w, top, left, template == 1, a1x, a1y, a2x, a2y, bool(tpgron), True,
                     buf, n, np.zeros(1, np.uint8), ring, np.packbits(ref, axis=1), crdy[above], crhi[above],
                     rrdy, rrhi, skip, _contexts(cx))
    return cur[top:top + h, left:left + w].copy()
