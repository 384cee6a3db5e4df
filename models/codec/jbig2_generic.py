"""JBIG2 generic-region coding with the MQ coder (ITU-T T.88 6.2, MMR = 0).

Templates 0-3 (6.2.5.3, figures 3-6) with adaptive-template (AT) pixels at their nominal or any
allowed position (6.2.5.4, figure 7), and typical prediction for generic direct coding, TPGDON
(6.2.5.7). The bit order of CONTEXT is the one the standard's SLTP contexts are written in
(0x9B25, 0x0795, 0x00E5, 0x0195): pixel (x-1, y) is bit 0, then right to left and bottom to top,
each AT pixel taking the bit of its nominal place in that order. That order matters only because
the SLTP context shares its adaptive state with the pixel context of the same number.

Bitmaps travel padded with zeros (pixels outside the region are 0, 6.2.5.2): pixel (x, y) lives at
``pad[y + top, x + left]``, so the loops never test bounds. Context formation slides one register
per template row and reads the AT pixels directly; encoder and decoder share it through
:func:`_code_region`.

Decoder memory is the padded bitmap (one byte per pixel plus the margins the AT pixels need) and a
next-one table over the last ``top + 1`` rows only; :func:`decode_memory` gives that figure before
anything is allocated, so a caller can refuse a region it cannot afford.
"""
import numpy as np

from . import mq
from .mq import jit, leaf

# Per template: (pixels in row 0, row -1 width, row -1 rightmost dx, bit shift of row -1,
#                row -2 width, row -2 rightmost dx, bit shift of row -2)
_ROWS = np.array([
    (4, 5, 2, 5, 3, 1, 12),
    (3, 5, 2, 4, 4, 2, 9),
    (2, 4, 1, 3, 3, 1, 7),
    (4, 5, 1, 5, 0, 0, 0),
], np.int64)
# Bit of CONTEXT each AT pixel takes (template 0 has four, the others one).
AT_BITS = ((4, 10, 11, 15), (3,), (2,), (4,))
NOMINAL_AT = (((3, -1), (-3, -1), (2, -2), (-2, -2)), ((3, -1),), ((2, -1),), ((2, -1),))
# Fixed template pixels per template, as (dx, dy): AT positions must not repeat them.
_FIXED = (
    {(-1, -2), (0, -2), (1, -2), (-2, -1), (-1, -1), (0, -1), (1, -1), (2, -1),
     (-4, 0), (-3, 0), (-2, 0), (-1, 0)},
    {(-1, -2), (0, -2), (1, -2), (2, -2), (-2, -1), (-1, -1), (0, -1), (1, -1), (2, -1),
     (-3, 0), (-2, 0), (-1, 0)},
    {(-1, -2), (0, -2), (1, -2), (-2, -1), (-1, -1), (0, -1), (1, -1), (-2, 0), (-1, 0)},
    {(-3, -1), (-2, -1), (-1, -1), (0, -1), (1, -1), (-4, 0), (-3, 0), (-2, 0), (-1, 0)},
)


class GenericRegionError(ValueError):
    """Invalid generic-region parameters (template, AT position)."""


def check_at(template: int, at, strict: bool = True) -> tuple:
    """Validate AT pixels for ``template`` and return them as a tuple of ``(dx, dy)`` pairs.

    6.2.5.4: -128 <= dx <= 127, -128 <= dy <= 0, and dx < 0 when dy = 0 (only pixels already
    coded). With ``strict`` (the encoder) a position that repeats a fixed template pixel or another
    AT pixel is refused too: legal, but it wastes context bits. Decoding accepts it.
    """
    if template not in (0, 1, 2, 3):
        raise GenericRegionError(f"template must be 0, 1, 2 or 3, got {template!r}")
    at = NOMINAL_AT[template] if at is None else tuple(tuple(int(v) for v in p) for p in at)
    if len(at) != len(AT_BITS[template]) or any(len(p) != 2 for p in at):
        raise GenericRegionError(f"template {template} takes {len(AT_BITS[template])} AT pixel(s) as "
                                 f"(dx, dy) pairs, got {at!r}")
    for dx, dy in at:
        if not (-128 <= dx <= 127 and -128 <= dy <= 0) or (dy == 0 and dx >= 0):
            raise GenericRegionError(f"AT pixel ({dx}, {dy}) is outside the field of already-coded "
                                     f"pixels (-128<=dx<=127, -128<=dy<=0, dx<0 when dy=0)")
        if strict and (dx, dy) in _FIXED[template]:
            raise GenericRegionError(f"AT pixel ({dx}, {dy}) repeats a fixed pixel of template {template}")
    if strict and len(set(at)) != len(at):
        raise GenericRegionError(f"AT pixels repeat a position: {at!r}")
    return at


def _margins(at):
    """Zero padding ``(top, left, right)`` that keeps every template read inside the array."""
    top = max(2, max(-dy for _, dy in at))
    left = max(4, max(-dx for dx, _ in at))
    right = max(2, max(dx for dx, _ in at))
    return top, left, right


def _at_arrays(template, at):
    ax = np.zeros(4, np.int64)
    ay = np.full(4, -1, np.int64)
    ab = np.zeros(4, np.int64)
    for i, ((dx, dy), bit) in enumerate(zip(at, AT_BITS[template])):
        ax[i], ay[i], ab[i] = dx, dy, bit
    return ax, ay, ab


@jit
def _next_one(pad):
    """``nxt[r, j]``: first column >= j holding a 1 in padded row r (the row width if none)."""
    hp, wp = pad.shape
    nxt = np.empty((hp, wp + 1), np.int32)
    for r in range(hp):
        nxt[r, wp] = wp
        for j in range(wp - 1, -1, -1):
            nxt[r, j] = j if pad[r, j] else nxt[r, j + 1]
    return nxt


@leaf
def _mps_run(a, c, ct, bp, out, cx, n):
    """Encode ``n`` zeros in context 0 (all template pixels 0). While 0 is the MPS and A stays
    >= 0x8000, k MPS codings are exactly ``A -= k*Qe; C += k*Qe``; only renormalising steps go
    through ENCODE one by one."""
    while n > 0:
        s = cx[0]
        if s & 1:
            a, c, ct, bp = mq.encode_bit(a, c, ct, bp, out, cx, 0, 0)
            n -= 1
            continue
        qe = mq.QE[s]
        k = (a - 0x8000) // qe
        if k >= n:
            return a - n * qe, c + n * qe, ct, bp
        a -= k * qe
        c += k * qe
        a, c, ct, bp = mq.encode_bit(a, c, ct, bp, out, cx, 0, 0)
        n -= k + 1
    return a, c, ct, bp


@leaf
def _mps_run_decode(a, c, ct, bp, data, n, cx, x, end):
    """Decode pixels ``x .. end-1`` in context 0 until one decodes to 1.

    While 0 is the MPS, Chigh >= Qe and A stays >= 0x8000, k MPS decisions are exactly
    ``A -= k*Qe; Chigh -= k*Qe``. Returns ``(x, a, c, ct, bp)``: ``x == end`` when all were 0,
    otherwise ``x`` is the pixel that decoded to 1 (not yet stored).
    """
    while x < end:
        s = cx[0]
        if (s & 1) == 0:
            qe = mq.QE[s]
            k = min(end - x, (a - 0x8000) // qe, (c >> 16) // qe)
            if k > 0:
                a -= k * qe
                c -= (k * qe) << 16
                x += k
                continue
        d, a, c, ct, bp = mq.decode_bit(a, c, ct, bp, data, n, cx, 0)
        if d:
            return x, a, c, ct, bp
        x += 1
    return x, a, c, ct, bp


@leaf
def _registers(pad, yy, col, d1, n1, d2, n2):
    """The sliding context registers of rows -1 and -2 for the pixel at padded column ``col``, as
    they stand before its own pixels are shifted in (at a row start, or after a bulk run)."""
    r1 = 0
    r2 = 0
    for k in range(n1 - 1):
        r1 = (r1 << 1) | pad[yy - 1, col + d1 - n1 + 1 + k]
    for k in range(n2 - 1):
        r2 = (r2 << 1) | pad[yy - 2, col + d2 - n2 + 1 + k]
    return r1, r2


@leaf
def _run_end(nxt, nr, yy, xx, left, rdy, rhi, w):
    """The first pixel (region column) at which a template pixel of the rows above meets a 1, seen
    from padded column ``xx``: a run of all-zero contexts cannot pass it (``w`` if none does)."""
    end = w
    for i in range(rdy.shape[0]):
        e = nxt[(yy + rdy[i]) % nr, xx + rhi[i]] - rhi[i] - left
        if e < end:
            end = e
    return end


@jit
def _code_region(pad, h, w, top, left, template, ax, ay, ab, tpgdon, tp_first, decoding, data,
                 n_data, out, nxt, rdy, rhi, skip):
    """Code (``decoding`` False: ``pad`` -> ``out``) or decode (``data[:n_data]`` -> ``pad``) one
    generic region. Returns the end index of the coded bytes in ``out`` (encoding) or 0.

    With ``skip``, runs of pixels whose whole template is 0 are coded in bulk (:func:`_mps_run`,
    :func:`_mps_run_decode`): ``nxt`` locates the next 1 in each row (the decoder fills it row by
    row as rows complete) and ``rdy``/``rhi`` are the template pixels that can end such a run
    (:func:`_row_reach`; the decoder gets rows above only, the current row ends a run by itself).
    Padded row ``r`` lives in ``nxt[r % nxt.shape[0]]``: the encoder passes the whole table, the
    decoder a ring of ``top + 1`` rows (the rows a template can reach). The work is bounded by
    ``h * w`` decisions whatever the data holds.
    """
    n0 = _ROWS[template, 0]
    n1 = _ROWS[template, 1]
    d1 = _ROWS[template, 2]
    s1 = _ROWS[template, 3]
    n2 = _ROWS[template, 4]
    d2 = _ROWS[template, 5]
    s2 = _ROWS[template, 6]
    m0 = (1 << n0) - 1
    m1 = (1 << n1) - 1
    m2 = (1 << n2) - 1
    four = template == 0
    a0x, a0y, a0b = ax[0], ay[0], ab[0]
    a1x, a1y, a1b = ax[1], ay[1], ab[1]
    a2x, a2y, a2b = ax[2], ay[2], ab[2]
    a3x, a3y, a3b = ax[3], ay[3], ab[3]
    sltp_cx = 0x9B25
    if template == 1:
        sltp_cx = 0x0795
    elif template == 2:
        sltp_cx = 0x00E5
    elif template == 3:
        sltp_cx = 0x0195
    cx = np.zeros(1 << 16, np.uint8)
    wp = pad.shape[1]
    nr = nxt.shape[0]

    a, c, ct, bp = mq.start(decoding, data, n_data)
    ltp = 0
    for y in range(h):
        yy = y + top
        if tpgdon:
            if decoding:
                sltp, a, c, ct, bp = mq.decode_bit(a, c, ct, bp, data, n_data, cx, sltp_cx)
                ltp ^= sltp
                if ltp:
                    for x in range(w):
                        pad[yy, left + x] = pad[yy - 1, left + x]
                    if skip:
                        ro, ri = yy % nr, (yy - 1) % nr
                        for j in range(wp + 1):
                            nxt[ro, j] = nxt[ri, j]
                    continue
            else:
                same = 1 if (y > 0 or tp_first) else 0
                for x in range(w * same):
                    if pad[yy, left + x] != pad[yy - 1, left + x]:
                        same = 0
                        break
                a, c, ct, bp = mq.encode_bit(a, c, ct, bp, out, cx, sltp_cx, same ^ ltp)
                ltp = same
                if same:
                    continue
        r0 = 0
        r1, r2 = _registers(pad, yy, left, d1, n1, d2, n2)
        recheck = 0
        x = 0
        while x < w:
            xx = left + x
            r1 = ((r1 << 1) | pad[yy - 1, xx + d1]) & m1
            r2 = ((r2 << 1) | pad[yy - 2, xx + d2]) & m2
            ctx = r0 | (r1 << s1) | (r2 << s2) | (np.int64(pad[yy + a0y, xx + a0x]) << a0b)
            if four:
                ctx |= ((np.int64(pad[yy + a1y, xx + a1x]) << a1b)
                        | (np.int64(pad[yy + a2y, xx + a2x]) << a2b)
                        | (np.int64(pad[yy + a3y, xx + a3x]) << a3b))
            if decoding:
                if skip and ctx == 0 and x >= recheck:
                    end = _run_end(nxt, nr, yy, xx, left, rdy, rhi, w)
                    recheck = end
                    if end - x >= 8:
                        x, a, c, ct, bp = _mps_run_decode(a, c, ct, bp, data, n_data, cx, x, end)
                        if x < end:  # pixel x decoded to 1
                            pad[yy, left + x] = 1
                            x += 1
                            r0 = 1
                        else:
                            r0 = 0
                        r1, r2 = _registers(pad, yy, left + x, d1, n1, d2, n2)
                        continue
                d, a, c, ct, bp = mq.decode_bit(a, c, ct, bp, data, n_data, cx, ctx)
                pad[yy, xx] = d
            else:
                d = pad[yy, xx]
                if skip and ctx == 0 and d == 0 and x >= recheck:
                    end = _run_end(nxt, nr, yy, xx, left, rdy, rhi, w)
                    recheck = end
                    if end - x >= 8:
                        a, c, ct, bp = _mps_run(a, c, ct, bp, out, cx, end - x)
                        x = end
                        r0 = 0
                        r1, r2 = _registers(pad, yy, left + x, d1, n1, d2, n2)
                        continue
                a, c, ct, bp = mq.encode_bit(a, c, ct, bp, out, cx, ctx, d)
            r0 = ((r0 << 1) | d) & m0
            x += 1
        if decoding and skip:
            ro = yy % nr
            nxt[ro, wp] = wp
            for j in range(wp - 1, -1, -1):
                nxt[ro, j] = j if pad[yy, j] else nxt[ro, j + 1]
    if decoding:
        return 0
    return mq.enc_flush(a, c, ct, bp, out)


def stretch_ends(points):
    """Template pixels that bound a run of all-zero contexts: per row, the rightmost pixel of each
    contiguous stretch of ``points`` (``(dx, dy)`` pairs). At a zero context every template pixel
    is 0, so inside a stretch only its rightmost pixel can meet the next 1 first. Returns
    ``(dy [n] int64, dx [n] int64)``, the form :func:`_run_end` takes; the refinement coder
    (``jbig2_refine``) uses it for its coded and reference templates."""
    rows = {}
    for dx, dy in points:
        rows.setdefault(dy, set()).add(dx)
    dys, his = [], []
    for dy, xs in sorted(rows.items()):
        for dx in sorted(xs):
            if dx + 1 not in xs:
                dys.append(dy)
                his.append(dx)
    return np.array(dys, np.int64), np.array(his, np.int64)


def _row_reach(template, at):
    """:func:`stretch_ends` of the template, its AT pixels and the pixel being coded (row 0)."""
    return stretch_ends(list(_FIXED[template]) + list(at) + [(0, 0)])


def _padded(bitmap, at):
    top, left, right = _margins(at)
    h, w = bitmap.shape
    pad = np.zeros((h + top, w + left + right), np.uint8)
    pad[top:, left:left + w] = bitmap
    return pad, top, left


def encode_region(bitmap: np.ndarray, template: int = 0, at=None, tpgdon: bool = False,
                  typical_first_row: bool = False) -> bytes:
    """Arithmetic-code a bi-level ``[H,W]`` bitmap (nonzero = 1 = black) as generic-region data.

    typical_first_row: with TPGDON, allow the first row to be coded as "same as the row above"
    (all zero) when it is empty; off codes it pixel by pixel, as jbig2enc does.

    Returns the MQ-coded bytes (ending in the 0xFF 0xAC marker), without any segment header.
    """
    at = check_at(template, at)
    bitmap = np.asarray(bitmap)
    if bitmap.ndim != 2 or bitmap.shape[0] < 1 or bitmap.shape[1] < 1:
        raise GenericRegionError(f"bitmap must be a non-empty [H,W] array, got shape {bitmap.shape}")
    h, w = bitmap.shape
    pad, top, left = _padded(bitmap != 0, at)
    ax, ay, ab = _at_arrays(template, at)
    out = np.zeros(mq.out_capacity(h * w + h), np.uint8)
    rdy, rhi = _row_reach(template, at)
    end = _code_region(pad, h, w, top, left, template, ax, ay, ab, bool(tpgdon),
                       bool(typical_first_row), False, out[:1], 0, out, _next_one(pad), rdy, rhi, True)
    return out[1:end].tobytes()


def decode_memory(h: int, w: int, at) -> int:
    """Bytes :func:`decode_region` allocates for an ``[h,w]`` region with AT pixels ``at``
    (validated): the padded bitmap, the next-one ring and the context table. Pure arithmetic, so a
    caller can check it against a budget before anything is allocated."""
    top, left, right = _margins(at)
    wp = w + left + right
    return (h + top) * wp + (top + 1) * (wp + 1) * 4 + (1 << 16)


def decode_region(data, h: int, w: int, template: int = 0, at=None, tpgdon: bool = False,
                  fast: bool = True, copy: bool = True) -> np.ndarray:
    """Decode generic-region data into an ``[h,w]`` uint8 bitmap (1 = black).

    Any byte string decodes to *some* bitmap in bounded time (h*w decisions); bytes past the end
    read as 0xFF as the standard prescribes. The caller bounds ``h * w`` and the memory
    (:func:`decode_memory`). ``fast=False`` decodes every pixel one by one (no bulk runs); the
    result is the same, which the tests check. ``copy=False`` returns a view into the padded
    working bitmap (no second ``h*w`` allocation).
    """
    at = check_at(template, at, strict=False)
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) \
        else np.frombuffer(bytes(data), np.uint8)
    if buf.size == 0:
        buf = np.zeros(1, np.uint8)  # numba wants a typed non-empty array; n_data = 0 reads 0xFF
        n = 0
    else:
        n = buf.size
    top, left, right = _margins(at)
    pad = np.zeros((h + top, w + left + right), np.uint8)
    ax, ay, ab = _at_arrays(template, at)
    rdy, rhi = _row_reach(template, at)
    # the decoder skips only when the current row's template pixels form one stretch ending at
    # the pixel (true for every nominal template): then decoding itself finds where a run ends
    skip = bool(fast) and int((rdy == 0).sum()) == 1
    above = rdy < 0
    # a ring of the rows a template reaches (top above + the current one), not the whole region
    nxt = np.full((top + 1, pad.shape[1] + 1), pad.shape[1], np.int32)
    _code_region(pad, h, w, top, left, template, ax, ay, ab, bool(tpgdon), True, True, buf, n,
                 np.zeros(1, np.uint8), nxt, rdy[above], rhi[above], skip)
    region = pad[top:, left:left + w]
    return region.copy() if copy else region
