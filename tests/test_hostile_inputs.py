"""Hostile and odd inputs to nodes, image decoders and the main job: a clear error naming the input
(or a correct result), no silent garbage, no allocation out of proportion, nothing lost.

Each test here failed before the hardening it checks (noted per test); the references are
independent: OpenCV reads the 16-bit PNG, PIL writes the JPEGs, tracemalloc counts the bytes.
"""
import io
import json
import os
import re
import tracemalloc

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from metavsr.models import atomic
from metavsr.models import experiment as ex
from metavsr.models import images as im
from metavsr.models.codec import bitdepth, jbig2, jpeg
from metavsr.models.codec.bitstream import Bitstream
from metavsr.nodes._check import MetaVSRInputError
from metavsr.nodes.codec import MetaVSRDecodeBitstream
from metavsr.nodes.evaluate import MetaVSREdgeOverlay, MetaVSRMetrics
from metavsr.nodes.jbig2 import MetaVSRJBIG2Decode, MetaVSRJBIG2Encode
from metavsr.nodes.receiver import MetaVSRSuperResolve
from metavsr.nodes.sender import MetaVSRBitDepthQuantize


@pytest.fixture(scope="module")
def model():
    from metavsr.models.receivers.tiny.receiver import load_embedded
    return load_embedded()


def _edges(h=64, w=64, t=1):
    rng = np.random.default_rng(3)
    return torch.from_numpy((rng.random((t, h, w)) < 0.05).astype(np.float32))


# --- silent garbage: MASK inputs are checked like IMAGE inputs (before: the whole output NaN) -------
def test_nan_in_an_edge_mask_is_refused(model):
    lr = torch.rand(1, 16, 16, 3)
    edges = _edges()
    edges[0, 5, 7] = float("nan")
    with pytest.raises(MetaVSRInputError, match="edges: contains 1 NaN"):
        MetaVSRSuperResolve().run(model, lr, True, edges=edges)
    with pytest.raises(MetaVSRInputError, match="mask: contains 1 NaN"):
        MetaVSREdgeOverlay().run(torch.rand(1, 64, 64, 3), edges)
    with pytest.raises(MetaVSRInputError, match="edges: contains"):
        MetaVSRJBIG2Encode().run(edges)
    with pytest.raises(MetaVSRInputError, match="edges: values must lie in 0..1"):
        MetaVSRSuperResolve().run(model, lr, True, edges=_edges() * 3)
    out = MetaVSRSuperResolve().run(model, lr, True, edges=_edges())[0]
    assert torch.isfinite(out).all() and out.shape == (1, 64, 64, 3)


# --- memory out of proportion: guards before allocation ---------------------------------------------
def test_super_resolve_refuses_an_output_it_cannot_make(model):
    lr = torch.zeros(1, 4100, 40, 3)  # x4 -> 16400 px tall (before: a raw allocator error at 6000^2)
    with pytest.raises(MetaVSRInputError, match="lr_images: 40x4100 at x4 .*16384"):
        MetaVSRSuperResolve().run(model, lr, False)


def test_jbig2_decode_node_bounds_memory_by_the_declared_size():
    stream, _, _ = MetaVSRJBIG2Encode().run(_edges(40, 48, 2))
    # a declared 1.8 TiB output: refused before anything is allocated (before: np.empty asked for it)
    huge = Bitstream("jbig2", stream.payload, (2, 1 << 20, 1 << 20, 1), params=dict(stream.params, coded_size=(1 << 20, 1 << 20)))
    with pytest.raises(MetaVSRInputError, match="bitstream: the decoded edge maps would be .*GiB"):
        MetaVSRJBIG2Decode().run(huge)
    # a payload whose page is larger than the declared size is refused by the decoder's caps
    big = jbig2.encode(np.zeros((400, 400), np.uint8))
    lying = Bitstream("jbig2", (big, big), stream.shape, params=stream.params)
    with pytest.raises(MetaVSRInputError, match="frame 0 is not a readable JBIG2 stream of the declared 48x40"):
        MetaVSRJBIG2Decode().run(lying)
    # and one that is smaller is named too
    small = jbig2.encode(np.zeros((20, 48), np.uint8))
    with pytest.raises(MetaVSRInputError, match="frame 0 decodes to 48x20 but the bitstream declares 48x40"):
        MetaVSRJBIG2Decode().run(Bitstream("jbig2", (small, small), stream.shape, params=stream.params))
    assert MetaVSRJBIG2Decode().run(stream)["result"][3] is True


def test_bitdepth_decode_working_memory_is_bounded():
    """A 1-bit stream of 16 MP: the decoder holds the float32 output plus small chunks (before: an
    int64 intermediate 8x the index count, here 128 MB more)."""
    t, h, w = 1, 4096, 4096
    rng = np.random.default_rng(0)
    header = bitdepth._HEADER.pack(bitdepth._MAGIC, 1, 0, t, h, w)
    blob = header + bytes([0, 0, 0, 255, 255, 255]) + rng.integers(0, 256, h * w // 8, dtype=np.uint8).tobytes()
    stream = Bitstream("vq1", (blob,), (t, h, w, 3))
    tracemalloc.start()
    out = bitdepth.decode(stream)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.shape == (t, h, w, 3) and set(np.unique(out)) == {0.0, 1.0}
    assert peak <= out.nbytes + len(blob) + (24 << 20), f"{peak / 2**20:.0f} MiB for a {out.nbytes / 2**20:.0f} MiB output"
    # the unpacking is exact: bit i of the stream is pixel i
    bits = np.unpackbits(np.frombuffer(blob[len(header) + 6:], np.uint8))
    np.testing.assert_array_equal(out[0, ..., 0].reshape(-1), bits.astype(np.float32))


def test_bitdepth_header_must_match_the_declared_shape():
    _, s = bitdepth.quantize(np.random.default_rng(0).random((1, 16, 24, 3)).astype(np.float32), 3)
    with pytest.raises(ValueError, match="declares"):
        bitdepth.decode(Bitstream("vq3", s.payload, (1, 16, 16, 3)))
    with pytest.raises(ValueError, match="declares"):
        bitdepth.decode(Bitstream("vq4", s.payload, s.shape))
    with pytest.raises(MetaVSRInputError, match="bitstream: .*declares"):
        MetaVSRDecodeBitstream().run(Bitstream("vq3", s.payload, (1, 16, 16, 3)))


def test_decode_bitstream_refuses_a_huge_declared_output():
    with pytest.raises(MetaVSRInputError, match="bitstream: the decoded frames would be"):
        MetaVSRDecodeBitstream().run(Bitstream("jpeg", (b"x",) * 1, (1, 1 << 20, 1 << 20, 3)))


# --- silent garbage: the bytes must be what the bitstream declares ---------------------------------
def _jpeg_bytes(arr, mode=None):
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_decode_bitstream_trusts_the_declaration_not_the_bytes():
    """Before: a JPEG declared 64x64 came back 48x32, CMYK came back with 4 channels, PNG bytes
    decoded as 'jpeg'."""
    rgb = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
    node = MetaVSRDecodeBitstream()
    ok = node.run(Bitstream("jpeg", (_jpeg_bytes(rgb),), (1, 32, 48, 3)))[0]
    assert ok.shape == (1, 32, 48, 3)
    with pytest.raises(MetaVSRInputError, match="48x32 but the bitstream declares 64x64"):
        node.run(Bitstream("jpeg", (_jpeg_bytes(rgb),), (1, 64, 64, 3)))
    with pytest.raises(MetaVSRInputError, match="CMYK"):
        node.run(Bitstream("jpeg", (_jpeg_bytes(rgb, "CMYK"),), (1, 32, 48, 3)))
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    with pytest.raises(MetaVSRInputError, match="not a JPEG"):
        node.run(Bitstream("jpeg", (png.getvalue(),), (1, 32, 48, 3)))
    with pytest.raises(MetaVSRInputError, match="2 payloads for 1 declared frames"):
        node.run(Bitstream("jpeg", (_jpeg_bytes(rgb),) * 2, (1, 32, 48, 3)))
    grey = node.run(Bitstream("jpeg", (_jpeg_bytes(rgb[..., 0]),), (1, 32, 48, 1)))[0]
    assert grey.shape == (1, 32, 48, 3)  # greyscale streams come back as RGB IMAGEs


def test_jpeg_decoder_on_mutated_streams():
    """Seeded mutations of real JPEG streams: the declared shape or a ValueError, nothing else."""
    x = np.random.default_rng(1).random((1, 24, 40, 3)).astype(np.float32)
    good = jpeg.jpeg_encode(x, 60)
    rng = np.random.default_rng(9)
    counts = {"decoded": 0, "error": 0}
    for _ in range(300):
        b = bytearray(good.payload[0])
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, len(b)))
            if rng.random() < 0.7:
                b[pos] ^= 1 << int(rng.integers(0, 8))
            else:
                del b[pos:]
                if not b:
                    break
        try:
            out = jpeg.jpeg_decode(Bitstream("jpeg", (bytes(b),), good.shape)) if b else None
        except ValueError:
            counts["error"] += 1
            continue
        if out is not None:
            assert out.shape == good.shape and np.isfinite(out).all()
            counts["decoded"] += 1
    assert counts["decoded"] > 10 and counts["error"] > 10, counts


# --- minor: widget values the UI allows but the code did not handle --------------------------------
def test_widget_values_outside_their_meaning():
    img = torch.rand(1, 16, 16, 3)
    with pytest.raises(MetaVSRInputError, match="seed"):
        MetaVSRBitDepthQuantize().run(img, 2, "per frame", 100, -1, 4)
    with pytest.raises(MetaVSRInputError, match="color_space"):
        MetaVSRMetrics().run(img, img, color_space="XYZ", lpips_net="off")


def test_bitdepth_fit_reports_progress_and_can_be_cancelled():
    """Before: bits 8 with 10^6 samples ran minutes with no progress and no way to stop."""
    calls = []

    class Cancelled(Exception):
        pass

    def progress(done, total):
        calls.append((done, total))
        if len(calls) == 5:
            raise Cancelled

    x = np.random.default_rng(0).random((1, 128, 128, 3)).astype(np.float32)
    with pytest.raises(Cancelled):
        bitdepth.quantize(x, 8, samples=16384, progress=progress)
    assert len(calls) == 5 and all(0 < d <= t for d, t in calls) and calls[-1][0] < calls[-1][1]
    seen = []
    bitdepth.quantize(x[:, :32, :32], 2, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]  # a full run ends at 100 %


# --- the main job's inputs and outputs ----------------------------------------------------------------
def test_sixteen_bit_greyscale_png_keeps_its_values(tmp_path):
    """Before: convert("RGB") clipped 16-bit samples at 255, and the image came out 91 % white."""
    ramp = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    path = str(tmp_path / "ramp16.png")
    cv2.imwrite(path, ramp)
    ref = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535  # OpenCV reads it back
    img = im.load_image(path)
    assert img.shape == (48, 64, 3)
    np.testing.assert_allclose(img[..., 0], ref, atol=1e-6)
    assert (img == 1).mean() < 0.01


def test_inputs_with_the_same_name_keep_both(tmp_path):
    names = im.unique_names([str(tmp_path / "a" / "photo.png"), str(tmp_path / "b" / "photo.png"),
                             str(tmp_path / "c" / "other.jpg")])
    assert names == ["a/photo", "b/photo", "other"]
    with pytest.raises(ValueError, match="more than once"):
        im.unique_names([str(tmp_path / "x.png"), str(tmp_path / "x.png")])


def test_bad_input_files_are_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ValueError, match="broken.png: cannot use it as an input image"):
        im.load_image(str(bad))
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((64, 80, 3), np.uint8))
    with pytest.raises(ValueError, match="big.png: 80x64 is larger .*--max-side"):
        im.load_image(str(big), max_pixels=1000)
    assert im.load_image(str(big), max_pixels=1000, max_side=16).shape == (16, 16, 3)


def test_run_py_errors_name_the_argument(tmp_path):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    afile = tmp_path / "a_file"
    afile.write_text("x")
    for argv, match in ((["--out", str(afile)], "--out: .*is a file"),
                        (["--out", str(afile / "sub")], "--out: cannot write"),
                        (["--out", str(tmp_path / "o"), "--input", str(afile)], "--input: .*a_file: cannot use"),
                        (["--out", str(tmp_path / "o"), "--qualities", "0", "50"], "--qualities: JPEG qualities are 1..100")):
        res = subprocess.run([sys.executable, os.path.join(root, "run.py"), "--quick"] + argv,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
        assert re.search(match, res.stderr), res.stderr[-500:]


def test_atomic_writes_keep_the_old_file(tmp_path):
    """Before: report.json was truncated first, so a failure (full disk, bad value) left half a JSON."""
    path = tmp_path / "report.json"
    atomic.write_json(str(path), {"good": 1})

    def fails_half_way(f):
        f.write(b'{"new": ')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic.write_with(str(path), fails_half_way)
    with pytest.raises(TypeError):
        atomic.write_json(str(path), {"bad": object()})
    assert json.loads(path.read_text()) == {"good": 1}
    assert sorted(os.listdir(tmp_path)) == ["report.json"]  # no temporary file left behind
    with pytest.raises(ValueError, match="is a file"):
        atomic.check_writable(str(path))


def test_atomic_writes_get_the_permissions_open_would_give(tmp_path):
    """Before: every file went out 0600 (mkstemp's mode), unreadable to the group or a container
    sharing the output folder. Reference: a plain open() under the same umask."""
    old = os.umask(0o027)
    try:
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
        atomic.write_bytes(str(tmp_path / "ours.bin"), b"x")
        mode = lambda n: os.stat(tmp_path / n).st_mode & 0o777
        assert mode("ours.bin") == mode("plain.txt") == 0o640
        os.chmod(tmp_path / "ours.bin", 0o604)  # a replaced file keeps the mode it had
        atomic.write_bytes(str(tmp_path / "ours.bin"), b"y")
        assert mode("ours.bin") == 0o604
    finally:
        os.umask(old)


def test_run_py_writes_the_report_atomically(tmp_path, monkeypatch):
    """A report that fails to serialise leaves the previous report.json whole."""
    import run
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"previous": true}')
    monkeypatch.setattr(ex, "run_experiment", lambda *a, **k: {"regimes": {}, "bad": object(), "_frames": {}})
    from metavsr.models import report as rep
    monkeypatch.setattr(ex, "plot_rd", lambda report, path: None)
    monkeypatch.setattr(rep, "side_by_side", lambda *a, **k: {})
    monkeypatch.setattr(rep, "summary_lines", lambda report: [])
    monkeypatch.setattr(rep, "jsonable", lambda report: report)
    with pytest.raises(TypeError):
        run.main(["--out", str(out), "--quick", "--no-lpips"])
    assert json.loads((out / "report.json").read_text()) == {"previous": True}
