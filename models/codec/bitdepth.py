"""CaDM colour bit-depth quantization (Sec. 3.2.2): K-means vector quantization of RGB to 2^n colours.

The codebook is fitted on ~1000 uniformly sampled pixels (seeded), then every pixel is replaced by
its nearest centroid. The stream carries the codebook (2^n RGB triplets, uint8) and the packed
n-bit indices, so its size is real; CaDM's nominal ratio over 24-bit full resolution is 24·s²/n.

Stream layout (big-endian): b"MVQ1", bits u8, per_clip u8, T u16, H u32, W u32, then the codebooks
(1 or T of them, 2^n x 3 bytes), then each frame's indices packed MSB-first, row-major, each
frame padded to a whole byte.
"""
import struct
from typing import Callable, Optional

import numpy as np

from .._jit import njit, prange
from .bitstream import Bitstream
from .jpeg import to_uint8

_HEADER = struct.Struct(">4sBBHII")
_MAGIC = b"MVQ1"


@njit(nogil=True, parallel=True)
def _nearest(pts_t, centers, label, dist):
    """Nearest centre of every point (lowest index on ties): writes ``label`` and the squared
    distance ``dist``. ``pts_t`` is the points transposed, [D,N]: blocks of points meet one centre
    at a time, so the inner loop runs over contiguous points (vectorised) and the blocks run on
    every core."""
    dim, n = pts_t.shape
    k = centers.shape[0]
    block = 2048
    for blk in prange((n + block - 1) // block):
        s = blk * block
        e = min(n, s + block)
        best = np.full(e - s, np.inf)
        arg = np.zeros(e - s, np.int64)
        d = np.empty(e - s)
        for j in range(k):
            d[:] = 0.0
            for c in range(dim):
                cj = centers[j, c]
                for q in range(e - s):
                    diff = pts_t[c, s + q] - cj
                    d[q] += diff * diff
            for q in range(e - s):
                if d[q] < best[q]:
                    best[q] = d[q]
                    arg[q] = j
        label[s:e] = arg
        dist[s:e] = best


@njit(nogil=True)
def _update(pts, centers, label):
    """Move each centre to the mean of its points (an empty cluster keeps its centre); returns the
    total absolute movement."""
    n, dim = pts.shape
    k = centers.shape[0]
    sums = np.zeros((k, dim))
    counts = np.zeros(k)
    for i in range(n):
        counts[label[i]] += 1.0
        for c in range(dim):
            sums[label[i], c] += pts[i, c]
    moved = 0.0
    for j in range(k):
        if counts[j] > 0:
            for c in range(dim):
                v = sums[j, c] / counts[j]
                moved += abs(v - centers[j, c])
                centers[j, c] = v
    return moved


def _lloyd(pts, centers, iters, tick=None):
    """Lloyd iterations in place on ``centers`` [k,D]; returns the final inertia (sum of squared
    distances). Stops when no centre moves. ``tick()`` is called once per iteration (progress and
    cancel)."""
    n = len(pts)
    pts_t = np.ascontiguousarray(pts.T)
    label = np.zeros(n, np.int64)
    dist = np.zeros(n)
    for it in range(iters + 1):
        _nearest(pts_t, centers, label, dist)
        if it == iters or _update(pts, centers, label) < 1e-9:
            break
        if tick is not None:
            tick()
    _nearest(pts_t, centers, label, dist)
    return float(dist.sum())


@njit(nogil=True, parallel=True)
def _potentials(pts, d2, cand):
    """k-means++ trial: for each candidate point index, the sum over all points of the squared
    distance to the nearest of (current centres, that candidate). One pass over the points, in
    blocks on every core."""
    n, dim = pts.shape
    m = cand.shape[0]
    block = 4096
    nb = (n + block - 1) // block
    part = np.zeros((nb, m))
    cpts = np.empty((m, dim))
    for t in range(m):
        cpts[t] = pts[cand[t]]
    for blk in prange(nb):
        for i in range(blk * block, min(n, (blk + 1) * block)):
            for t in range(m):
                d = 0.0
                for c in range(dim):
                    diff = pts[i, c] - cpts[t, c]
                    d += diff * diff
                part[blk, t] += min(d, d2[i])
    out = np.zeros(m)
    for blk in range(nb):  # fixed order: the sums do not depend on the thread count
        for t in range(m):
            out[t] += part[blk, t]
    return out


@njit(nogil=True)
def _add_centre(pts, d2, idx):
    """Lower ``d2`` (squared distance to the nearest centre) by the new centre ``pts[idx]``."""
    n, dim = pts.shape
    for i in range(n):
        d = 0.0
        for c in range(dim):
            diff = pts[i, c] - pts[idx, c]
            d += diff * diff
        if d < d2[i]:
            d2[i] = d


def _kmeanspp(pts, k, rng, tick=None):
    """k-means++ seeding (greedy variant with 2 + log k trials per centre, as scikit-learn)."""
    n = len(pts)
    trials = 2 + int(np.log(k))
    centers = np.empty((k, pts.shape[1]))
    first = rng.integers(n)
    centers[0] = pts[first]
    d2 = np.full(n, np.inf)
    _add_centre(pts, d2, first)
    for j in range(1, k):
        total = d2.sum()
        if total <= 0:
            centers[j:] = centers[0]
            break
        cand = rng.choice(n, size=trials, p=d2 / total)
        pick = int(cand[int(np.argmin(_potentials(pts, d2, cand)))])
        centers[j] = pts[pick]
        _add_centre(pts, d2, pick)
        if tick is not None and j % 16 == 0:
            tick()
    return centers


def kmeans(points: np.ndarray, k: int, seed: int = 0, iters: int = 100, restarts: int = 4,
           progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """K-means (k-means++ seeding, Lloyd) keeping the lowest-inertia of ``restarts`` runs.

    ``points`` [N,D] -> centroids [k,D] float64. With fewer distinct points than k the spare
    centroids duplicate existing ones (harmless: those indices are never the unique nearest).
    progress: ``(done, total)`` callback, called every Lloyd iteration and every 16 seeded centres
    (an exception raised from it, e.g. ComfyUI's cancel, stops the fit).
    """
    rng = np.random.default_rng(seed)
    pts = np.ascontiguousarray(points, dtype=np.float64)
    best, best_inertia = None, np.inf
    runs = max(1, restarts)
    per_run = iters + k // 16
    done = [0]

    def tick():
        done[0] += 1
        if progress is not None:
            progress(min(done[0], runs * per_run), runs * per_run)

    for r in range(runs):
        centers = _kmeanspp(pts, k, rng, tick)
        inertia = _lloyd(pts, centers, iters, tick)
        done[0] = (r + 1) * per_run - 1  # early convergence skips the rest of this run's steps
        tick()
        if inertia < best_inertia:
            best, best_inertia = centers, inertia
    return best


def fit_codebook(frames_u8: np.ndarray, bits: int, samples: int = 1000, seed: int = 0,
                 progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """``[T,H,W,3]`` uint8 -> codebook ``[2^bits,3]`` uint8 from ``samples`` uniformly drawn pixels."""
    flat = frames_u8.reshape(-1, 3)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(flat), size=min(int(samples), len(flat)))
    centers = kmeans(flat[pick], 2 ** bits, seed=seed, progress=progress)
    return np.clip(np.rint(centers), 0, 255).astype(np.uint8)


@njit(nogil=True, parallel=True)
def _assign(flat, codebook, out):
    # blocks of pixels against one centroid at a time: the inner loops vectorise (3x faster
    # than a per-pixel scan over centroids)
    k = codebook.shape[0]
    n = flat.shape[0]
    block = 4096
    book = codebook.astype(np.int32)
    for blk in prange((n + block - 1) // block):
        s = blk * block
        e = min(n, s + block)
        best = np.full(e - s, 1 << 30, np.int32)
        arg = np.zeros(e - s, np.uint8)
        r = flat[s:e, 0].astype(np.int32)
        g = flat[s:e, 1].astype(np.int32)
        b = flat[s:e, 2].astype(np.int32)
        for j in range(k):
            d = (r - book[j, 0]) ** 2 + (g - book[j, 1]) ** 2 + (b - book[j, 2]) ** 2
            for q in range(e - s):
                if d[q] < best[q]:
                    best[q] = d[q]
                    arg[q] = j
        out[s:e] = arg


def assign(frame_u8: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Nearest codebook entry (squared RGB distance, lowest index on ties) for each pixel:
    ``[H,W,3]`` uint8 -> ``[H,W]`` uint8."""
    h, w, _ = frame_u8.shape
    out = np.empty(h * w, np.uint8)
    _assign(np.ascontiguousarray(frame_u8).reshape(-1, 3), np.ascontiguousarray(codebook), out)
    return out.reshape(h, w)


def _pack(indices: np.ndarray, bits: int) -> bytes:
    flat = indices.reshape(-1)
    if bits == 8:
        return flat.tobytes()
    planes = (flat[:, None] >> np.arange(bits - 1, -1, -1, dtype=np.uint8)) & 1
    return np.packbits(planes.reshape(-1)).tobytes()


def _unpacked(data, bits: int, count: int, chunk: int = 1 << 20):
    """Yield ``(start, stop, indices uint8)`` over ``count`` packed ``bits``-bit indices, ``chunk``
    at a time, so the working memory is ``chunk * (bits + 1)`` bytes whatever the frame size."""
    raw = np.frombuffer(data, np.uint8)
    for s in range(0, count, chunk):  # chunk is a multiple of 8: each chunk starts on a byte
        e = min(count, s + chunk)
        if bits == 8:
            yield s, e, raw[s:e]
            continue
        planes = np.unpackbits(raw[s * bits // 8:(e * bits + 7) // 8])[:(e - s) * bits].reshape(e - s, bits)
        v = planes[:, 0].copy()
        for j in range(1, bits):
            v <<= 1
            v |= planes[:, j]
        yield s, e, v


def quantize(frames: np.ndarray, bits: int, per_clip: bool = False, samples: int = 1000,
             seed: int = 0, fps: float = 30.0, progress: Optional[Callable[[int, int], None]] = None):
    """``[T,H,W,3]`` float 0..1 -> (quantized ``[T,H,W,3]`` float32 0..1, Bitstream("vq<n>")).

    The quantized frames are exactly what ``decode`` reconstructs from the stream.
    progress: ``(done, total)`` callback through every K-means fit (an exception raised from it
    stops the work).
    """
    if not 1 <= int(bits) <= 8:
        raise ValueError(f"bits must be 1..8, got {bits}")
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"seed must be 0..2^32-1, got {seed}")
    bits = int(bits)
    u8 = to_uint8(frames)
    t, h, w, _ = u8.shape
    fits = 1 if per_clip else t

    def fit_progress(i):
        if progress is None:
            return None
        return lambda done, total: progress(i * total + done, fits * total)

    if per_clip:
        books = [fit_codebook(u8, bits, samples, seed, fit_progress(0))]
    else:
        books = [fit_codebook(u8[i:i + 1], bits, samples, (seed + i) % 2 ** 32, fit_progress(i))
                 for i in range(t)]
    parts = [_HEADER.pack(_MAGIC, bits, int(per_clip), t, h, w)] + [b.tobytes() for b in books]
    out = np.empty_like(u8)
    for i in range(t):
        book = books[0 if per_clip else i]
        idx = assign(u8[i], book)
        out[i] = book[idx]
        parts.append(_pack(idx, bits))
    stream = Bitstream(f"vq{bits}", (b"".join(parts),), (t, h, w, 3), fps,
                       {"bits": bits, "codebook": "per clip" if per_clip else "per frame", "samples": samples})
    return out.astype(np.float32) / 255.0, stream


def decode(stream: Bitstream) -> np.ndarray:
    """Bitstream from ``quantize`` -> ``[T,H,W,3]`` float32 0..1; rejects truncated/corrupt data
    and a header that disagrees with the bitstream's declared shape or codec."""
    data = b"".join(stream.payload)
    if len(data) < _HEADER.size:
        raise ValueError("bit-depth stream is truncated (no header)")
    magic, bits, per_clip, t, h, w = _HEADER.unpack_from(data)
    if magic != _MAGIC or not 1 <= bits <= 8 or per_clip > 1 or t == 0 or h == 0 or w == 0:
        raise ValueError("not a MetaVSR bit-depth stream (bad header)")
    if (t, h, w, 3) != tuple(stream.shape) or stream.codec != f"vq{bits}":
        raise ValueError(f"bit-depth stream header says {t} frame(s) {w}x{h} at {bits} bits, but the bitstream "
                         f"declares {stream.shape} as {stream.codec!r}: corrupt or mixed-up stream")
    k = 2 ** bits
    nbooks = 1 if per_clip else t
    frame_bytes = (h * w * bits + 7) // 8
    expect = _HEADER.size + nbooks * k * 3 + t * frame_bytes
    if len(data) != expect:
        raise ValueError(f"bit-depth stream has {len(data)} bytes, header implies {expect}: corrupt or truncated")
    pos = _HEADER.size
    books = np.frombuffer(data, np.uint8, nbooks * k * 3, pos).reshape(nbooks, k, 3)
    pos += nbooks * k * 3
    out = np.empty((t, h, w, 3), np.float32)
    view = memoryview(data)
    for i in range(t):
        lut = books[0 if per_clip else i].astype(np.float32) / np.float32(255.0)
        flat = out[i].reshape(h * w, 3)
        for s, e, idx in _unpacked(view[pos:pos + frame_bytes], bits, h * w):
            flat[s:e] = lut[idx]
        pos += frame_bytes
    return out


def cadm_ratio(scale: int, bits: int) -> float:
    """CaDM's nominal compression over 24-bit full-resolution frames: 24·s²/n."""
    return 24.0 * scale * scale / bits
