"""Depth metadata: n-bit quantisation, lossless PNG and JBIG2 bit-plane coding, the kinds registry,
the link layer and the nodes.

References: OpenCV reads the PNGs back (8 and 16 bit), Debian's ``jbig2dec`` decodes the multi-page
bit-plane files (every page a Gray-code bit of the depth codes), numpy's rounding gives the codes.
"""
import io
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import torch

from metavsr.models import link
from metavsr.models.codec.bitstream import Bitstream
from metavsr.models.metadata import KINDS, depth
from metavsr.nodes._check import MetaVSRInputError
from metavsr.nodes.metadata import MetaVSRDepthDecode, MetaVSRDepthMetadata

JBIG2DEC = shutil.which("jbig2dec")


def smooth_depth(t=2, h=48, w=64, seed=0):
    """Depth-like maps: smooth, with one sharp step (an object in front)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = []
    for i in range(t):
        d = 0.2 + 0.5 * yy + 0.1 * np.sin(6 * xx + i) + 0.02 * rng.standard_normal((h, w))
        d[h // 3:2 * h // 3, w // 4:w // 2] = 0.9  # the near object
        out.append(cv2.GaussianBlur(d.astype(np.float32), (0, 0), 1.0))
    return np.clip(np.stack(out), 0, 1)


@pytest.mark.parametrize("coder", depth.CODERS)
@pytest.mark.parametrize("bits", [1, 3, 8, 10, 16])
def test_lossless_for_the_quantised_map(coder, bits):
    d = smooth_depth()
    s = depth.encode(d, depth.DepthCoding(bits, coder))
    codes = np.rint(d * (2 ** bits - 1)).astype(np.int64)  # numpy's own rounding of the codes
    np.testing.assert_array_equal(depth.decode(s), (codes / (2 ** bits - 1)).astype(np.float32))
    assert s.shape == (2, 48, 64, 1) and s.codec == "depth" and len(s.payload) == 2


@pytest.mark.parametrize("bits", [8, 12])
def test_png_frames_read_back_with_opencv(bits):
    d = smooth_depth(1)
    s = depth.encode(d, depth.DepthCoding(bits, "png"))
    img = cv2.imdecode(np.frombuffer(s.payload[0], np.uint8), cv2.IMREAD_UNCHANGED)
    assert img.dtype == (np.uint8 if bits <= 8 else np.uint16)
    np.testing.assert_array_equal(img, depth.quantise(d, bits)[0])


def _pbm_pages(data: bytes):
    """Consecutive binary PBMs (what jbig2dec writes for a multi-page file) -> list of [H,W] 0/1."""
    pages, pos = [], 0
    while pos < len(data):
        fields, end = [], pos
        while len(fields) < 3:  # magic, width, height, each ended by whitespace
            nxt = end
            while data[nxt:nxt + 1] not in (b" ", b"\n", b"\t", b"\r"):
                nxt += 1
            fields.append(data[end:nxt])
            end = nxt + 1
        w, h = int(fields[1]), int(fields[2])
        stride = (w + 7) // 8
        raw = np.frombuffer(data[end:end + stride * h], np.uint8).reshape(h, stride)
        pages.append(np.unpackbits(raw, axis=1)[:, :w])
        pos = end + stride * h
    return pages


@pytest.mark.skipif(JBIG2DEC is None, reason="jbig2dec (Debian) not installed")
def test_bit_planes_decode_with_jbig2dec(tmp_path):
    d = smooth_depth(1)
    bits = 6
    s = depth.encode(d, depth.DepthCoding(bits, "jbig2"))
    src, dst = tmp_path / "d.jb2", tmp_path / "d.pbm"
    src.write_bytes(s.payload[0])
    subprocess.run([JBIG2DEC, "-t", "pbm", "-o", str(dst), str(src)], check=True, capture_output=True)
    pages = _pbm_pages(dst.read_bytes())
    assert len(pages) == bits
    gray = np.zeros(pages[0].shape, np.int64)
    for p in pages:  # most significant plane first
        gray = (gray << 1) | p
    codes = gray.copy()
    shift = gray >> 1
    while shift.any():  # Gray -> binary by prefix XOR
        codes ^= shift
        shift >>= 1
    np.testing.assert_array_equal(codes, depth.quantise(d, bits)[0])


def test_damaged_streams_fail_cleanly():
    d = smooth_depth(1, 24, 32)
    rng = np.random.default_rng(4)
    counts = {"decoded": 0, "error": 0}
    for coder in depth.CODERS:
        good = depth.encode(d, depth.DepthCoding(8, coder))
        for _ in range(150):
            b = bytearray(good.payload[0])
            pos = int(rng.integers(0, len(b)))
            if rng.random() < 0.7:
                b[pos] ^= 1 << int(rng.integers(0, 8))
            else:
                del b[pos:]
            try:
                out = depth.decode(Bitstream("depth", (bytes(b) or b"\0",), good.shape, params=good.params))
            except depth.DepthStreamError:
                counts["error"] += 1
                continue
            assert out.shape == (1, 24, 32) and np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
            counts["decoded"] += 1
    assert counts["error"] > 20 and counts["decoded"] > 5, counts
    lying = depth.encode(d, depth.DepthCoding(8, "png"))
    with pytest.raises(depth.DepthStreamError, match="declares 40x24"):
        depth.decode(Bitstream("depth", lying.payload, (1, 24, 40, 1), params=lying.params))
    with pytest.raises(depth.DepthStreamError, match="coding record"):
        depth.decode(Bitstream("depth", lying.payload, lying.shape, params=dict(bits=0, coder="png")))


def test_registry_and_link_send_both_kinds():
    assert set(KINDS) == {"edges", "depth"} and all(k.channels == 1 for k in KINDS.values())
    d = smooth_depth(2)
    sent = link.send_metadata("depth", d, coding=depth.DepthCoding(5, "jbig2"))
    assert sent.bits == sent.stream.nbits == 8 * sum(len(p) for p in sent.stream.payload)
    np.testing.assert_array_equal(sent.received, depth.dequantise(depth.quantise(d, 5), 5))
    hr = np.repeat(d[..., None], 3, axis=-1)
    edges = link.send_metadata("edges", hr, produce=dict(density=0.05))
    assert edges.received.shape == (2, 48, 64) and set(np.unique(edges.received)) <= {0.0, 1.0}
    assert abs(edges.info["density"] - 0.05) < 0.03 and edges.stream.codec == "jbig2"


def test_nodes_round_trip_and_refuse_other_streams():
    img = torch.from_numpy(np.repeat(smooth_depth(2)[..., None], 3, axis=-1))
    sent, stream, nbytes, bpp = MetaVSRDepthMetadata().run(img, 6, "jbig2")
    (decoded,) = MetaVSRDepthDecode().run(stream)
    assert torch.equal(sent, decoded) and decoded.shape == (2, 48, 64, 3)
    assert nbytes == stream.nbytes and bpp == pytest.approx(8 * nbytes / (2 * 48 * 64))
    with pytest.raises(MetaVSRInputError, match="depth: values must lie in 0..1"):
        MetaVSRDepthMetadata().run(img * 2, 6, "png")
    with pytest.raises(MetaVSRInputError, match="bitstream: expected a depth stream"):
        MetaVSRDepthDecode().run(Bitstream("jpeg", (b"x",), (1, 8, 8, 3)))
    with pytest.raises(MetaVSRInputError, match="coder"):
        MetaVSRDepthMetadata().run(img, 6, "webp")


def test_receivers_without_depth_refuse_it():
    from metavsr.models.receivers.tiny.receiver import load_embedded
    from metavsr.nodes.receiver import MetaVSRSuperResolve
    rx = load_embedded()
    with pytest.raises(MetaVSRInputError, match="does not take depth metadata"):
        MetaVSRSuperResolve().run(rx, torch.rand(1, 12, 16, 3), True, depth=torch.rand(1, 48, 64, 3))


def test_png_is_what_pil_would_write():
    """The PNG coder writes plain greyscale PNGs any reader takes (PIL here)."""
    from PIL import Image
    d = smooth_depth(1)
    s = depth.encode(d, depth.DepthCoding(8, "png"))
    with Image.open(io.BytesIO(s.payload[0])) as im:
        assert im.format == "PNG" and im.mode == "L" and im.size == (64, 48)
