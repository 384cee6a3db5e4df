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
    with pytest.raises(JBIG2Error, match="beyond its 8x8 page"):
        jbig2.decode(file_of(page_info(8, 8), region(0x10000000, 0x100, b"\x00")))
    with pytest.raises(JBIG2Error, match="pixel cap"):
        jbig2.decode(file_of(page_info(64, 64)), max_pixels=1000)
    with pytest.raises(JBIG2Error, match="unknown height"):
        jbig2.decode(file_of(page_info(64, 0xFFFFFFFF)))
    # many regions on a small page: their total area is capped too
    many = [region(100, 100, b"\x00") for _ in range(20)]
    with pytest.raises(JBIG2Error, match="cover more than the 100x100 page"):
        jbig2.decode(file_of(page_info(100, 100), *many), max_pixels=100_000)
    halves = [seg(1, 39, struct.pack(">IIIIB", 100, 50, 0, y, 0) + b"\x00" + b"\x03\xff\xfd\xff\x02\xfe\xfe\xfe" + b"\x00")
              for y in (0, 50)]
    assert jbig2.decode(file_of(page_info(100, 100), *halves)).shape == (100, 100)  # tiling is fine


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


# --------------------------------------------------------------------------------------------
# The resource guard: every allocation bounded by the page and a global cap, before allocating
# --------------------------------------------------------------------------------------------
ONE_MB = jbig2.Limits(max_input=1 << 20)  # memory cap: 64 MiB
SLACK = 1 << 20  # numpy bookkeeping, small temporaries and struct parsing


def _traced(blob, limits=ONE_MB, embedded=False):
    """Decode under tracemalloc (numpy reports its buffers to it): (outcome, traced peak bytes,
    the guard's own peak). The guard must have seen at least what was really allocated."""
    import tracemalloc
    tracemalloc.start()
    guard_peak = None
    try:
        pages, guard = jbig2._decode_pages(blob, embedded, limits)
        outcome, guard_peak = "decoded", guard.peak
        assert all(p.dtype == np.uint8 and p.max(initial=0) <= 1 for p in pages)
    except JBIG2Error:
        outcome = "refused"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    if guard_peak is not None:
        assert peak <= guard_peak + SLACK, f"decoder allocated {peak} B but its guard counted {guard_peak}"
    return outcome, peak


def _worst_cases():
    """Files built to make the decoder allocate as much as the caps allow (or more, before)."""
    far = bytes([0x80, 0x80])  # AT pixel (-128, -128): the widest padding
    far4 = bytes([0x80, 0x80, 0x7F, 0x80, 0x80, 0x00, 0x00, 0x80])  # template 0, every margin at 128
    cases = {
        "102-byte file, 1 x 2^28 region on a 1x1 page": file_of(page_info(1, 1), region(1, 1 << 28, b"\x00")),
        "1 x 2^28 region with AT dy=-128 on a 1x1 page": file_of(page_info(1, 1), region(1, 1 << 28, b"\x00", flags=2, at=far)),
        "region far outside the page": file_of(page_info(64, 64), seg(1, 39, struct.pack(">IIIIB", 64, 64, 1 << 30, 1 << 30, 0) + b"\x00" + b"\x03\xff\xfd\xff\x02\xfe\xfe\xfe" + b"\x00")),
        "thin tall page, AT at 128 in every direction": file_of(page_info(1, 1 << 22), region(1, 1 << 22, b"\x00", at=far4)),
        "thin tall page, nominal AT": file_of(page_info(1, 1 << 24), region(1, 1 << 24, b"\x00")),
        "wide short page, AT at 128": file_of(page_info(1 << 24, 1), region(1 << 24, 1, b"\x00", at=far4)),
        "square page at the pixel cap": file_of(page_info(16384, 16384), region(16384, 16384, b"\xff" * 64)),
        "page just under the memory cap": file_of(page_info(4000, 4000), region(4000, 4000, b"\x00" * 1000, flags=8)),
        "page under the cap with a full region of noise": file_of(page_info(2000, 2000), region(2000, 2000, bytes(range(256)) * 3000)),
    }
    # many pages, each within the cap, together over it
    pg = lambda n: (seg(10 * n, 48, struct.pack(">IIIIBH", 3000, 3000, 0, 0, 1, 0), page=n)
                    + seg(10 * n + 1, 39, struct.pack(">IIIIB", 3000, 3000, 0, 0, 0) + b"\x00" + b"\x03\xff\xfd\xff\x02\xfe\xfe\xfe" + b"\x00", page=n)
                    + seg(10 * n + 2, 49, b"", page=n))
    cases["20 pages of 9 MP"] = jbig2.MAGIC + b"\x01" + struct.pack(">I", 20) + b"".join(pg(n) for n in range(1, 21)) + seg(999, 51, b"", 0)
    cases["400 regions on one page"] = file_of(page_info(2000, 2000), *[region(2000, 2000, b"\x00") for _ in range(400)])
    cases["1 MB of MQ data"] = file_of(page_info(2048, 2048), region(2048, 2048, bytes(np.random.default_rng(1).integers(0, 256, (1 << 20) - 200, dtype=np.uint8))))
    cases["page at the memory cap, a region of noise"] = file_of(page_info(5700, 5700), region(5700, 5700, bytes(np.random.default_rng(2).integers(0, 256, (1 << 20) - 200, dtype=np.uint8))))
    return cases


def test_worst_case_memory_is_bounded_by_the_caps():
    """Under a 1 MB input cap no file makes the decoder hold more than 64 MiB (traced), whatever it
    declares, and every refusal is a JBIG2Error (before the guard: MemoryError, 9 GiB asked)."""
    worst = 0
    outcomes = {}
    for name, blob in _worst_cases().items():
        assert len(blob) <= 1 << 20, name
        outcome, peak = _traced(blob)
        outcomes[name] = (outcome, peak)
        assert peak <= ONE_MB.memory + SLACK, f"{name}: {peak / 2**20:.1f} MiB"
        worst = max(worst, peak)
    print("worst case", worst / 2 ** 20, "MiB", outcomes)
    assert outcomes["page just under the memory cap"][0] == "decoded"  # the cap is not a blanket refusal
    assert outcomes["102-byte file, 1 x 2^28 region on a 1x1 page"][0] == "refused"


def test_regions_must_lie_inside_their_page():
    with pytest.raises(JBIG2Error, match="beyond its 1x1 page"):
        jbig2.decode(file_of(page_info(1, 1), region(1, 1 << 28, b"\x00")))
    at_far = seg(1, 39, struct.pack(">IIIIB", 4, 4, 61, 0, 0) + b"\x00" + b"\x03\xff\xfd\xff\x02\xfe\xfe\xfe" + b"\x00")
    with pytest.raises(JBIG2Error, match=r"at \(61,0\) extends beyond"):
        jbig2.decode(file_of(page_info(64, 64), at_far))


def test_memory_cap_refuses_before_allocating():
    """A declaration over the memory cap is refused by the guard, naming the cap, not by numpy."""
    with pytest.raises(JBIG2Error, match="memory cap"):
        jbig2.decode(file_of(page_info(8192, 8192), region(8192, 8192, b"\x00")), limits=ONE_MB)
    with pytest.raises(JBIG2Error, match="input cap"):
        jbig2.decode(b"\x00" * 2000, limits=jbig2.Limits(max_input=1000))
    fits = jbig2.Limits.for_page(35, 21, max_input=len(VALID))
    np.testing.assert_array_equal(jbig2.decode(VALID, limits=fits), SMALL)
    with pytest.raises(JBIG2Error, match="pixel cap"):
        jbig2.decode(VALID, limits=jbig2.Limits.for_page(35, 20))


def test_reserved_bits_and_page_association_are_refused():
    """T.88's "shall be 0" fields and 7.2.6 page association are enforced, not ignored."""
    coded = jbig2.describe(VALID)
    assert coded["template"] == 0
    from metavsr.models.codec.jbig2_generic import encode_region
    body = encode_region(SMALL, 0, None, True)
    ok = file_of(page_info(35, 21), region(35, 21, body, flags=8))
    np.testing.assert_array_equal(jbig2.decode(ok), SMALL)
    with pytest.raises(JBIG2Error, match="reserved bits 5-7"):
        jbig2.decode(file_of(page_info(35, 21), region(35, 21, body, flags=8 | 0x20)))
    reserved_info = seg(1, 39, struct.pack(">IIIIB", 35, 21, 0, 0, 0x10) + b"\x08" + b"\x03\xff\xfd\xff\x02\xfe\xfe\xfe" + body)
    with pytest.raises(JBIG2Error, match="reserved bits 4-7"):
        jbig2.decode(file_of(page_info(35, 21), reserved_info))
    with pytest.raises(JBIG2Error, match="reserved bits 4-7"):
        jbig2.decode(jbig2.MAGIC + b"\x11" + ok[9:])
    other_page = seg(1, 39, struct.pack(">IIIIB", 35, 21, 0, 0, 0) + b"\x08" + b"\x03\xff\xfd\xff\x02\xfe\xfe\xfe" + body, page=2)
    with pytest.raises(JBIG2Error, match="associated with page 2"):
        jbig2.decode(file_of(page_info(35, 21), other_page))
    with pytest.raises(JBIG2Error, match="numbered 1, 2, 3"):
        jbig2.decode(file_of(seg(0, 48, struct.pack(">IIIIBH", 35, 21, 0, 0, 1, 0), page=3)))
    eof_on_page = jbig2.MAGIC + b"\x01" + struct.pack(">I", 1) + page_info(35, 21) + region(35, 21, body, flags=8) + seg(8, 49, b"") + seg(9, 51, b"", 1)
    with pytest.raises(JBIG2Error, match="end-of-file segment associated"):
        jbig2.decode(eof_on_page)


def test_mutations_of_real_maps_stay_within_the_memory_cap():
    """Mutations of real Canny-like maps (what the pack sends): a bitmap or JBIG2Error, never over
    the 64 MiB that a 1 MB input cap allows, and the guard accounts for every byte."""
    import cv2
    rng = np.random.default_rng(77)
    img = cv2.GaussianBlur(rng.random((192, 256)).astype(np.float32), (0, 0), 6)
    edges = (cv2.Canny((img / img.max() * 255).astype(np.uint8), 20, 40) > 0).astype(np.uint8)
    seeds = [jbig2.encode(edges, auto=True), jbig2.encode(edges, template=1, tpgdon=True),
             jbig2.encode(edges, template=0, at=((-128, -128), (127, -1), (-3, -1), (2, -2)))]
    counts = {"decoded": 0, "refused": 0}
    worst = 0
    for k in range(600):
        outcome, peak = _traced(_mutate(seeds[k % len(seeds)], rng))
        counts[outcome] += 1
        worst = max(worst, peak)
    print("mutations of real maps:", counts, f"worst {worst / 2**20:.1f} MiB")
    assert worst <= ONE_MB.memory + SLACK
    assert counts["decoded"] > 20 and counts["refused"] > 20


ADDRESS_SPACE_PROBE = r"""
import resource, struct, sys
sys.path.insert(0, %(root)r)
from _pack import load_pack
load_pack("metavsr")
import numpy as np
from metavsr.models.codec import jbig2
import tests.test_jbig2_hostile as t
cases = list(t._worst_cases().values())
jbig2.decode(t.VALID)  # compile and warm up before the limit
vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize"))
cap = vm + %(headroom)d
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
out = {"decoded": 0, "refused": 0, "other": []}
for blob in cases:
    try:
        jbig2.decode_pages(blob, limits=jbig2.Limits(max_input=1 << 20))
        out["decoded"] += 1
    except jbig2.JBIG2Error:
        out["refused"] += 1
    except BaseException as e:
        out["other"].append(type(e).__name__)
print(out)
"""


def test_worst_cases_run_under_an_address_space_limit():
    """The crafted worst cases in a subprocess whose address space is capped at what it had after
    start-up plus 96 MiB: nothing raises anything but JBIG2Error (MemoryError would, without the
    guard)."""
    import ast
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ADDRESS_SPACE_PROBE % dict(root=root, headroom=96 << 20)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    out = ast.literal_eval(res.stdout.strip().splitlines()[-1])
    assert out["other"] == [] and out["decoded"] + out["refused"] == len(_worst_cases())


def test_small_files_get_memory_in_proportion():
    """With the default limits a ~100-byte stream may not ask for more than 256 MiB (before: any page
    under 2^28 pixels was allocated, gigabytes with the padding), while a genuine empty 8K page,
    which codes in ~100 bytes, still decodes."""
    tiny_huge = file_of(page_info(16000, 16000), region(16000, 16000, b"\x00"))
    assert len(tiny_huge) < 120
    with pytest.raises(JBIG2Error, match="pixel cap|memory cap"):
        jbig2.decode(tiny_huge)
    blank_8k = jbig2.encode(np.zeros((4320, 7680), np.uint8), template=0, tpgdon=True, typical_first_row=True)
    assert len(blank_8k) < 200
    assert jbig2.decode(blank_8k).shape == (4320, 7680)
    assert jbig2.Limits().memory_for(100) == 256 << 20 and jbig2.Limits().memory_for(10 << 20) == 640 << 20
