"""JBIG2 (ITU-T T.88) files for bi-level edge maps: our own lossless generic-region encoder and a
decoder for what it writes.

``encode(bitmap)`` returns a complete standalone file (Annex D.4 header, sequential organisation):
page information (type 48), one immediate lossless generic region (type 39, MMR = 0, 7.4.6), end
of page (49), end of file (51). ``embedded=True`` gives the stream PDF's JBIG2Decode filter takes
(ISO 32000 7.4.7): the same page-information and region segments without file header, end of page
or end of file. ``auto=True`` tries every template with and without TPGDON, then adaptive-pixel
positions, and keeps the smallest output.

``decode(data)`` reads both forms (files by their magic, embedded streams with ``embedded=True``)
and refuses anything else (symbol dictionaries, text/halftone/refinement regions, MMR, striped
pages, extended templates, ...) with :class:`JBIG2Error`.

Hostile input: one resource guard (:class:`Limits`, :class:`_Budget`) sees every allocation the
decoder makes *before* it is made: the input, each page, each region's padded working bitmap. A
region must lie inside its page, all pages together are capped in area, and all allocations
together in bytes (by default 64 x the input cap), so a 100-byte file cannot ask for gigabytes.
The arithmetic decoder's work is bounded by the region area. Every failure is a
:class:`JBIG2Error`, never a ``MemoryError``.

Strictness: where T.88 says a field "shall" be 0 or consistent, the decoder refuses it rather
than guess — reserved bits of the file header, region information and generic-region flags, a
segment associated with a page other than the current one (7.2.6), page numbers that do not run
1, 2, 3 ... (sequential organisation), an end-of-file segment with a page association.
"""
import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .jbig2_generic import (AT_BITS, NOMINAL_AT, GenericRegionError, check_at, decode_memory,
                            decode_region, encode_region)

MAGIC = b"\x97JB2\r\n\x1a\n"
MAX_PIXELS = 1 << 28  # default cap on declared page / region area (all pages of a file together)
MAX_INPUT = 16 << 20  # default cap on the bytes of one JBIG2 file (a 1080p edge map is ~10 KB)
MEMORY_PER_INPUT_BYTE = 64  # default memory cap = 64 x the input cap

SEG_PAGE_INFO, SEG_END_OF_PAGE, SEG_END_OF_STRIPE, SEG_END_OF_FILE = 48, 49, 50, 51
SEG_IMMEDIATE_GENERIC, SEG_IMMEDIATE_LOSSLESS_GENERIC = 38, 39
_SEGMENT_NAMES = {
    0: "symbol dictionary", 4: "intermediate text region", 6: "immediate text region",
    7: "immediate lossless text region", 16: "pattern dictionary", 20: "intermediate halftone region",
    22: "immediate halftone region", 23: "immediate lossless halftone region",
    36: "intermediate generic region", 40: "intermediate generic refinement region",
    42: "immediate generic refinement region", 43: "immediate lossless generic refinement region",
    52: "profiles", 53: "tables", 54: "colour palette", 62: "extension",
}


class JBIG2Error(ValueError):
    """Malformed, truncated or unsupported JBIG2 data (the message says which)."""


@dataclass(frozen=True)
class Limits:
    """What one decode may take. Declarations beyond them are refused before allocating.

    max_input:  bytes of JBIG2 data accepted.
    max_pixels: declared page area, all pages of the stream together (region work is capped by it
                too, since regions must lie inside their page).
    max_memory: bytes the decoder may hold at once (pages, working bitmaps, tables);
                None = ``MEMORY_PER_INPUT_BYTE x max_input``, and for a given stream no more than
                ``MEMORY_PER_INPUT_BYTE x`` its length or ``memory_floor``, whichever is larger
                (an empty 8K page codes in ~100 bytes and needs 66 MB; 100 bytes never get 1 GB).
    max_work:   arithmetic-decoder decisions (region pixels) of the whole stream, which bound the
                time (about 10-40 ns each); None = half the memory cap, i.e. what one page that
                fits in memory needs.
    """
    max_input: int = MAX_INPUT
    max_pixels: int = MAX_PIXELS
    max_memory: Optional[int] = None
    max_work: Optional[int] = None
    memory_floor: int = 256 << 20

    @property
    def memory(self) -> int:
        return int(self.max_memory if self.max_memory is not None else MEMORY_PER_INPUT_BYTE * self.max_input)

    def memory_for(self, nbytes: int) -> int:
        """The memory cap for a stream of ``nbytes``."""
        if self.max_memory is not None:
            return int(self.max_memory)
        return min(self.memory, max(MEMORY_PER_INPUT_BYTE * int(nbytes), self.memory_floor))

    def work_for(self, nbytes: int) -> int:
        return int(self.max_work if self.max_work is not None else self.memory_for(nbytes) // 2)

    @classmethod
    def for_page(cls, width: int, height: int, max_input: int = MAX_INPUT, pages: int = 1) -> "Limits":
        """Limits that admit ``pages`` pages of ``width x height`` (coded with any template and AT
        pixels) and nothing larger: for a stream whose size is declared elsewhere (a bitstream's shape)."""
        worst_at = ((-128, -128), (127, -128), (-128, 0), (0, -128))
        area = int(width) * int(height)
        memory = max_input + pages * area + decode_memory(int(height), int(width), worst_at)
        return cls(max_input=int(max_input), max_pixels=pages * area, max_memory=memory, max_work=pages * area)


class _Budget:
    """The one resource guard: every allocation is taken from it first, transient ones given back."""

    def __init__(self, limits: Limits, nbytes: int):
        self.limit = limits.memory_for(nbytes)
        self.held = 0
        self.peak = 0

    def take(self, nbytes: int, what: str):
        if self.held + nbytes > self.limit:
            raise JBIG2Error(f"{what} needs {nbytes} bytes, over the decoder's memory cap "
                             f"({self.limit - self.held} of {self.limit} left); raise Limits.max_memory "
                             f"if the stream is genuine")
        self.held += nbytes
        self.peak = max(self.peak, self.held)

    def give(self, nbytes: int):
        self.held -= nbytes


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------
def _segment(number: int, seg_type: int, data: bytes, page: int = 1) -> bytes:
    """7.2: number, flags (type; 1-byte page association), no referred-to segments, page, length."""
    return struct.pack(">IBBBI", number, seg_type, 0, page, len(data)) + data


def _page_info(w: int, h: int) -> bytes:
    # 7.4.8: no resolution given, flags = "eventually lossless", default pixel 0, OR; no striping
    return struct.pack(">IIIIBH", w, h, 0, 0, 0x01, 0)


def _region_data(w: int, h: int, template: int, at, tpgdon: bool, coded: bytes) -> bytes:
    info = struct.pack(">IIIIB", w, h, 0, 0, 0)  # 7.4.1 region at (0,0), combination OR
    flags = (int(bool(tpgdon)) << 3) | (template << 1)  # 7.4.6.2, MMR = 0
    at_bytes = struct.pack(">" + "b" * (2 * len(at)), *[v for p in at for v in p])
    return info + bytes([flags]) + at_bytes + coded


def _as_bitmap(bitmap) -> np.ndarray:
    if hasattr(bitmap, "detach"):  # torch tensor
        bitmap = bitmap.detach().cpu().numpy()
    arr = np.asarray(bitmap)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"bitmap must be a non-empty [H,W] array, got shape {arr.shape}")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ValueError(f"bitmap {arr.shape[1]}x{arr.shape[0]} exceeds {MAX_PIXELS} pixels")
    if arr.dtype == bool:
        return arr.view(np.uint8)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"bitmap must be numeric or bool, got dtype {arr.dtype}")
    if arr.dtype != np.uint8:
        bad = ~((arr == 0) | (arr == 1))
        if bad.any():
            raise ValueError(f"bitmap must hold only 0 and 1 ({int(bad.sum())} other values); "
                             f"threshold it first")
        return arr.astype(np.uint8)
    return (arr != 0).view(np.uint8) if arr.max(initial=0) > 1 else arr


# AT positions tried by ``auto``: neighbours the fixed templates leave out, near the pixel first.
_AT_CANDIDATES = ((3, -1), (2, -1), (-3, -1), (4, -1), (-4, -1), (2, -2), (-2, -2), (3, -2),
                  (-3, -2), (0, -3), (1, -3), (-1, -3), (-5, 0), (0, -4), (5, -1), (-5, -1))


def _search_at(bitmap, template, tpgdon, first, rows):
    """Greedy AT search on the top ``rows`` rows: for each AT pixel in turn, the candidate that
    codes that strip smallest. Returns the AT tuple (nominal when nothing beats it)."""
    strip = bitmap[:rows]
    best_at = NOMINAL_AT[template]
    best = len(encode_region(strip, template, best_at, tpgdon, first))
    for slot in range(len(AT_BITS[template])):
        for cand in _AT_CANDIDATES:
            trial = list(best_at)
            trial[slot] = cand
            try:
                trial = check_at(template, trial)
            except GenericRegionError:
                continue
            n = len(encode_region(strip, template, trial, tpgdon, first))
            if n < best:
                best, best_at = n, trial
    return best_at


def choose_params(bitmap, search_at: bool = True):
    """The ``auto`` search: returns ``(template, at, tpgdon, coded_bytes)`` of the smallest coding.

    Every template without TPGDON, with it, and with it predicting an empty first row too, is
    coded in full at nominal AT; then AT positions are searched for the best of those on a strip
    and kept only if the full coding gets smaller.
    """
    bitmap = _as_bitmap(bitmap)
    best, best_first = None, False
    first_row_empty = not bitmap[0].any()
    for template in range(4):
        for tpgdon, first in ((False, False), (True, False), (True, True)):
            if first and not first_row_empty:
                continue  # identical to (True, False)
            coded = encode_region(bitmap, template, None, tpgdon, first)
            if best is None or len(coded) < len(best[3]):
                best, best_first = (template, NOMINAL_AT[template], tpgdon, coded), first
    if search_at and bitmap.size >= 64 * 64:
        template, at, tpgdon, coded = best
        rows = min(bitmap.shape[0], max(64, bitmap.shape[0] // 4))
        cand = _search_at(bitmap, template, tpgdon, best_first, rows)
        if cand != at:
            coded2 = encode_region(bitmap, template, cand, tpgdon, best_first)
            if len(coded2) < len(coded):
                best = (template, cand, tpgdon, coded2)
    return best


def _coded(bitmap, template, tpgdon, at, auto, search_at, typical_first_row):
    """One page's generic region: ``(template, at, tpgdon, coded bytes)``."""
    if auto:
        return choose_params(bitmap, search_at)
    try:
        at = check_at(int(template), at)
    except GenericRegionError as e:
        raise ValueError(str(e)) from None
    return int(template), at, tpgdon, encode_region(bitmap, int(template), at, tpgdon, typical_first_row)


def encode(bitmap, template: int = 0, tpgdon: bool = False, at=None, auto: bool = False,
           search_at: bool = True, embedded: bool = False, typical_first_row: bool = False) -> bytes:
    """Encode a bi-level ``[H,W]`` bitmap (1 = black = edge pixel; bool, 0/1 ints or floats, or
    uint8 where nonzero is black) as a lossless JBIG2 generic region.

    template:  generic-region template 0..3 (0 = 16-pixel context, the densest modelling).
    tpgdon:    typical prediction: a row equal to the one above costs one decision.
    at:        adaptive-template pixels as ``(dx, dy)`` pairs (4 for template 0, else 1);
               None = the nominal positions.
    auto:      ignore the three above and keep the smallest of all templates x TPGDON, plus
               searched AT positions when ``search_at``.
    embedded:  return the PDF-embedded stream (page info + region segments only) instead of a
               standalone file.
    typical_first_row: with TPGDON, an empty first row may be predicted from the (all-zero) row
               above the region; off codes it, as jbig2enc does. Either can be smaller.
    """
    bitmap = _as_bitmap(bitmap)
    if embedded:
        h, w = bitmap.shape
        template, at, tpgdon, coded = _coded(bitmap, template, tpgdon, at, auto, search_at, typical_first_row)
        return (_segment(0, SEG_PAGE_INFO, _page_info(w, h))
                + _segment(1, SEG_IMMEDIATE_LOSSLESS_GENERIC, _region_data(w, h, template, at, tpgdon, coded)))
    return encode_pages([bitmap], template, tpgdon, at, auto, search_at, typical_first_row)


def encode_pages(bitmaps, template: int = 0, tpgdon: bool = False, at=None, auto: bool = False,
                 search_at: bool = True, typical_first_row: bool = False) -> bytes:
    """A standalone multi-page file (sequential organisation): one generic region per ``[H,W]``
    bitmap, pages numbered 1, 2, 3 ... (bit-planes of a depth map, frames of a clip). Options as
    :func:`encode`, applied to every page; :func:`decode_pages` and ``jbig2dec`` read it."""
    if not bitmaps:
        raise ValueError("encode_pages needs at least one bitmap")
    parts = [MAGIC + bytes([0x01]) + struct.pack(">I", len(bitmaps))]
    number = 0
    for page_no, bm in enumerate(bitmaps, start=1):
        bm = _as_bitmap(bm)
        h, w = bm.shape
        t, a, tp, coded = _coded(bm, template, tpgdon, at, auto, search_at, typical_first_row)
        parts += [_segment(number, SEG_PAGE_INFO, _page_info(w, h), page=page_no),
                  _segment(number + 1, SEG_IMMEDIATE_LOSSLESS_GENERIC, _region_data(w, h, t, a, tp, coded),
                           page=page_no),
                  _segment(number + 2, SEG_END_OF_PAGE, b"", page=page_no)]
        number += 3
    return b"".join(parts) + _segment(number, SEG_END_OF_FILE, b"", page=0)


def describe(data: bytes, embedded: bool = False) -> dict:
    """Coding parameters of the (first) generic region in ``data``: template, tpgdon, at, size."""
    info = {}
    for seg_type, _page, body in _segments(memoryview(bytes(data)), embedded):
        if seg_type == SEG_PAGE_INFO and len(body) >= 8:
            info["width"], info["height"] = struct.unpack(">II", bytes(body[:8]))
        if seg_type in (SEG_IMMEDIATE_GENERIC, SEG_IMMEDIATE_LOSSLESS_GENERIC) and len(body) >= 18:
            flags = body[17]
            template = (flags >> 1) & 3
            n_at = 4 if template == 0 else 1
            raw = struct.unpack(">" + "b" * (2 * n_at), bytes(body[18:18 + 2 * n_at]))
            info.update(template=template, tpgdon=bool(flags & 8), mmr=bool(flags & 1),
                        at=tuple(zip(raw[0::2], raw[1::2])), coded_bytes=len(body) - 18 - 2 * n_at)
            break
    return info


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------
def _reserved(value, mask, what, bits, clause):
    if value & mask:
        raise JBIG2Error(f"{what} 0x{value:02X} set reserved bits {bits} ({clause}: they shall be 0)")


def _need(buf, pos, n, what):
    if pos + n > len(buf):
        raise JBIG2Error(f"truncated: {what} needs {n} bytes at offset {pos}, "
                         f"only {max(len(buf) - pos, 0)} left")


def _segments(buf, embedded):
    """Yield ``(type, page, body)`` per segment (7.2), sequential organisation, after the header."""
    pos = 0
    if not embedded:
        if len(buf) < 9 or bytes(buf[:8]) != MAGIC:
            raise JBIG2Error("not a JBIG2 file: bad magic (expected 97 4A 42 32 0D 0A 1A 0A; for a "
                             "PDF-embedded stream pass embedded=True)")
        flags = buf[8]
        pos = 9
        _reserved(flags, 0xF0, "file header flags", "4-7", "D.4.2")
        if flags & 0x0C:
            raise JBIG2Error(f"unsupported file header flags 0x{flags:02X} (extended templates / "
                             f"colour)")
        if not flags & 0x01:
            raise JBIG2Error("random-access file organisation is not supported (only sequential)")
        if not flags & 0x02:
            _need(buf, pos, 4, "number of pages")
            declared_pages = struct.unpack(">I", bytes(buf[pos:pos + 4]))[0]
            pos += 4
            yield "pages", declared_pages, None
    seen_eof = False
    while pos < len(buf):
        _need(buf, pos, 6, "segment header")
        number = struct.unpack(">I", bytes(buf[pos:pos + 4]))[0]
        hflags = buf[pos + 4]
        rts = buf[pos + 5]
        pos += 6
        count = rts >> 5
        if count == 7:  # long form (7.2.4)
            _need(buf, pos - 1, 4, "referred-to segment count")
            count = struct.unpack(">I", bytes(buf[pos - 1:pos + 3]))[0] & 0x1FFFFFFF
            pos += 3 + (count + 8) // 8
        elif count > 4:
            raise JBIG2Error(f"segment {number}: invalid referred-to segment count {count}")
        ref_size = 1 if number <= 256 else 2 if number <= 65536 else 4
        pos += count * ref_size
        page_size = 4 if hflags & 0x40 else 1
        _need(buf, pos, page_size + 4, f"segment {number} header")
        page = buf[pos] if page_size == 1 else struct.unpack(">I", bytes(buf[pos:pos + 4]))[0]
        pos += page_size
        length = struct.unpack(">I", bytes(buf[pos:pos + 4]))[0]
        pos += 4
        seg_type = hflags & 0x3F
        if length == 0xFFFFFFFF:
            raise JBIG2Error(f"segment {number}: unknown data length (0xFFFFFFFF) is not supported")
        _need(buf, pos, length, f"segment {number} data")
        body = buf[pos:pos + length]
        pos += length
        if count and seg_type in (SEG_IMMEDIATE_GENERIC, SEG_IMMEDIATE_LOSSLESS_GENERIC):
            raise JBIG2Error(f"segment {number}: a generic region referring to other segments is "
                             f"not supported")
        yield seg_type, page, body
        if seg_type == SEG_END_OF_FILE:
            seen_eof = True
            break
    if not embedded and not seen_eof:
        raise JBIG2Error("truncated: the file ends without an end-of-file segment")


def _composite(page, region, x, y, op):
    """Place ``region`` on ``page`` at (x, y) with combination operator ``op`` (7.4.1.5), clipped."""
    ph, pw = page.shape
    rh, rw = region.shape
    if x >= pw or y >= ph:
        return
    r = region[:ph - y, :pw - x]
    dst = page[y:y + r.shape[0], x:x + r.shape[1]]
    if op == 0:
        dst |= r
    elif op == 1:
        dst &= r
    elif op == 2:
        dst ^= r
    elif op == 3:
        dst[...] = 1 - (dst ^ r)
    else:
        dst[...] = r


def _check_association(seg_type, page_no, current, open_page):
    """7.2.6: a page's segments carry its number; pages run 1, 2, 3 ...; end of file has none."""
    if seg_type == SEG_PAGE_INFO:
        if page_no != current + 1:
            raise JBIG2Error(f"page information segment for page {page_no} after page {current}: "
                             f"pages of a sequential stream shall be numbered 1, 2, 3, ...")
    elif seg_type == SEG_END_OF_FILE:
        if page_no != 0:
            raise JBIG2Error(f"end-of-file segment associated with page {page_no} (7.2.6: it shall be 0)")
    elif seg_type in (SEG_IMMEDIATE_GENERIC, SEG_IMMEDIATE_LOSSLESS_GENERIC, SEG_END_OF_PAGE,
                      SEG_END_OF_STRIPE):
        if not open_page:
            raise JBIG2Error("generic region before any page information segment"
                             if seg_type in (SEG_IMMEDIATE_GENERIC, SEG_IMMEDIATE_LOSSLESS_GENERIC)
                             else f"segment of type {seg_type} without an open page")
        if page_no != current:
            raise JBIG2Error(f"segment of type {seg_type} is associated with page {page_no}, but page "
                             f"{current} is being decoded (7.2.6)")


def _limits(max_pixels, limits) -> Limits:
    if limits is None:
        return Limits(max_pixels=int(max_pixels))
    if max_pixels != MAX_PIXELS:
        raise TypeError("give max_pixels inside limits=Limits(...), not both")
    return limits


def decode_pages(data, embedded: bool = False, max_pixels: int = MAX_PIXELS,
                 limits: Optional[Limits] = None) -> list:
    """Decode every page: a list of ``[H,W]`` uint8 bitmaps (1 = black).

    limits: :class:`Limits` (input bytes, total page area, decoder memory); ``max_pixels`` alone
    is the short form of ``Limits(max_pixels=...)``. Larger declarations are refused before any
    allocation with :class:`JBIG2Error`.
    """
    return _decode_pages(data, embedded, _limits(max_pixels, limits))[0]


def guarded_input(data, limits: Limits, what: str):
    """Check the input's type and size against ``limits`` and open the decode's :class:`_Budget`
    with the input copy taken from it: ``(guard, memoryview of the copy)``. Shared with the clip
    decoder (``jbig2_video``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise JBIG2Error(f"expected bytes, got {type(data).__name__}")
    if len(data) > limits.max_input:
        raise JBIG2Error(f"the {what} is {len(data)} bytes, over the input cap of {limits.max_input}; "
                         f"raise Limits.max_input if it is genuine")
    guard = _Budget(limits, len(data))
    guard.take(len(data), "the input copy")
    return guard, memoryview(bytes(data))


def _decode_pages(data, embedded: bool, limits: Limits):
    """``decode_pages`` plus the :class:`_Budget`, whose ``peak`` the tests compare with what the
    process really allocated."""
    guard, buf = guarded_input(data, limits, "stream")
    pages, page, budget = [], None, int(limits.max_pixels)
    work = [min(limits.work_for(len(data)), limits.max_pixels)]  # region decisions left: bounds the time
    cover = [0]  # region area the open page still admits
    declared = None
    page_number = 0  # of the page being decoded (7.2.6), 0 before the first
    for seg_type, page_no, body in _segments(buf, embedded):
        if seg_type == "pages":
            declared = page_no
            continue
        _check_association(seg_type, page_no, page_number, page is not None)
        if seg_type == SEG_PAGE_INFO:
            if len(body) < 19:
                raise JBIG2Error(f"page information segment too short ({len(body)} < 19 bytes)")
            w, h, _xr, _yr, pflags, striping = struct.unpack(">IIIIBH", bytes(body[:19]))
            if h == 0xFFFFFFFF:
                raise JBIG2Error("striped pages of unknown height are not supported")
            if w == 0 or h == 0:
                raise JBIG2Error(f"page size {w}x{h} is empty")
            if w * h > budget:
                raise JBIG2Error(f"page {w}x{h} ({w * h} pixels) exceeds the pixel cap "
                                 f"({budget} left of {limits.max_pixels}); raise max_pixels if it is genuine")
            if pflags & 0x80:
                raise JBIG2Error("coloured pages are not supported")
            if page is not None:
                pages.append(page)
            budget -= w * h
            guard.take(w * h, f"page {page_no} ({w}x{h})")
            page = np.full((h, w), (pflags >> 2) & 1, np.uint8)
            cover[0] = w * h
            page_number = page_no
        elif seg_type in (SEG_IMMEDIATE_GENERIC, SEG_IMMEDIATE_LOSSLESS_GENERIC):
            page_region(page, body, work, guard, cover)
        elif seg_type == SEG_END_OF_PAGE:
            pages.append(page)
            page = None
        elif seg_type == SEG_END_OF_STRIPE:
            continue
        elif seg_type == SEG_END_OF_FILE:
            break
        else:
            name = _SEGMENT_NAMES.get(seg_type, "reserved")
            raise JBIG2Error(f"unsupported segment type {seg_type} ({name}); this decoder reads "
                             f"lossless generic regions only")
    if page is not None:
        if not embedded:
            raise JBIG2Error("truncated: page without an end-of-page segment")
        pages.append(page)
    if not pages:
        raise JBIG2Error("no page in the stream")
    if declared is not None and declared != len(pages):
        raise JBIG2Error(f"the header declares {declared} page(s) but {len(pages)} were found")
    return pages, guard


def page_region(page: np.ndarray, body, work: list, guard: Optional[_Budget] = None,
                cover: Optional[list] = None):
    """Decode one immediate generic-region segment body (7.4.6) onto ``page`` in place.

    work:  one-element list, the region area still allowed; this region's area is taken from it.
    guard: the decode's memory budget; the region's working memory is taken from it first.
    cover: one-element list, the area the page's regions may still cover: together they may not
           exceed the page (T.88 allows overlapping regions, but a generic-region stream that
           draws the page more than once only costs decoding time; no encoder we read writes one).
    """
    if len(body) < 18:
        raise JBIG2Error(f"generic region segment too short ({len(body)} bytes)")
    w, h, x, y, rflags = struct.unpack(">IIIIB", bytes(body[:17]))
    flags = body[17]
    _reserved(rflags, 0xF0, "region segment information flags", "4-7", "7.4.1.5")
    _reserved(flags, 0xE0, "generic region segment flags", "5-7", "7.4.6.2")
    if w == 0 or h == 0:
        return
    ph, pw = page.shape
    if x + w > pw or y + h > ph:
        # a region the page cannot show would only cost work and memory; our encoder and
        # jbig2enc never write one
        raise JBIG2Error(f"region {w}x{h} at ({x},{y}) extends beyond its {pw}x{ph} page")
    if cover is not None:
        if w * h > cover[0]:
            raise JBIG2Error(f"region {w}x{h}: the page's regions together cover more than the "
                             f"{pw}x{ph} page")
        cover[0] -= w * h
    if w * h > work[0]:
        raise JBIG2Error(f"region {w}x{h} ({w * h} pixels) exceeds the region pixel cap ({work[0]} "
                         f"left; Limits.max_work bounds the decoding time)")
    work[0] -= w * h
    if rflags & 0x08:
        raise JBIG2Error("coloured regions are not supported")
    op = rflags & 0x07
    if op > 4:
        raise JBIG2Error(f"invalid combination operator {op}")
    if flags & 0x01:
        raise JBIG2Error("MMR-coded generic regions are not supported")
    if flags & 0x10:
        raise JBIG2Error("extended generic templates (EXTTEMPLATE) are not supported")
    template = (flags >> 1) & 3
    tpgdon = bool(flags & 0x08)
    n_at = len(AT_BITS[template])
    if len(body) < 18 + 2 * n_at:
        raise JBIG2Error("truncated: generic region AT pixels missing")
    raw = struct.unpack(">" + "b" * (2 * n_at), bytes(body[18:18 + 2 * n_at]))
    try:
        at = check_at(template, tuple(zip(raw[0::2], raw[1::2])), strict=False)
    except GenericRegionError as e:
        raise JBIG2Error(f"generic region: {e}") from None
    need = decode_memory(h, w, at)
    if guard is not None:
        guard.take(need, f"region {w}x{h} (AT {at})")
    region = None
    try:
        region = decode_region(body[18 + 2 * n_at:], h, w, template, at, tpgdon, copy=False)
        _composite(page, region, x, y, op)
    finally:
        del region
        if guard is not None:
            guard.give(need)


def decode(data, embedded: bool = False, max_pixels: int = MAX_PIXELS,
           limits: Optional[Limits] = None) -> np.ndarray:
    """Decode a single-page JBIG2 file (or, with ``embedded``, a PDF-embedded stream) to an
    ``[H,W]`` uint8 bitmap, 1 = black. Raises :class:`JBIG2Error` on anything else, including a
    stream over ``limits`` (see :class:`Limits`)."""
    pages = decode_pages(data, embedded, max_pixels, limits)
    if len(pages) != 1:
        raise JBIG2Error(f"expected one page, found {len(pages)}; use decode_pages")
    return pages[0]
