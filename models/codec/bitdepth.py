"""CaDM colour bit-depth quantization (Sec. 3.2.2): K-means vector quantization of RGB to 2^n colours.

The codebook is fitted on ~1000 uniformly sampled pixels (seeded), then every pixel is replaced by
its nearest centroid. The stream carries the codebook (2^n RGB triplets, uint8) and the packed
n-bit indices, so its size is real; CaDM's nominal ratio over 24-bit full resolution is 24·s²/n.

Stream layout (big-endian): b"MVQ1", bits u8, per_clip u8, T u16, H u32, W u32, then the codebooks
(1 or T of them, 2^n x 3 bytes), then each frame's indices packed MSB-first, row-major, each
frame padded to a whole byte.
"""
import struct

import numpy as np

from .._jit import njit, prange
from .bitstream import Bitstream
from .jpeg import to_uint8

_HEADER = struct.Struct(">4sBBHII")
_MAGIC = b"MVQ1"


@njit(nogil=True)
def _lloyd(pts, centers, iters):
    """Lloyd iterations in place on ``centers`` [k,D]; returns the final inertia (sum of squared
    distances). Empty clusters keep their previous centre."""
    n, dim = pts.shape
    k = centers.shape[0]
    label = np.zeros(n, np.int64)
    inertia = 0.0
    for it in range(iters + 1):
        inertia = 0.0
        for i in range(n):
            best, arg = 1e300, 0
            for j in range(k):
                d = 0.0
                for c in range(dim):
                    diff = pts[i, c] - centers[j, c]
                    d += diff * diff
                if d < best:
                    best, arg = d, j
            label[i] = arg
            inertia += best
        if it == iters:
            break
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
        if moved < 1e-9:
            break
    return inertia


def _kmeanspp(pts, k, rng):
    """k-means++ seeding (greedy variant with 2 + log k trials per centre, as scikit-learn)."""
    n = len(pts)
    trials = 2 + int(np.log(k))
    centers = np.empty((k, pts.shape[1]))
    centers[0] = pts[rng.integers(n)]
    d2 = ((pts - centers[0]) ** 2).sum(1)
    for j in range(1, k):
        total = d2.sum()
        if total <= 0:
            centers[j:] = centers[0]
            break
        cand = rng.choice(n, size=trials, p=d2 / total)
        cand_d2 = np.minimum(d2[None], ((pts[None] - pts[cand][:, None]) ** 2).sum(-1))
        pick = int(cand_d2.sum(1).argmin())
        centers[j] = pts[cand[pick]]
        d2 = cand_d2[pick]
    return centers


def kmeans(points: np.ndarray, k: int, seed: int = 0, iters: int = 100, restarts: int = 4) -> np.ndarray:
    """K-means (k-means++ seeding, Lloyd) keeping the lowest-inertia of ``restarts`` runs.

    ``points`` [N,D] -> centroids [k,D] float64. With fewer distinct points than k the spare
    centroids duplicate existing ones (harmless: those indices are never the unique nearest).
    """
    rng = np.random.default_rng(seed)
    pts = np.ascontiguousarray(points, dtype=np.float64)
    best, best_inertia = None, np.inf
    for _ in range(max(1, restarts)):
        centers = _kmeanspp(pts, k, rng)
        inertia = _lloyd(pts, centers, iters)
        if inertia < best_inertia:
            best, best_inertia = centers, inertia
    return best


def fit_codebook(frames_u8: np.ndarray, bits: int, samples: int = 1000, seed: int = 0) -> np.ndarray:
    """``[T,H,W,3]`` uint8 -> codebook ``[2^bits,3]`` uint8 from ``samples`` uniformly drawn pixels."""
    flat = frames_u8.reshape(-1, 3)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(flat), size=min(int(samples), len(flat)))
    centers = kmeans(flat[pick], 2 ** bits, seed=seed)
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


def _unpack(data: bytes, bits: int, count: int) -> np.ndarray:
    if bits == 8:
        return np.frombuffer(data, np.uint8, count).copy()
    b = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint8)
    return (b * weights).sum(1).astype(np.uint8)


def quantize(frames: np.ndarray, bits: int, per_clip: bool = False, samples: int = 1000,
             seed: int = 0, fps: float = 30.0):
    """``[T,H,W,3]`` float 0..1 -> (quantized ``[T,H,W,3]`` float32 0..1, Bitstream("vq<n>")).

    The quantized frames are exactly what ``decode`` reconstructs from the stream.
    """
    if not 1 <= int(bits) <= 8:
        raise ValueError(f"bits must be 1..8, got {bits}")
    bits = int(bits)
    u8 = to_uint8(frames)
    t, h, w, _ = u8.shape
    if per_clip:
        books = [fit_codebook(u8, bits, samples, seed)]
    else:
        books = [fit_codebook(u8[i:i + 1], bits, samples, seed + i) for i in range(t)]
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
    """Bitstream from ``quantize`` -> ``[T,H,W,3]`` float32 0..1; rejects truncated/corrupt data."""
    data = b"".join(stream.payload)
    if len(data) < _HEADER.size:
        raise ValueError("bit-depth stream is truncated (no header)")
    magic, bits, per_clip, t, h, w = _HEADER.unpack_from(data)
    if magic != _MAGIC or not 1 <= bits <= 8 or per_clip > 1 or t == 0 or h == 0 or w == 0:
        raise ValueError("not a MetaVSR bit-depth stream (bad header)")
    k = 2 ** bits
    nbooks = 1 if per_clip else t
    frame_bytes = (h * w * bits + 7) // 8
    expect = _HEADER.size + nbooks * k * 3 + t * frame_bytes
    if len(data) != expect:
        raise ValueError(f"bit-depth stream has {len(data)} bytes, header implies {expect}: corrupt or truncated")
    pos = _HEADER.size
    books = np.frombuffer(data, np.uint8, nbooks * k * 3, pos).reshape(nbooks, k, 3)
    pos += nbooks * k * 3
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        idx = _unpack(data[pos:pos + frame_bytes], bits, h * w)
        pos += frame_bytes
        out[i] = books[0 if per_clip else i][idx].reshape(h, w, 3)
    return out.astype(np.float32) / 255.0


def cadm_ratio(scale: int, bits: int) -> float:
    """CaDM's nominal compression over 24-bit full-resolution frames: 24·s²/n."""
    return 24.0 * scale * scale / bits
