"""JBIG2 codec against independent references: the standard's MQ test sequence (T.88 Annex H.2)
and Debian's ``jbig2dec``, which must decode every file we write bit-exactly."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from skimage import data

from metavsr.models.codec import jbig2, mq
from metavsr.models.codec.jbig2_generic import NOMINAL_AT

JBIG2DEC = shutil.which("jbig2dec")
needs_jbig2dec = pytest.mark.skipif(JBIG2DEC is None, reason="jbig2dec not installed (apt: jbig2dec)")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# T.88 Annex H.2: 256 decisions in one context, and the coded bytes the standard lists.
H2_DECISIONS = bytes.fromhex("00020051000000c00352872aaaaaaaaa82c02000fcd79ef6bf7fed904f46a3bf")
H2_CODED = bytes.fromhex("84c73bfce1a1430402200000410dbb86f4317fff88ff37471adb6adfffac")


def canny(img, low=100, high=200):
    img = np.asarray(img)
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
    return (cv2.Canny(img, low, high) > 0).astype(np.uint8)


def read_pbm(path):
    """Parse a binary PBM (P4) as written by jbig2dec: ``[H,W]`` uint8, 1 = black."""
    raw = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 3:
        while raw[pos:pos + 1].isspace():
            pos += 1
        if raw[pos:pos + 1] == b"#":
            pos = raw.index(b"\n", pos)
            continue
        end = pos
        while not raw[end:end + 1].isspace():
            end += 1
        fields.append(raw[pos:end])
        pos = end
    assert fields[0] == b"P4"
    w, h = int(fields[1]), int(fields[2])
    stride = (w + 7) // 8
    rows = np.frombuffer(raw[pos + 1:pos + 1 + stride * h], np.uint8).reshape(h, stride)
    return np.unpackbits(rows, axis=1)[:, :w]


def jbig2dec(blob: bytes, tmp_path, embedded=False) -> np.ndarray:
    src, dst = tmp_path / "in.jb2", tmp_path / "out.pbm"
    src.write_bytes(blob)
    if dst.exists():
        dst.unlink()
    cmd = [JBIG2DEC, "-t", "pbm", "-o", str(dst)] + (["--embedded"] if embedded else []) + [str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return read_pbm(dst)


def _maps():
    rng = np.random.default_rng(7)
    rows = (rng.random((5, 29)) < 0.4).astype(np.uint8)
    return {
        "canny_astronaut": canny(data.astronaut()),
        "canny_chelsea_w451": canny(data.chelsea()),          # width not a multiple of 8
        "canny_coins": canny(data.coins()),
        "random_p03_37x45": (rng.random((37, 45)) < 0.3).astype(np.uint8),
        "random_p05_23x61": (rng.random((23, 61)) < 0.5).astype(np.uint8),
        "repeated_rows": np.repeat(rows, 6, axis=0),           # TPGDON's typical rows
        "zeros_20x13": np.zeros((20, 13), np.uint8),
        "ones_20x13": np.ones((20, 13), np.uint8),
        "one_pixel_0": np.zeros((1, 1), np.uint8),
        "one_pixel_1": np.ones((1, 1), np.uint8),
    }


MAPS = _maps()
CONFIGS = [(t, tp) for t in range(4) for tp in (False, True)]
# TPGDON with an empty first row predicted from the zero row above (jbig2enc codes that row)
FIRST_ROW = [(t, True) for t in range(4)]


def test_mq_matches_annex_h2_test_sequence():
    bits = np.unpackbits(np.frombuffer(H2_DECISIONS, np.uint8))
    contexts = np.zeros(bits.size, np.int64)
    assert bytes(mq.encode_bits(bits, contexts, 1)) == H2_CODED
    np.testing.assert_array_equal(mq.decode_bits(np.frombuffer(H2_CODED, np.uint8), contexts, 1), bits)


def test_mq_round_trip_many_contexts():
    rng = np.random.default_rng(0)
    for n, p in ((1, 0.5), (5000, 0.02), (5000, 0.5), (5000, 0.98)):
        bits = (rng.random(n) < p).astype(np.uint8)
        ctx = rng.integers(0, 7, n)
        coded = mq.encode_bits(bits, ctx, 7)
        assert bytes(coded[-2:]) == b"\xff\xac"  # FLUSH ends with the marker
        np.testing.assert_array_equal(mq.decode_bits(coded, ctx, 7), bits)


@needs_jbig2dec
@pytest.mark.parametrize("name", list(MAPS))
def test_jbig2dec_decodes_every_template_and_tpgdon(name, tmp_path):
    bitmap = MAPS[name]
    for template, tpgdon in CONFIGS:
        blob = jbig2.encode(bitmap, template=template, tpgdon=tpgdon)
        info = jbig2.describe(blob)
        assert (info["template"], info["tpgdon"], info["at"]) == (template, tpgdon, NOMINAL_AT[template])
        ref = jbig2dec(blob, tmp_path)
        assert ref.shape == bitmap.shape, (template, tpgdon)
        np.testing.assert_array_equal(ref, bitmap, err_msg=f"jbig2dec, template {template}, TPGDON {tpgdon}")
        np.testing.assert_array_equal(jbig2.decode(blob), bitmap)
    for template, tpgdon in FIRST_ROW:
        blob = jbig2.encode(bitmap, template=template, tpgdon=tpgdon, typical_first_row=True)
        np.testing.assert_array_equal(jbig2dec(blob, tmp_path), bitmap)
        np.testing.assert_array_equal(jbig2.decode(blob), bitmap)


@needs_jbig2dec
@pytest.mark.parametrize("template,at", [
    (0, ((-128, -1), (127, -128), (5, -3), (-6, 0))),
    (0, ((1, -3), (-1, -3), (0, -4), (-5, 0))),
    (1, ((-128, 0),)), (1, ((127, -2),)),
    (2, ((0, -3),)), (2, ((-3, -1),)),
    (3, ((0, -2),)), (3, ((-128, -128),)),
])
def test_jbig2dec_decodes_custom_at_pixels(template, at, tmp_path):
    for name in ("canny_coins", "random_p03_37x45"):
        bitmap = MAPS[name]
        for tpgdon in (False, True):
            blob = jbig2.encode(bitmap, template=template, at=at, tpgdon=tpgdon)
            assert jbig2.describe(blob)["at"] == at
            np.testing.assert_array_equal(jbig2dec(blob, tmp_path), bitmap)
            np.testing.assert_array_equal(jbig2.decode(blob), bitmap)


@needs_jbig2dec
def test_jbig2dec_decodes_random_at_pixels(tmp_path):
    """Random legal AT sets (far and near, every row) on an edge map and a random map."""
    from metavsr.models.codec.jbig2_generic import GenericRegionError, check_at
    rng = np.random.default_rng(11)
    done = 0
    while done < 24:
        template = done % 4
        n = 4 if template == 0 else 1
        far = done % 3 == 0
        span = 128 if far else 6
        at = tuple((int(rng.integers(-span, span)), -int(rng.integers(0, span))) for _ in range(n))
        try:
            at = check_at(template, at)
        except GenericRegionError:
            continue
        bitmap = MAPS["canny_coins"] if done % 2 else MAPS["random_p05_23x61"]
        blob = jbig2.encode(bitmap, template=template, at=at, tpgdon=bool(done % 5 == 0))
        np.testing.assert_array_equal(jbig2dec(blob, tmp_path), bitmap, err_msg=f"{template} {at}")
        np.testing.assert_array_equal(jbig2.decode(blob), bitmap)
        done += 1


@needs_jbig2dec
def test_embedded_stream_for_pdf(tmp_path):
    bitmap = MAPS["canny_chelsea_w451"]
    blob = jbig2.encode(bitmap, template=1, tpgdon=True, embedded=True)
    assert not blob.startswith(jbig2.MAGIC)
    np.testing.assert_array_equal(jbig2dec(blob, tmp_path, embedded=True), bitmap)
    np.testing.assert_array_equal(jbig2.decode(blob, embedded=True), bitmap)
    with pytest.raises(jbig2.JBIG2Error, match="magic"):
        jbig2.decode(blob)  # an embedded stream is not a file
    # the file form is the embedded stream plus file header, end of page and end of file
    full = jbig2.encode(bitmap, template=1, tpgdon=True)
    assert len(full) == len(blob) + 13 + 11 + 11


@needs_jbig2dec
def test_auto_is_smallest_and_decodes(tmp_path):
    bitmap = MAPS["canny_astronaut"]
    blob = jbig2.encode(bitmap, auto=True)
    sizes = [len(jbig2.encode(bitmap, template=t, tpgdon=tp)) for t, tp in CONFIGS]
    assert len(blob) <= min(sizes)
    np.testing.assert_array_equal(jbig2dec(blob, tmp_path), bitmap)
    np.testing.assert_array_equal(jbig2.decode(blob), bitmap)


@needs_jbig2dec
def test_4000x3000(tmp_path):
    photo = cv2.resize(data.astronaut(), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    bitmap = canny(photo, 50, 120)
    bitmap[::97, :] = 1  # some full rows, and a last column pattern for the right edge
    bitmap[:, -1] = np.arange(3000) % 3 == 0
    for kwargs in (dict(template=0, tpgdon=True), dict(auto=True)):
        blob = jbig2.encode(bitmap, **kwargs)
        np.testing.assert_array_equal(jbig2dec(blob, tmp_path), bitmap)
        np.testing.assert_array_equal(jbig2.decode(blob), bitmap)


def test_input_forms_and_errors():
    import torch
    b = MAPS["random_p03_37x45"]
    ref = jbig2.encode(b)
    assert jbig2.encode(b.astype(bool)) == ref
    assert jbig2.encode(b.astype(np.float32)) == ref
    assert jbig2.encode(torch.from_numpy(b.astype(np.float32))) == ref
    assert jbig2.encode(b * 255) == ref  # uint8: nonzero is black
    with pytest.raises(ValueError, match="only 0 and 1"):
        jbig2.encode(b * 0.5)
    with pytest.raises(ValueError, match="H,W"):
        jbig2.encode(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="outside the field"):
        jbig2.encode(b, template=1, at=((1, 0),))
    with pytest.raises(ValueError, match="fixed pixel"):
        jbig2.encode(b, template=2, at=((-1, -1),))
    with pytest.raises(ValueError, match="template must be"):
        jbig2.encode(b, template=4)


_PURE_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import tests.conftest  # noqa: F401  (loads the pack as metavsr)
import numpy as np
from metavsr.models.codec import jbig2, mq
assert not mq.HAVE_NUMBA
rng = np.random.default_rng(3)
bm = (rng.random((19, 27)) < 0.2).astype(np.uint8)
bm[7] = bm[6]
out = {}
for t in range(4):
    for tp in (False, True):
        blob = jbig2.encode(bm, template=t, tpgdon=tp)
        assert (jbig2.decode(blob) == bm).all()
        out[f"{t}{int(tp)}"] = blob.hex()
blob = jbig2.encode(bm, template=0, at=((-5, -2), (4, -1), (0, -3), (-5, 0)), tpgdon=True)
assert (jbig2.decode(blob) == bm).all()
out["at"] = blob.hex()
z = np.zeros((6, 9), np.uint8)
z[3, 4] = 1
blob = jbig2.encode(z, template=2, tpgdon=True, typical_first_row=True)
assert (jbig2.decode(blob) == z).all()
out["first"] = blob.hex()
print(json.dumps(out))
"""


def test_pure_python_fallback_matches_numba():
    """Without numba the same functions run as Python and write the same bytes."""
    env = dict(os.environ, METAVSR_NO_NUMBA="1")
    res = subprocess.run([sys.executable, "-c", _PURE_SCRIPT, ROOT], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    pure = json.loads(res.stdout.strip().splitlines()[-1])
    rng = np.random.default_rng(3)
    bm = (rng.random((19, 27)) < 0.2).astype(np.uint8)
    bm[7] = bm[6]
    for t in range(4):
        for tp in (False, True):
            assert pure[f"{t}{int(tp)}"] == jbig2.encode(bm, template=t, tpgdon=tp).hex()
    assert pure["at"] == jbig2.encode(bm, template=0, at=((-5, -2), (4, -1), (0, -3), (-5, 0)),
                                      tpgdon=True).hex()
    z = np.zeros((6, 9), np.uint8)
    z[3, 4] = 1
    assert pure["first"] == jbig2.encode(z, template=2, tpgdon=True, typical_first_row=True).hex()


def test_bulk_run_decoding_equals_pixel_by_pixel():
    """The decoder's bulk MPS runs must reproduce plain DECODE exactly, on real data and on noise."""
    from metavsr.models.codec.jbig2_generic import decode_region, encode_region
    rng = np.random.default_rng(9)
    bitmap = MAPS["canny_astronaut"]
    for template in range(4):
        for tpgdon in (False, True):
            coded = encode_region(bitmap, template, None, tpgdon)
            fast = decode_region(coded, *bitmap.shape, template, None, tpgdon)
            np.testing.assert_array_equal(fast, bitmap)
            np.testing.assert_array_equal(decode_region(coded, *bitmap.shape, template, None, tpgdon, fast=False), fast)
            for n in (0, 3, 200):
                noise = rng.integers(0, 256, n).astype(np.uint8).tobytes() + coded[n:n + 50]
                np.testing.assert_array_equal(
                    decode_region(noise, 64, 93, template, None, tpgdon),
                    decode_region(noise, 64, 93, template, None, tpgdon, fast=False))
