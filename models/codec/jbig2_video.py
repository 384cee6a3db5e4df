"""Inter-frame JBIG2 for clips of bi-level maps: each frame a T.88 generic region (intra) or a T.88
generic refinement region against the previous decoded frame (inter), in a small container.

Consecutive edge maps are highly redundant; T.88's refinement coding (6.3, ``jbig2_refine``) codes
a bitmap with a template spanning it and a reference bitmap. Here the reference of frame t is the
decoded frame t-1 displaced by the frame's global motion (dx, dy) - an integer shift the sender
estimates (:func:`estimate_motion`) and sends in the frame record - and cropped to the frame,
zero-filled: ``ref(x, y) = frame[t-1](x - dx, y - dy)`` inside the frame, 0 outside it (:func:`shifted`).
It is coded with GRREFERENCEDX/DY = 0, as T.88 7.4.7.5 sets them for a refinement region whose
reference is the page, so a page holding that displaced reference gives exactly the same bits.

Container (all integers big-endian)::

    header  28 bytes: magic "\\x97JB2CLP\\n" (8) | version u8 = 1 | flags u8 (bit 0 CARRY, others 0) | width u32 |
            height u32 | frames u32 | key_interval u16 | CRC-32 of the 24 bytes before it (u32)
    record  per frame, in order, 20 bytes + body:
            index u32 | kind u8 (0 intra, 1 inter) | dx i8 | dy i8 | reserved u8 = 0 |
            body length u32 | CRC-32 of the body u32 | CRC-32 of the 16 bytes before it u32
    body    intra: the data of a T.88 immediate lossless generic region segment (7.4.6: region
            information, flags, AT pixels, MQ data), region = the whole frame at (0, 0);
            inter: the data of an immediate lossless generic refinement region segment (7.4.7:
            region information with combination operator REPLACE, flags GRTEMPLATE | TPGRON << 1,
            GRAT pixels for GRTEMPLATE 0, MQ data), reference = frame t-1 displaced by (dx, dy).
            A record's dx, dy are 0 for intra frames.

Frame 0 and every ``key_interval``-th frame are intra (key frames: a decoder can start there);
other frames are inter unless intra codes smaller. Bodies are segment data as T.88 defines it, so
any intra frame is a standard ``.jb2`` once wrapped in a file header, page information and end of
page / file (:func:`frame_file`), and an inter frame too, with the displaced reference coded as a
generic region on its page first (jbig2dec reads both, bit-exactly).

CARRY (the default): an inter frame's MQ contexts start where the previous inter frame of the same
GRTEMPLATE left them, not from zero (every intra frame resets them), so the context model keeps
what it learnt over the clip instead of paying its learning on every frame. This is outside T.88
(a refinement region starts from fresh contexts), so with CARRY only intra frames export as
standalone files; ``encode_clip(carry_contexts=False)`` writes inter frames that export too.

Damage: every record and body is CRC-checked. ``decode_clip(..., on_error="skip")`` marks a damaged
frame lost, and every inter frame after it until the next intra frame; after a damaged record
header it finds the next record by its header CRC. All sizes are checked before reading, every
allocation is taken from the still decoder's budget (``jbig2.Limits``), and the work is bounded by
the declared frame area; every failure is a :class:`~.jbig2.JBIG2Error`.
"""
import struct
import zlib
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np

from . import jbig2, jbig2_refine
from .jbig2 import JBIG2Error, Limits
from .jbig2_refine import RefinementError
from .mq import jit

CLIP_MAGIC = b"\x97JB2CLP\n"
VERSION = 1
_HEADER = struct.Struct(">BBIIIH")  # after the magic, before the CRC
_RECORD = struct.Struct(">IBbbBII")  # before the record header's own CRC
HEADER_BYTES = len(CLIP_MAGIC) + _HEADER.size + 4
RECORD_BYTES = _RECORD.size + 4
INTRA, INTER = 0, 1
KIND_NAMES = {INTRA: "intra", INTER: "inter"}
MAX_MOTION = 127  # dx, dy travel as signed bytes
REPLACE = 4  # 7.4.1.5 external combination operator
CARRY = 0x01  # header flag: inter frames carry their MQ contexts (module doc)
# an intra coding is tried beside the inter one when the inter frame is not clearly smaller than
# the last intra frame's bytes per edge pixel predicts (the cheap estimate; 0 codes both always)
INTRA_RETRY = 0.8
TEMPLATE_TRIAL = 8  # both refinement templates are coded on every 8th inter frame after an intra one


@dataclass(frozen=True)
class FrameRecord:
    """One frame of a clip as stored: ``kind`` INTRA / INTER, global motion, body bytes."""
    index: int
    kind: int
    dx: int
    dy: int
    nbytes: int


@dataclass(frozen=True)
class DecodedClip:
    """``frames`` ``[T,H,W]`` uint8 (1 = black; lost frames all 0) and ``lost``, the indices of the
    frames that could not be decoded (damaged, or inter after a damaged frame)."""
    frames: np.ndarray
    lost: Tuple[int, ...]


# --------------------------------------------------------------------------------------------
# Global motion at the sender
# --------------------------------------------------------------------------------------------
@jit
def _match_counts(ys, xs, prev, cy, cx, r):
    """``counts[a, b]``: how many points (ys[i], xs[i]) have ``prev[y - cy - (a - r), x - cx - (b - r)]``
    set, for shifts within ``r`` of (cx, cy). ``[2r+1, 2r+1]`` int64."""
    h, w = prev.shape
    n = 2 * r + 1
    counts = np.zeros((n, n), np.int64)
    for i in range(ys.shape[0]):
        for a in range(n):
            py = ys[i] - cy - (a - r)
            if py < 0 or py >= h:
                continue
            for b in range(n):
                px = xs[i] - cx - (b - r)
                if px >= 0 and px < w and prev[py, px]:
                    counts[a, b] += 1
    return counts


def _sample_ones(bitmap, max_points):
    """Coordinates ``(ys, xs)`` (int64) of the 1s on every k-th row, k chosen to keep about
    ``max_points`` of them: a subsample bounds the time, the shift stays accurate."""
    k = max(1, int(np.count_nonzero(bitmap)) // max_points)
    ys, xs = np.nonzero(bitmap[::k])
    return ys.astype(np.int64) * k, xs.astype(np.int64)


COARSE = 4  # the coarse search runs on 1/4-resolution maps


def coarse_map(bitmap) -> np.ndarray:
    """The 1/4-resolution map phase correlation runs on: the edge fraction per 4x4 block (which
    keeps dense maps from saturating as a block-OR would), ``[H//4, W//4]`` float32. A clip coder
    computes it once per frame and passes it to :func:`estimate_motion` twice."""
    h, w = bitmap.shape
    scaled = (np.asarray(bitmap) != 0).view(np.uint8) * np.uint8(255)  # uint8 averages would round to 0
    return cv2.resize(scaled, (w // COARSE, h // COARSE), interpolation=cv2.INTER_AREA).astype(np.float32)


def _search(prev, cur, ys, xs, max_shift, coarse):
    """The shift within ``max_shift`` (phase correlation of the coarse maps, then 3 pixels around it
    at full resolution) that lines up most of the points ``ys, xs`` of ``cur`` with ``prev``:
    ``(dx, dy, matches at (0, 0), matches at (dx, dy))``."""
    if min(cur.shape) >= 16 * COARSE and max_shift >= COARSE:
        small = coarse() if coarse is not None else (coarse_map(prev), coarse_map(cur))
        (sx, sy), _ = cv2.phaseCorrelate(small[0], small[1])
        cx = int(np.clip(round(sx * COARSE), -max_shift, max_shift))
        cy = int(np.clip(round(sy * COARSE), -max_shift, max_shift))
        r = COARSE // 2 + 1
    else:
        cx, cy, r = 0, 0, max_shift
    counts = _match_counts(ys, xs, prev, cy, cx, r)
    a, b = np.unravel_index(int(np.argmax(counts)), counts.shape)
    dx = int(np.clip(cx + b - r, -max_shift, max_shift))
    dy = int(np.clip(cy + a - r, -max_shift, max_shift))
    zero = int(_match_counts(ys, xs, prev, 0, 0, 0)[0, 0])
    return dx, dy, zero, int(_match_counts(ys, xs, prev, dy, dx, 0)[0, 0])


def estimate_motion(prev, cur, max_shift: int = 16, max_points: int = 3000, coarse=None) -> Tuple[int, int]:
    """Integer global motion ``(dx, dy)`` with ``cur(x, y) ~ prev(x - dx, y - dy)``, |dx|, |dy| <=
    ``max_shift``: phase correlation on 1/4-resolution maps (``coarse``: a callable returning their
    :func:`coarse_map` s, computed here when None), then the shift within 3 pixels of it that makes
    the most edge pixels of ``cur`` (a subsample of about ``max_points``) coincide with ``prev`` at
    full resolution. (0, 0) unless the shift lines up clearly (1 %) more edge pixels."""
    max_shift = int(min(max(max_shift, 0), MAX_MOTION))
    cur, prev = np.ascontiguousarray(cur, np.uint8), np.ascontiguousarray(prev, np.uint8)
    ys, xs = _sample_ones(cur, max_points)
    if max_shift == 0 or ys.size == 0:
        return 0, 0
    dx, dy, zero, best = _search(prev, cur, ys, xs, max_shift, coarse)
    return (dx, dy) if best > 1.01 * zero else (0, 0)


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------
def _region_info(w, h, op):
    return struct.pack(">IIIIB", w, h, 0, 0, op)  # 7.4.1: the whole frame at (0, 0)


def refinement_data(w: int, h: int, template: int, at, tpgron: bool, coded: bytes) -> bytes:
    """Data of an immediate generic refinement region segment (7.4.7) covering a ``w x h`` region at
    (0, 0), combination operator REPLACE."""
    at_bytes = b"" if template else struct.pack(">bbbb", *at[0], *at[1])
    return _region_info(w, h, REPLACE) + bytes([(int(bool(tpgron)) << 1) | template]) + at_bytes + coded


def _inter_body(bitmap, reference, template, tpgron=True, cx=None):
    """Refinement segment data of ``bitmap`` against ``reference`` (already displaced). TPGRON is
    written with GRTEMPLATE 0 only (see ``jbig2_refine``: readers disagree on template 1's).
    ``cx``: carried context states, updated in place (None: fresh)."""
    at = jbig2_refine.NOMINAL_GRAT if template == 0 else ()
    tpgron = bool(tpgron) and template == 0
    coded = jbig2_refine.encode_refinement(bitmap, reference, 0, 0, template, at, tpgron, cx)
    h, w = bitmap.shape
    return refinement_data(w, h, template, at, tpgron, coded)


def shifted(reference, dx: int, dy: int) -> np.ndarray:
    """``reference`` displaced by (dx, dy), zero-filled: ``out[y, x] = reference[y - dy, x - dx]``
    (what GRREFERENCEDX/DY make of the reference). ``[H,W]`` uint8 0/1."""
    h, w = reference.shape
    out = np.zeros((h, w), np.uint8)
    ys, xs = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
    if ys.start < ys.stop and xs.start < xs.stop:
        out[ys, xs] = np.asarray(reference)[ys.start - dy:ys.stop - dy, xs.start - dx:xs.stop - dx] != 0
    return out


EXPLAINED = 0.85  # this share of edge pixels within 1 px of an edge before: no motion search
SURE = 2.0  # a shift lining up this many times the edge pixels of none is taken without a trial
_NEIGHBOURS = np.ones((3, 3), np.uint8)


def _frame_motion(prev, cur, max_shift, coarse, template, tpgron):
    """The motion frame ``cur`` is coded with. (0, 0) when most of its edge pixels (``EXPLAINED``)
    lie within 1 px of an edge of ``prev`` - the refinement template reaches that far by itself -
    or when no shift lines up clearly (5 %) more of them; the shift :func:`estimate_motion`'s search
    finds when it lines up many more (``SURE``); in between, whichever codes a sample of the frame
    smaller (bands of 8 rows every 64: an eighth of the frame, spread over it), since coinciding
    edge pixels do not always mean fewer bits (a zoom, local motion)."""
    ys, xs = _sample_ones(cur, 3000)
    if max_shift == 0 or ys.size == 0:
        return 0, 0
    near = cv2.dilate(prev, _NEIGHBOURS)
    if _match_counts(ys, xs, near, 0, 0, 0)[0, 0] >= EXPLAINED * ys.size:
        return 0, 0
    dx, dy, zero, best = _search(prev, cur, ys, xs, max_shift, coarse)
    if best <= 1.05 * zero:
        return 0, 0
    if best >= SURE * zero:
        return dx, dy
    rows = np.arange(cur.shape[0])
    rows = rows[rows % 64 < 8] if cur.shape[0] >= 64 else rows
    sizes = [len(jbig2_refine.encode_refinement(cur[rows], shifted(prev, x, y)[rows], 0, 0, template,
                                                None, tpgron and template == 0))
             for x, y in ((0, 0), (dx, dy))]
    return (dx, dy) if sizes[1] < sizes[0] else (0, 0)


def _inter(bitmap, reference, templates, tpgron, carried=None):
    """The smallest inter body over ``templates``: ``(body, template, contexts after it)``; each
    trial starts from a copy of ``carried[template]`` (None: fresh contexts)."""
    best = None
    for template in templates:
        cx = None if carried is None else carried[template].copy()
        body = _inter_body(bitmap, reference, template, tpgron, cx)
        if best is None or len(body) < len(best[0]):
            best = (body, template, cx)
    return best


def _intra_body(bitmap, intra):
    h, w = bitmap.shape
    template, at, tpgdon, coded = jbig2._coded(bitmap, intra.get("template", 0), intra.get("tpgdon", False),
                                               intra.get("at"), intra.get("auto", False),
                                               intra.get("search_at", True), intra.get("typical_first_row", False))
    return jbig2._region_data(w, h, template, at, tpgdon, coded)


def _record(index, kind, dx, dy, body):
    head = _RECORD.pack(index, kind, dx, dy, 0, len(body), zlib.crc32(body))
    return head + struct.pack(">I", zlib.crc32(head)) + body


def _header(w, h, frames, key_interval, flags=0):
    head = CLIP_MAGIC + _HEADER.pack(VERSION, flags, w, h, frames, key_interval)
    return head + struct.pack(">I", zlib.crc32(head))


def _as_clip(maps) -> np.ndarray:
    if hasattr(maps, "detach"):  # torch tensor
        maps = maps.detach().cpu().numpy()
    arr = np.asarray(maps)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ValueError(f"a clip must be [T,H,W] bi-level maps, got shape {arr.shape}")
    t, h, w = arr.shape
    if t * h * w > jbig2.MAX_PIXELS or t >= 1 << 32:
        raise ValueError(f"{t} frames of {w}x{h} exceed {jbig2.MAX_PIXELS} pixels; code it in parts")
    return np.stack([jbig2._as_bitmap(f) for f in arr])


def encode_clip(maps, key_interval: int = 30, motion: bool = True, max_motion: int = 16,
                intra: Optional[dict] = None, intra_retry: float = INTRA_RETRY, tpgron: bool = True,
                carry_contexts: bool = True, progress=None) -> bytes:
    """Code ``[T,H,W]`` bi-level maps (1 = black) as a clip (format: module doc).

    key_interval: frames 0, N, 2N, ... are intra (1 = every frame intra, i.e. per-frame JBIG2).
    motion:       code against the previous frame shifted by its global motion when that pays
                  (:func:`_frame_motion`; |dx|, |dy| <= ``max_motion``).
    intra:        generic-region options for intra frames, as :func:`jbig2.encode` takes them
                  (``template``, ``tpgdon``, ``at``, ``auto``, ``search_at``); default template 0.
    intra_retry:  a non-key frame is also coded intra (and the smaller kept) when its inter coding
                  exceeds this fraction of the intra size estimated from the last intra frame's
                  bytes per edge pixel, or doubles over the previous frame's bytes; 0 codes both
                  every time (the exact choice).
    tpgron:       typical prediction in the refinement coder (off only to study it).
    carry_contexts: CARRY (module doc): smaller clips; False writes inter frames that are standard
                  refinement regions (each exports as a .jb2).

    Inter frames use GRTEMPLATE 0 or 1, both coded on every ``TEMPLATE_TRIAL``-th inter frame and
    the winner kept in between. The output's every byte is counted by the caller's rate (a
    ``Bitstream`` payload): header, records and bodies.
    """
    clip = _as_clip(maps)
    t, h, w = clip.shape
    key_interval = int(key_interval)
    if not 1 <= key_interval <= 0xFFFF:
        raise ValueError(f"key_interval must be 1..65535, got {key_interval}")
    intra = dict(intra or {})
    parts = [_header(w, h, t, key_interval, CARRY if carry_contexts else 0)]
    carried = None
    rate = None  # intra bytes per edge pixel of the last intra frame
    template, since = 0, 0  # the inter template chosen last, inter frames since
    max_motion = int(min(max(max_motion, 0), MAX_MOTION)) if motion else 0
    coarse = {}  # coarse maps by frame, made when a search needs them (each frame's once)
    last = 0  # bytes of the previous frame's body (frame 0 is intra: set before any inter frame)
    for i in range(t):
        cur = clip[i]
        ones = int(np.count_nonzero(cur))
        kind, dx, dy, body = INTRA, 0, 0, None
        if i % key_interval:
            pair = lambda i=i: tuple(coarse.setdefault(j, coarse_map(clip[j])) for j in (i - 1, i))  # noqa: E731
            dx, dy = _frame_motion(clip[i - 1], cur, max_motion, pair, template, tpgron)
            # GRTEMPLATE 0 models more, 1 adapts faster (flicker, small frames): both are coded
            # now and then and the winner kept in between, which costs one coding per frame
            trial = (0, 1) if since % TEMPLATE_TRIAL == 0 else (template,)
            ref = shifted(clip[i - 1], dx, dy)
            body, template, cx = _inter(cur, ref, trial, tpgron, carried)
            kind, since = INTER, since + 1
            # intra is coded too when it may win: the estimate says so, or the inter frame grew
            # more than twice over the last one (a scene cut makes the estimate's rate stale)
            if rate is None or len(body) >= intra_retry * rate * max(ones, 1) or len(body) > 2 * last:
                alt = _intra_body(cur, intra)
                rate = len(alt) / max(ones, 1)
                if len(alt) < len(body):
                    kind, dx, dy, body = INTRA, 0, 0, alt
        if body is None:
            body = _intra_body(cur, intra)
            rate = len(body) / max(ones, 1)
        if kind == INTRA:
            since = 0
            carried = {0: jbig2_refine.contexts(), 1: jbig2_refine.contexts()} if carry_contexts else None
        elif carried is not None:
            carried[template] = cx
        last = len(body)
        parts.append(_record(i, kind, dx, dy, body))
        coarse.pop(i - 1, None)
        if progress is not None:
            progress(i + 1, t)
    return b"".join(parts)


def refinement_file(reference, bitmap, template: int = 0, at=None, tpgron: bool = False) -> bytes:
    """A standard single-page JBIG2 file (T.88 Annex D.4) of ``bitmap``: an immediate lossless
    generic region drawing ``reference`` (same size) on the page, then an immediate lossless
    generic refinement region (type 43, no referred-to segment: the page is the reference, 7.4.7.4)
    replacing it by ``bitmap``. jbig2dec reads it; the test of our refinement coder."""
    reference = jbig2._as_bitmap(reference)
    bitmap = jbig2._as_bitmap(bitmap)
    if reference.shape != bitmap.shape:
        raise ValueError(f"reference {reference.shape} and bitmap {bitmap.shape} differ in size")
    at = jbig2_refine.check_grat(template, at)
    coded = jbig2_refine.encode_refinement(bitmap, reference, 0, 0, template, at, tpgron)
    h, w = bitmap.shape
    return _page_file(w, h, _intra_body(reference, {}), refinement_data(w, h, template, at, tpgron, coded))


def _page_file(w, h, generic_body, refine_body=None):
    """Standalone file: page information (refinements and overridden operators flagged, 7.4.8.5),
    the generic region segment, optionally a refinement region segment, end of page and file."""
    flags = 0x01 | (0x42 if refine_body is not None else 0)
    info = struct.pack(">IIIIBH", w, h, 0, 0, flags, 0)
    segs = [jbig2._segment(0, jbig2.SEG_PAGE_INFO, info),
            jbig2._segment(1, jbig2.SEG_IMMEDIATE_LOSSLESS_GENERIC, generic_body)]
    if refine_body is not None:
        segs.append(jbig2._segment(2, SEG_IMMEDIATE_LOSSLESS_REFINEMENT, refine_body))
    segs += [jbig2._segment(len(segs), jbig2.SEG_END_OF_PAGE, b""),
             jbig2._segment(len(segs) + 1, jbig2.SEG_END_OF_FILE, b"", page=0)]
    return jbig2.MAGIC + b"\x01" + struct.pack(">I", 1) + b"".join(segs)


SEG_IMMEDIATE_LOSSLESS_REFINEMENT = 43


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------
def clip_limits(width: int, height: int, frames: int, max_input: int = jbig2.MAX_INPUT) -> Limits:
    """Limits that admit a clip of ``frames`` frames of ``width x height`` (any coding) and nothing
    larger: for a clip whose size is declared elsewhere (a bitstream's shape)."""
    area = int(width) * int(height)
    worst = max(jbig2.decode_memory(int(height), int(width), ((-128, -128), (127, -128), (-128, 0), (0, -128))),
                jbig2_refine.decode_memory(int(height), int(width), 0, ((-128, -128), (127, 127))))
    return Limits(max_input=int(max_input), max_pixels=frames * area,
                  max_memory=int(max_input) + frames * area + worst, max_work=frames * area)


def _u32(buf, pos):
    return struct.unpack_from(">I", buf, pos)[0]


def _read_header(buf, limits: Limits):
    if len(buf) < HEADER_BYTES or bytes(buf[:8]) != CLIP_MAGIC:
        raise JBIG2Error("not a MetaVSR JBIG2 clip: bad magic (expected 97 4A 42 32 43 4C 50 0A); a "
                         "single-frame .jb2 file is read by jbig2.decode")
    if zlib.crc32(bytes(buf[:HEADER_BYTES - 4])) != _u32(buf, HEADER_BYTES - 4):
        raise JBIG2Error("clip header CRC mismatch: the header is damaged and nothing can be decoded")
    version, flags, w, h, frames, key_interval = _HEADER.unpack_from(buf, 8)
    if version != VERSION:
        raise JBIG2Error(f"clip version {version} is not supported (this decoder reads version {VERSION})")
    if flags & ~CARRY:
        raise JBIG2Error(f"clip header flags 0x{flags:02X}: bits 1-7 are reserved and shall be 0")
    if w == 0 or h == 0 or frames == 0 or key_interval == 0:
        raise JBIG2Error(f"clip header declares {frames} frame(s) of {w}x{h}, key interval {key_interval}: "
                         f"none may be 0")
    if w * h * frames > limits.max_pixels:
        raise JBIG2Error(f"{frames} frame(s) of {w}x{h} exceed the pixel cap ({limits.max_pixels}); raise "
                         f"Limits.max_pixels if the clip is genuine")
    return w, h, frames, key_interval, flags


def _read_head(buf, pos):
    """``(FrameRecord, body start, body CRC)`` of the record header at ``pos``; JBIG2Error when it is
    damaged or declares more bytes than are left."""
    if pos + RECORD_BYTES > len(buf):
        raise JBIG2Error(f"truncated: a frame record needs {RECORD_BYTES} bytes at offset {pos}, "
                         f"{max(len(buf) - pos, 0)} left")
    head = bytes(buf[pos:pos + _RECORD.size])
    if zlib.crc32(head) != _u32(buf, pos + _RECORD.size):
        raise JBIG2Error(f"frame record at offset {pos}: header CRC mismatch (damaged)")
    index, kind, dx, dy, reserved, length, crc = _RECORD.unpack(head)
    if kind not in KIND_NAMES or reserved:
        raise JBIG2Error(f"frame record {index}: kind {kind} / reserved byte {reserved} invalid")
    start = pos + RECORD_BYTES
    if length > len(buf) - start:
        raise JBIG2Error(f"truncated: frame {index} declares {length} bytes, {len(buf) - start} left")
    return FrameRecord(index, kind, dx, dy, length), start, crc


def _body(buf, rec, start, crc):
    body = buf[start:start + rec.nbytes]
    if zlib.crc32(body) != crc:
        raise JBIG2Error("body CRC mismatch (damaged)")
    return body


def _u32_at(arr, lo, hi, k):
    """The big-endian u32 at offset ``p + k`` for every ``p`` in ``lo .. hi-1``: ``[hi-lo]`` int64."""
    out = np.zeros(hi - lo, np.int64)
    for j in range(4):
        out = (out << 8) | arr[lo + k + j:hi + k + j]
    return out


def _resync(buf, pos, expected, t, chunk=1 << 16):
    """``(FrameRecord, start, crc)`` of the next intact record header after ``pos`` whose index is
    ``expected .. t-1``, or None. A header is 16 bytes followed by their CRC-32, so a false match
    is a 2^-32 event per offset. Offsets are screened a chunk at a time before any CRC - kind <= 1,
    reserved byte 0, index in range, a body of at least 18 bytes (a region's information) that
    fits - in a few numpy passes, which keeps the scan linear, fast and small in memory."""
    arr = np.frombuffer(buf, np.uint8)
    end = len(buf) - RECORD_BYTES + 1  # last offset a whole header fits at, plus one
    for lo in range(pos + 1, end, chunk):
        hi = min(lo + chunk, end)
        index, length = _u32_at(arr, lo, hi, 0), _u32_at(arr, lo, hi, 8)
        room = len(buf) - RECORD_BYTES - np.arange(lo, hi)
        ok = ((arr[lo + 4:hi + 4] <= INTER) & (arr[lo + 7:hi + 7] == 0) & (index >= expected) & (index < t)
              & (length >= 18) & (length <= room))
        for p in (np.flatnonzero(ok) + lo).tolist():
            try:
                head = _read_head(buf, p)
            except JBIG2Error:
                continue
            if expected <= head[0].index < t:
                return head
    return None


def _decode_inter(body, reference, work, guard, carried=None):
    """One refinement body (7.4.7 segment data) against the displaced previous frame -> ``[H,W]`` uint8."""
    h, w = reference.shape
    if len(body) < 18:
        raise JBIG2Error(f"refinement region data too short ({len(body)} bytes)")
    rw, rh, rx, ry, rflags = struct.unpack(">IIIIB", bytes(body[:17]))
    flags = body[17]
    if (rw, rh, rx, ry) != (w, h, 0, 0):
        raise JBIG2Error(f"refinement region {rw}x{rh} at ({rx},{ry}) is not the clip's {w}x{h} frame at (0,0)")
    if rflags != REPLACE:
        raise JBIG2Error(f"refinement region flags 0x{rflags:02X}: a clip frame replaces its reference "
                         f"(combination operator 4, no colour)")
    jbig2._reserved(flags, 0xFC, "generic refinement region segment flags", "2-7", "7.4.7.2")
    template, tpgron = flags & 1, bool(flags & 2)
    n_at = 0 if template else 4
    if len(body) < 18 + n_at:
        raise JBIG2Error("truncated: refinement region GRAT pixels missing")
    raw = struct.unpack(">bbbb", bytes(body[18:22])) if n_at else ()
    try:
        at = jbig2_refine.check_grat(template, (raw[:2], raw[2:]) if n_at else None, strict=False)
    except RefinementError as e:
        raise JBIG2Error(f"refinement region: {e}") from None
    if w * h > work[0]:
        raise JBIG2Error(f"frame {w}x{h} exceeds the decoding work left ({work[0]} pixels)")
    work[0] -= w * h
    need = jbig2_refine.decode_memory(h, w, template, at)
    guard.take(need, f"refinement region {w}x{h}")
    try:
        cx = None if carried is None else carried[template]
        return jbig2_refine.decode_refinement(body[18 + n_at:], h, w, reference, 0, 0, template, at, tpgron,
                                              cx=cx)
    finally:
        guard.give(need)


def _decode_intra(body, h, w, work, guard):
    """One generic region body (7.4.6 segment data) covering the frame -> ``[H,W]`` uint8."""
    guard.take(h * w, "the intra frame's page")
    try:
        page = np.zeros((h, w), np.uint8)
        cover = [w * h]
        jbig2.page_region(page, body, work, guard, cover)
        if cover[0]:
            raise JBIG2Error(f"intra frame region does not cover the {w}x{h} frame")
        return page
    finally:
        guard.give(h * w)


def _decode_frame(rec, body, frames, prev_ok, work, guard, carried=None):
    """Decode one record into ``frames[rec.index]``; False when its reference frame is lost.
    ``carried``: the CARRY contexts by template (reset here at an intra frame), or None."""
    _, h, w = frames.shape
    if rec.kind == INTRA:
        if rec.dx or rec.dy:
            raise JBIG2Error(f"an intra frame carries motion ({rec.dx}, {rec.dy})")
        frames[rec.index] = _decode_intra(body, h, w, work, guard)
        if carried is not None:
            carried[0], carried[1] = jbig2_refine.contexts(), jbig2_refine.contexts()
        return True
    if not prev_ok:
        return False
    guard.take(h * w, "the displaced reference")
    try:
        frames[rec.index] = _decode_inter(body, shifted(frames[rec.index - 1], rec.dx, rec.dy), work, guard,
                                          carried)
    finally:
        guard.give(h * w)
    return True


def decode_clip(data, on_error: str = "raise", limits: Optional[Limits] = None) -> DecodedClip:
    """Decode a clip (module doc) -> :class:`DecodedClip`.

    on_error: "raise" - any damage raises :class:`JBIG2Error` naming the frame; "skip" - a damaged
              frame is lost together with the inter frames after it up to the next intra frame,
              decoding resumes there, and ``lost`` lists them (a damaged clip header still raises:
              without it nothing is known).
    limits:   :class:`jbig2.Limits` (input bytes, total frame area, memory; :func:`clip_limits`
              gives the exact ones for a known size); refused before allocating.
    """
    return _decode_clip(data, on_error, limits or Limits())[0]


def _decode_clip(data, on_error, limits: Limits):
    """:func:`decode_clip` plus its :class:`jbig2._Budget`, whose ``peak`` the tests compare with
    what the process really allocated."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    guard, buf = jbig2.guarded_input(data, limits, "clip")
    w, h, t, _, flags = _read_header(buf, limits)
    guard.take(t * w * h, f"{t} frame(s) of {w}x{h}")
    carried = None
    if flags & CARRY:
        guard.take(2 << 13, "the carried contexts")
        carried = {0: jbig2_refine.contexts(), 1: jbig2_refine.contexts()}
    frames = np.zeros((t, h, w), np.uint8)
    work = [min(limits.work_for(len(data)), limits.max_pixels)]
    lost: List[int] = []
    pos, expected, prev_ok = HEADER_BYTES, 0, False
    while expected < t:
        try:
            head = _read_head(buf, pos)
            if head[0].index != expected:
                raise JBIG2Error(f"record of frame {head[0].index} where frame {expected} was due")
        except JBIG2Error as e:
            if on_error == "raise":
                raise JBIG2Error(f"frame {expected}: {e}") from None
            head = _resync(buf, pos, expected, t)
            if head is None:
                break
            lost += range(expected, head[0].index)
            expected, prev_ok = head[0].index, False
        rec, start, crc = head
        try:
            prev_ok = _decode_frame(rec, _body(buf, rec, start, crc), frames, prev_ok, work, guard, carried)
        except JBIG2Error as e:
            if on_error == "raise":
                raise JBIG2Error(f"frame {rec.index}: {e}") from None
            prev_ok = False
        if not prev_ok:
            frames[rec.index] = 0
            lost.append(rec.index)
        pos, expected = start + rec.nbytes, expected + 1
    lost += range(expected, t)
    if carried is not None:
        guard.give(2 << 13)
    if on_error == "raise" and pos != len(buf):
        raise JBIG2Error(f"{len(buf) - pos} bytes after the last frame record")
    return DecodedClip(frames, tuple(lost)), guard


def describe_clip(data) -> dict:
    """Header fields and every frame record (kind, motion, body bytes) without decoding; raises
    :class:`JBIG2Error` at the first damaged record."""
    buf = memoryview(bytes(data))
    w, h, t, key_interval, flags = _read_header(buf, Limits(max_input=max(len(buf), 1), max_pixels=1 << 62))
    records, pos = [], HEADER_BYTES
    for i in range(t):
        rec, start, crc = _read_head(buf, pos)
        _body(buf, rec, start, crc)
        if rec.index != i:
            raise JBIG2Error(f"record of frame {rec.index} where frame {i} was due")
        records.append(rec)
        pos = start + rec.nbytes
    return dict(width=w, height=h, frames=t, key_interval=key_interval, carry=bool(flags & CARRY),
                records=records, overhead=HEADER_BYTES + RECORD_BYTES * t)


def frame_file(data, index: int, reference: Optional[np.ndarray] = None) -> bytes:
    """Frame ``index`` of a clip as a standalone single-page ``.jb2`` file (jbig2dec reads it).

    An intra frame (every key frame) is its generic region on a page. An inter frame needs the
    previous decoded frame ``reference``: the page gets it, displaced by the frame's motion, as a
    generic region, then the frame's refinement region verbatim (the same bits: the clip codes
    against exactly that page).
    """
    buf = memoryview(bytes(data))
    info = describe_clip(buf)
    if not 0 <= index < info["frames"]:
        raise ValueError(f"frame {index} is not in a clip of {info['frames']} frames")
    pos = HEADER_BYTES
    for _ in range(index + 1):
        rec, start, crc = _read_head(buf, pos)
        pos = start + rec.nbytes
    body = _body(buf, rec, start, crc)
    w, h = info["width"], info["height"]
    if rec.kind == INTRA:
        return _page_file(w, h, bytes(body))
    if info["carry"]:
        raise ValueError(f"frame {index} is an inter frame of a clip that carries its contexts (CARRY): it "
                         f"is not a standalone T.88 region; only intra frames export (code the clip with "
                         f"carry_contexts=False to export inter frames)")
    if reference is None:
        raise ValueError(f"frame {index} is an inter frame: pass the decoded frame {index - 1} as reference")
    if np.shape(reference) != (h, w):
        raise ValueError(f"reference {np.shape(reference)} is not a {w}x{h} frame")
    return _page_file(w, h, _intra_body(shifted(np.asarray(reference), rec.dx, rec.dy), {}), bytes(body))
