"""The MQ binary arithmetic coder of ITU-T T.88 Annex E (the coder JBIG2 and JPEG 2000 share).

Written from the standard's flow charts: INITENC / ENCODE (CODEMPS, CODELPS) / RENORME / BYTEOUT /
FLUSH for the encoder, INITDEC / DECODE / RENORMD / BYTEIN for the decoder. The decoder uses the
non-inverted C register form (JPEG 2000 C.3), which reads the same code stream as T.88's inverted
form.

A context state is one uint8 per context, ``(I << 1) | MPS``, so a context array starts all-zero
(I = 0, MPS = 0) as the standard requires. The coder state travels as plain integers returned
from each call so that numba keeps it in registers inside the region loops; the same functions run
unchanged as pure Python when numba is missing (or ``METAVSR_NO_NUMBA=1``).
"""
import numpy as np

from .._jit import HAVE_NUMBA, njit  # noqa: F401  (tests read mq.HAVE_NUMBA)


def jit(fn):
    """``numba.njit(nogil=True)`` with the pack's per-import-name disk cache (models/_jit.py),
    or the plain Python function when numba is missing."""
    return njit(nogil=True)(fn)


def leaf(fn):
    """:func:`jit` for the per-decision functions, which allocate nothing: compiled without
    reference counting, so a call costs what the decision costs (see ``models/_jit.py``)."""
    return njit(nogil=True, nrt=False)(fn)


# Table E.1: (Qe, NMPS, NLPS, SWITCH) for I = 0..46.
_QE_TABLE = (
    (0x5601, 1, 1, 1), (0x3401, 2, 6, 0), (0x1801, 3, 9, 0), (0x0AC1, 4, 12, 0),
    (0x0521, 5, 29, 0), (0x0221, 38, 33, 0), (0x5601, 7, 6, 1), (0x5401, 8, 14, 0),
    (0x4801, 9, 14, 0), (0x3801, 10, 14, 0), (0x3001, 11, 17, 0), (0x2401, 12, 18, 0),
    (0x1C01, 13, 20, 0), (0x1601, 29, 21, 0), (0x5601, 15, 14, 1), (0x5401, 16, 14, 0),
    (0x5101, 17, 15, 0), (0x4801, 18, 16, 0), (0x3801, 19, 17, 0), (0x3401, 20, 18, 0),
    (0x3001, 21, 19, 0), (0x2801, 22, 19, 0), (0x2401, 23, 20, 0), (0x2201, 24, 21, 0),
    (0x1C01, 25, 22, 0), (0x1801, 26, 23, 0), (0x1601, 27, 24, 0), (0x1401, 28, 25, 0),
    (0x1201, 29, 26, 0), (0x1101, 30, 27, 0), (0x0AC1, 31, 28, 0), (0x09C1, 32, 29, 0),
    (0x08A1, 33, 30, 0), (0x0521, 34, 31, 0), (0x0441, 35, 32, 0), (0x02A1, 36, 33, 0),
    (0x0221, 37, 34, 0), (0x0141, 38, 35, 0), (0x0111, 39, 36, 0), (0x0085, 40, 37, 0),
    (0x0049, 41, 38, 0), (0x0025, 42, 39, 0), (0x0015, 43, 40, 0), (0x0009, 44, 41, 0),
    (0x0005, 45, 42, 0), (0x0001, 45, 43, 0), (0x5601, 46, 46, 0),
)


def _packed_tables():
    """Per packed state ``s = I<<1 | MPS``: Qe, the state after an MPS and after an LPS."""
    n = 2 * len(_QE_TABLE)
    qe = np.zeros(n, np.int64)
    after_mps = np.zeros(n, np.uint8)
    after_lps = np.zeros(n, np.uint8)
    for i, (q, nmps, nlps, switch) in enumerate(_QE_TABLE):
        for mps in (0, 1):
            s = (i << 1) | mps
            qe[s] = q
            after_mps[s] = (nmps << 1) | mps
            after_lps[s] = (nlps << 1) | (mps ^ switch)
    return qe, after_mps, after_lps


QE, AFTER_MPS, AFTER_LPS = _packed_tables()


@leaf
def out_capacity(n_symbols):
    """Bytes an encoder buffer needs for ``n_symbols`` decisions, whatever their values.

    One decision renormalises at most 15 times (A >= Qe >= 1) and a byte carries at least 7 bits,
    plus the dummy byte before the stream and the flush/marker bytes.
    """
    return (15 * n_symbols) // 7 + 16


@leaf
def enc_init():
    """INITENC: returns ``(a, c, ct, bp)``; ``out[0]`` is the dummy byte before the stream."""
    return 0x8000, 0, 12, 0


@leaf
def _byteout(c, bp, out):
    if out[bp] == 0xFF:
        bp += 1
        out[bp] = c >> 20
        return c & 0xFFFFF, 7, bp
    if c >= 0x8000000:
        out[bp] += 1  # the carry propagates into the byte already written
        if out[bp] == 0xFF:
            c &= 0x7FFFFFF
            bp += 1
            out[bp] = c >> 20
            return c & 0xFFFFF, 7, bp
    bp += 1
    out[bp] = c >> 19
    return c & 0x7FFFF, 8, bp


@leaf
def encode_bit(a, c, ct, bp, out, cx, k, d):
    """ENCODE decision ``d`` (0/1) in context ``k`` of state array ``cx``; returns ``(a, c, ct, bp)``."""
    s = cx[k]
    qe = QE[s]
    a -= qe
    if d == (s & 1):  # CODEMPS
        if a & 0x8000:
            return a, c + qe, ct, bp
        if a < qe:
            a = qe
        else:
            c += qe
        cx[k] = AFTER_MPS[s]
    else:  # CODELPS
        if a < qe:
            c += qe
        else:
            a = qe
        cx[k] = AFTER_LPS[s]
    while True:  # RENORME
        a <<= 1
        c <<= 1
        ct -= 1
        if ct == 0:
            c, ct, bp = _byteout(c, bp, out)
        if a & 0x8000:
            return a, c, ct, bp


@leaf
def enc_flush(a, c, ct, bp, out):
    """FLUSH (SETBITS, two BYTEOUTs, then the 0xFF 0xAC marker). Returns the end index: the coded
    bytes are ``out[1:end]``."""
    tempc = c + a
    c |= 0xFFFF
    if c >= tempc:
        c -= 0x8000
    c <<= ct
    c, ct, bp = _byteout(c, bp, out)
    c <<= ct
    c, ct, bp = _byteout(c, bp, out)
    if out[bp] != 0xFF:
        bp += 1
        out[bp] = 0xFF
    bp += 1
    out[bp] = 0xAC
    return bp + 1


@leaf
def start(decoding, data, n):
    """INITDEC over ``data[:n]`` when ``decoding``, else INITENC: the ``(a, c, ct, bp)`` a region
    coder that runs both ways starts from."""
    if decoding:
        return dec_init(data, n)
    return enc_init()


@leaf
def _bytein(c, bp, data, n):
    """BYTEIN; bytes past the end read as 0xFF, i.e. as a marker, so C fills with 1s and BP stops."""
    b = data[bp] if bp < n else 0xFF
    if b == 0xFF:
        b1 = data[bp + 1] if bp + 1 < n else 0xFF
        if b1 > 0x8F:
            return c + 0xFF00, 8, bp
        return c + (np.int64(b1) << 9), 7, bp + 1
    bp += 1
    b = data[bp] if bp < n else 0xFF
    return c + (np.int64(b) << 8), 8, bp


@leaf
def dec_init(data, n):
    """INITDEC over ``data[:n]``; returns ``(a, c, ct, bp)``."""
    b = data[0] if n > 0 else 0xFF
    c = np.int64(b) << 16
    c, ct, bp = _bytein(c, 0, data, n)
    c = (c << 7) & 0xFFFFFFFF
    return 0x8000, c, ct - 7, bp


@leaf
def decode_bit(a, c, ct, bp, data, n, cx, k):
    """DECODE one decision in context ``k``; returns ``(d, a, c, ct, bp)``."""
    s = cx[k]
    qe = QE[s]
    mps = s & 1
    a -= qe
    if (c >> 16) < qe:  # LPS_EXCHANGE
        if a < qe:
            d = mps
            cx[k] = AFTER_MPS[s]
        else:
            d = 1 - mps
            cx[k] = AFTER_LPS[s]
        a = qe
    else:
        c -= qe << 16
        if a & 0x8000:
            return mps, a, c, ct, bp
        if a < qe:  # MPS_EXCHANGE
            d = 1 - mps
            cx[k] = AFTER_LPS[s]
        else:
            d = mps
            cx[k] = AFTER_MPS[s]
    while True:  # RENORMD
        if ct == 0:
            c, ct, bp = _bytein(c, bp, data, n)
        a <<= 1
        c = (c << 1) & 0xFFFFFFFF
        ct -= 1
        if a & 0x8000:
            return d, a, c, ct, bp


@jit
def encode_bits(bits, contexts, n_contexts):
    """Code a decision sequence ``bits[i]`` in context ``contexts[i]``; returns the MQ bytes
    (marker included). A plain driver for tests and for callers outside the region coder."""
    out = np.zeros(out_capacity(bits.shape[0]), np.uint8)
    cx = np.zeros(n_contexts, np.uint8)
    a, c, ct, bp = enc_init()
    for i in range(bits.shape[0]):
        a, c, ct, bp = encode_bit(a, c, ct, bp, out, cx, contexts[i], bits[i])
    end = enc_flush(a, c, ct, bp, out)
    return out[1:end].copy()


@jit
def decode_bits(data, contexts, n_contexts):
    """Decode ``len(contexts)`` decisions coded with :func:`encode_bits`."""
    n = data.shape[0]
    cx = np.zeros(n_contexts, np.uint8)
    res = np.zeros(contexts.shape[0], np.uint8)
    a, c, ct, bp = dec_init(data, n)
    for i in range(contexts.shape[0]):
        d, a, c, ct, bp = decode_bit(a, c, ct, bp, data, n, cx, contexts[i])
        res[i] = d
    return res

