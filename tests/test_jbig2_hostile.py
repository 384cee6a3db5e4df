"""Hostile JBIG2 input: every malformed, truncated, crafted or random-mutated stream either decodes
to a bitmap or raises JBIG2Error, fast, within the declared-size cap."""
import struct

import numpy as np
import pytest

from metavsr.models.codec import jbig2
from metavsr.models.codec.jbig2 import JBIG2Error

rng0 = np.random.default_rng(5)
SMALL = (rng0.random((21, 35)) < 0.15).astype(np.uint8)
VALID = jbig2.encode(SMALL, template=0, tpgdon=True)


def seg(number, seg_type, body, page=1):
    return struct.pack(">IBBBI", number, seg_type, 0, page, len(body)) + body


def page_info(w, h, flags=1):
    return seg(0, 48, struct.pack(">IIIIBH", w, h, 0, 0, flags, 0))


def region(w, h, coded, flags=0, at=b"\x03\xff\xfd\xff\x02\xfe\xfe\xfe", seg_type=39):
    return seg(1, seg_type, struct.pack(">IIIIB", w, h, 0, 0, 0) + bytes([flags]) + at + coded)


def file_of(*segments, pages=1):
    return jbig2.MAGIC + b"\x01" + struct.pack(">I", pages) + b"".join(segments) + seg(8, 49, b"") + seg(9, 51, b"", 0)


def test_valid_reference_decodes():
    """The hand-built segments below are well-formed: a file made of them decodes."""
    from metavsr.models.codec.jbig2_generic import encode_region
    np.testing.assert_array_equal(jbig2.decode(VALID), SMALL)
    coded = encode_region(SMALL, 0, None, True)
    np.testing.assert_array_equal(jbig2.decode(file_of(page_info(35, 21), region(35, 21, coded, flags=8))), SMALL)


@pytest.mark.parametrize("blob,match", [
    (b"", "magic"), (b"hello world, not jbig2", "magic"), (jbig2.MAGIC, "magic"),
    (b"\x00" * 64, "magic"),
    (jbig2.MAGIC + b"\x00" + b"\x00\x00\x00\x01", "random-access"),
    (jbig2.MAGIC + b"\x05" + b"\x00\x00\x00\x01", "header flags"),
])
def test_bad_headers(blob, match):
    with pytest.raises(JBIG2Error, match=match):
        jbig2.decode(blob)


def test_every_truncation_fails_cleanly():
    for n in range(len(VALID)):
        with pytest.raises(JBIG2Error):
            jbig2.decode(VALID[:n])


def test_huge_declared_sizes_are_refused_before_allocation():
    with pytest.raises(JBIG2Error, match="pixel cap"):
        jbig2.decode(file_of(page_info(0xFFFFFFFE, 0xFFFFFFFE)))
    with pytest.raises(JBIG2Error, match="pixel cap"):
        jbig2.decode(file_of(page_info(1 << 15, 1 << 14)))  # 2^29 > 2^28
    with pytest.raises(JBIG2Error, match="pixel cap"):
        jbig2.decode(file_of(page_info(8, 8), region(0x10000000, 0x100, b"\x00")))
    with pytest.raises(JBIG2Error, match="pixel cap"):
        jbig2.decode(file_of(page_info(64, 64)), max_pixels=1000)
    with pytest.raises(JBIG2Error, match="unknown height"):
        jbig2.decode(file_of(page_info(64, 0xFFFFFFFF)))
    # many regions on a small page: their total area is capped too
    many = [region(100, 100, b"\x00") for _ in range(20)]
    with pytest.raises(JBIG2Error, match="pixel cap"):
        jbig2.decode(file_of(page_info(100, 100), *many), max_pixels=100_000)


@pytest.mark.parametrize("seg_type,name", [(0, "symbol dictionary"), (6, "text region"), (16, "pattern"),
                                           (22, "halftone"), (36, "intermediate generic"),
                                           (42, "refinement"), (53, "tables"), (33, "reserved"), (62, "extension")])
def test_unsupported_segments(seg_type, name):
    with pytest.raises(JBIG2Error, match=f"segment type {seg_type} .*{name}"):
        jbig2.decode(file_of(page_info(8, 8), seg(1, seg_type, b"\x00" * 30)))


def test_unsupported_coding_options():
    with pytest.raises(JBIG2Error, match="MMR"):
        jbig2.decode(file_of(page_info(8, 8), region(8, 8, b"\x00", flags=1)))
    with pytest.raises(JBIG2Error, match="EXTTEMPLATE"):
        jbig2.decode(file_of(page_info(8, 8), region(8, 8, b"\x00", flags=0x10)))
    with pytest.raises(JBIG2Error, match="unknown data length"):
        jbig2.decode(jbig2.MAGIC + b"\x01" + b"\x00\x00\x00\x01" + struct.pack(">IBBBI", 0, 39, 0, 1, 0xFFFFFFFF))
    with pytest.raises(JBIG2Error, match="outside the field"):
        jbig2.decode(file_of(page_info(8, 8), region(8, 8, b"\x00", flags=2, at=b"\x05\x00")))
    with pytest.raises(JBIG2Error, match="before any page"):
        jbig2.decode(file_of(region(8, 8, b"\x00")))
    with pytest.raises(JBIG2Error, match="declares 2 page"):
        jbig2.decode(file_of(page_info(8, 8), pages=2))
    with pytest.raises(JBIG2Error, match="expected bytes"):
        jbig2.decode("not bytes")
    # a long-form referred-to segment count far beyond the data
    long_form = struct.pack(">IBI", 0, 48, 0xE0000000 | 0x1FFFFFFF)
    with pytest.raises(JBIG2Error, match="truncated"):
        jbig2.decode(jbig2.MAGIC + b"\x01\x00\x00\x00\x01" + long_form + b"\x00" * 40)


@pytest.mark.parametrize("coded", [b"", b"\x00", b"\xff" * 50, bytes(range(256)) * 40,
                                   b"\xff\x7f" * 1000, b"\x00" * 100000])
def test_endless_or_empty_mq_data_is_bounded_by_the_region(coded):
    """Any MQ bytes decode to some bitmap of the declared size: the work is the region's pixels."""
    out = jbig2.decode(file_of(page_info(700, 500), region(700, 500, coded, flags=8)))
    assert out.shape == (500, 700) and out.dtype == np.uint8 and out.max() <= 1


def _mutate(blob: bytes, rng) -> bytes:
    b = bytearray(blob)
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 7))
        pos = int(rng.integers(0, max(len(b), 1)))
        if op == 0 and b:
            b[pos % len(b)] ^= 1 << int(rng.integers(0, 8))
        elif op == 1 and b:
            b[pos % len(b)] = int(rng.integers(0, 256))
        elif op == 2 and len(b) >= 4:
            val = int(rng.choice([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 4096, int(rng.integers(0, 1 << 32))]))
            p = pos % (len(b) - 3)
            b[p:p + 4] = struct.pack(">I", val)
        elif op == 3:
            del b[pos:]
        elif op == 4:
            b[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 16))).astype(np.uint8).tobytes()
        elif op == 5:
            del b[pos:pos + int(rng.integers(1, 16))]
        else:
            n = int(rng.integers(1, 32))
            b[pos:pos] = b[max(pos - n, 0):pos]
    return bytes(b)


def test_fuzz_random_mutations():
    """Seeded mutations of valid files and embedded streams: a bitmap or JBIG2Error, nothing else."""
    rng = np.random.default_rng(2024)
    bitmaps = [SMALL, np.ones((9, 17), np.uint8), (rng.random((40, 70)) < 0.05).astype(np.uint8)]
    seeds = []
    for i, bm in enumerate(bitmaps):
        for t in range(4):
            seeds.append((jbig2.encode(bm, template=t, tpgdon=bool(t % 2)), False))
        seeds.append((jbig2.encode(bm, template=i % 4, embedded=True), True))
    decoded = failed = 0
    for k in range(20000):
        blob, embedded = seeds[k % len(seeds)]
        bad = _mutate(blob, rng)
        try:
            out = jbig2.decode(bad, embedded=embedded, max_pixels=1 << 18)
        except JBIG2Error:
            failed += 1
            continue
        assert isinstance(out, np.ndarray) and out.ndim == 2 and out.dtype == np.uint8
        assert out.size <= 1 << 18 and out.max(initial=0) <= 1
        decoded += 1
    assert decoded > 100 and failed > 100  # both outcomes really exercised


def test_multi_page_files_decode_page_by_page():
    from metavsr.models.codec.jbig2_generic import encode_region
    other = np.ones((4, 6), np.uint8)
    blob = (jbig2.MAGIC + b"\x01" + struct.pack(">I", 2)
            + page_info(35, 21) + region(35, 21, encode_region(SMALL, 0, None, True), flags=8) + seg(2, 49, b"")
            + seg(3, 48, struct.pack(">IIIIBH", 6, 4, 0, 0, 1, 0), page=2)
            + seg(4, 39, struct.pack(">IIIIB", 6, 4, 0, 0, 0) + b"\x04\x02\xff" + encode_region(other, 2), page=2)
            + seg(5, 49, b"", page=2) + seg(6, 51, b"", 0))
    pages = jbig2.decode_pages(blob)
    assert len(pages) == 2
    np.testing.assert_array_equal(pages[0], SMALL)
    np.testing.assert_array_equal(pages[1], other)
    with pytest.raises(JBIG2Error, match="expected one page"):
        jbig2.decode(blob)
    with pytest.raises(JBIG2Error, match="pixel cap"):  # the cap counts all pages together
        jbig2.decode_pages(blob, max_pixels=35 * 21 + 10)
