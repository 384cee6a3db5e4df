"""The verification gate (models/orchestrator/gate.py) on a synthetic scene whose edges are known:
true Canny edges pass, the same map moved by 2-3 px or replaced by random pixels does not, a frame
without edges passes, bad shapes are refused. Rates on natural images: bench/gate.py."""
import numpy as np
import pytest

from metavsr.models.codec.resize import downscale
from metavsr.models.metadata.canny import canny_edges
from metavsr.models.orchestrator import gate


def _scene(size=128):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = 0.2 + 0.5 * ((x > 37) & (x < 90) & (y > 20) & (y < 70))            # a bright rectangle
    img = img + 0.25 * (((x - 64) ** 2 + (y - 98) ** 2) < 18 ** 2)         # and a disk
    rgb = np.stack([img, img * 0.8, img * 0.6], -1).clip(0, 1)[None]
    return rgb, downscale(rgb, 4, "bicubic")


def test_true_edges_pass_and_corrupted_ones_do_not():
    hr, lr = _scene()
    e = canny_edges(hr, 50, 120)
    assert 0.01 < e.mean() < 0.2
    ok = gate.check_edges(lr, e)
    assert ok.all_accepted and ok.level[0] > 3 and ok.peak[0] > 1
    for d in (2, 3):
        for axis in (1, 2):
            moved = gate.check_edges(lr, np.roll(e, d, axis=axis))
            assert not moved.accepted[0] and moved.peak[0] < gate.MIN_PEAK, (d, axis)
    rnd = (np.random.default_rng(0).random(e.shape) < e.mean()).astype(np.uint8)
    assert not gate.check_edges(lr, rnd).accepted[0]
    assert "pixel-only" in gate.check_edges(lr, rnd).table()


def test_frames_are_judged_one_by_one_and_empty_maps_pass():
    hr, lr = _scene()
    e = canny_edges(hr, 50, 120)
    clip = np.concatenate([lr, lr])
    maps = np.concatenate([e, np.roll(e, 3, axis=2)])
    r = gate.check_edges(clip, maps)
    assert r.accepted.tolist() == [True, False]
    empty = gate.check_edges(lr, np.zeros_like(e))
    assert empty.all_accepted and np.isnan(empty.level[0])
    assert gate.check_edges(clip, e[0]).accepted.tolist() == [True, True]     # one map for every frame


def test_shapes_are_checked():
    hr, lr = _scene()
    e = canny_edges(hr, 50, 120)
    with pytest.raises(ValueError, match="integer multiple"):
        gate.check_edges(lr, e[:, :100])
    with pytest.raises(ValueError, match="2 edge maps for 1 frames"):
        gate.check_edges(lr, np.concatenate([e, e]))
    with pytest.raises(ValueError, match="expected lr"):
        gate.check_edges(lr[..., :1], e)


def test_second_stage_drops_maps_whose_output_fits_the_lr_worse():
    from metavsr.models.codec.resize import upscale
    hr, lr = _scene()
    clean = upscale(lr, 4, "bicubic")
    noisy = (clean + np.random.default_rng(0).normal(0, 0.05, clean.shape)).astype(np.float32)
    # the same output on both sides fits the LR equally well
    assert gate.inconsistency(lr, clean, clean)[0] == 1.0
    r = gate.inconsistency(np.concatenate([lr, lr]), np.concatenate([clean, noisy]), np.concatenate([clean, clean]))
    assert r[0] == 1.0 and r[1] > 1.5
    first = gate.check_edges(np.concatenate([lr, lr]), canny_edges(hr, 50, 120))
    assert first.all_accepted
    both = gate.second_stage(first, r)
    assert both.accepted.tolist() == [True, False] and "fit" in both.table()
    kept = gate.second_stage(first, np.array([np.nan, np.nan]))
    assert kept.accepted.tolist() == [True, True]
    with pytest.raises(ValueError, match="consistency ratios"):
        gate.second_stage(first, r[:1])


# ----------------------------------------------------------------------------- signed check

def _crops(name="clock", n=6, size=128, seed=3):
    """HR crops of a registry image and their Canny maps at 4 % density."""
    import skimage.data
    from metavsr.models.metadata.canny import canny_for_density
    img = getattr(skimage.data, name)()
    img = (np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]).astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    hr = np.stack([img[y:y + size, x:x + size] for y, x in
                   zip(rng.integers(0, img.shape[0] - size, n), rng.integers(0, img.shape[1] - size, n))])
    return hr, canny_for_density(hr, 0.04)[0]


def _ffmpeg(stream):
    """The JPEG base layer read by FFmpeg's decoder (PyAV), not libjpeg-turbo: another receiver."""
    av = pytest.importorskip("av")
    out = []
    for p in stream.payload:
        frame = av.CodecContext.create("mjpeg", "r").decode(av.Packet(p))[0]
        out.append(frame.to_ndarray(format="rgb24").astype(np.float32) / 255)
    return np.stack(out)


@pytest.mark.parametrize("name", ["clock", "chelsea"])
def test_signature_keeps_true_maps_another_decoder_reads_and_rejects_moved_ones(name):
    """The motion-blurred clock: its maps hold streaks finer than the LR, where the blind tests cannot
    tell a map from the same map moved; the sender's signature can. The cat: colour, so the two
    JPEG decoders' chroma upsampling differs by several levels."""
    from metavsr.models.codec.jpeg import jpeg_decode, jpeg_encode
    hr, e = _crops(name)
    keep = e.reshape(len(e), -1).mean(1) > 0.01     # crops with edges (an empty map has nothing to move)
    hr, e = hr[keep], e[keep]
    assert len(e) >= 3
    stream = jpeg_encode(downscale(hr, 4, "bicubic"), 75)
    sig = gate.sign(jpeg_decode(stream), e)
    lr = _ffmpeg(stream)
    assert np.abs(lr - jpeg_decode(stream)).max() > (0.5 if name == "clock" else 3.5) / 255   # they really differ
    ok = gate.check_edges(lr, e, signature=sig)
    assert ok.all_accepted and all(ok.check(i) == "signature" for i in range(len(e)))
    assert np.all(ok.deviation < gate.MAX_DEVIATION)
    blind_moved = signed_moved = 0
    for dx, dy in ((2, 0), (-2, 0), (0, 2), (0, -2), (2, 2), (-3, 2), (4, -4), (0, 6)):
        moved = np.roll(e, (dy, dx), axis=(1, 2))
        signed_moved += gate.check_edges(lr, moved, signature=sig).accepted.sum()
        blind_moved += gate.check_edges(lr, moved).accepted.sum()
    assert signed_moved == 0
    assert blind_moved > 0 or name != "clock"      # the blind tests let some through here
    other = gate.check_edges(lr, e[::-1], signature=sig)
    assert not other.accepted.any()
    rnd = (np.random.default_rng(1).random(e.shape) < e.mean()).astype(np.uint8)
    assert not gate.check_edges(lr, rnd, signature=sig).accepted.any()


@pytest.mark.parametrize("regime", ["LN", "HN"])
def test_on_an_lr_the_channel_altered_the_maps_crc_decides(regime):
    """The channel's noise and blur change the levels, so the map's CRC decides: the true map of
    every crop passes (the blind tests refuse some), any change to it does not."""
    from metavsr.models.codec.degrade import REGIMES, channel_degrade
    from metavsr.models.codec.jpeg import jpeg_decode, jpeg_encode
    hr, e = _crops("chelsea")
    sent = jpeg_decode(jpeg_encode(downscale(hr, 4, "bicubic"), 75))
    sig = gate.sign(sent, e)
    noisy = channel_degrade(sent, *REGIMES[regime], seed=0)
    signed, blind = gate.check_edges(noisy, e, signature=sig), gate.check_edges(noisy, e)
    assert all(signed.check(i) == "signature, LR altered" for i in range(len(e)))
    assert signed.all_accepted and (regime == "LN" or not blind.all_accepted)
    assert all(row.split()[4] == "alt." for row in signed.table().splitlines()[1:1 + len(e)])
    one = e.copy()
    one[0, 64, 64] ^= 1                                       # a single pixel is enough
    assert gate.map_crc(one[0]) != gate.map_crc(e[0])
    for bad in (one, np.roll(e, 2, axis=2), e[::-1], (np.random.default_rng(2).random(e.shape) < 0.04).astype(np.uint8)):
        r = gate.check_edges(noisy, bad, signature=sig)
        changed = [i for i in range(len(e)) if not np.array_equal(bad[i], e[i])]
        assert not r.accepted[changed].any() and all(r.mark(i) == "map" for i in changed)
    assert "map / lr: not the signed map / LR" in r.table()


def test_an_lr_changed_after_coding_is_checked_against_the_map():
    """An LR that changed but not like a channel (the scene moved under the map by a camera pan) is
    not taken on the CRC alone: the map must still sit on its gradient."""
    hr, lr = _scene()
    e = canny_edges(hr, 50, 120)
    sig = gate.sign(lr, e)
    panned = downscale(np.roll(hr, (24, 36), axis=(1, 2)), 4, "bicubic")
    r = gate.check_edges(panned, e, signature=sig)
    assert r.check(0) == "signature, LR changed" and not r.accepted[0] and r.mark(0) == "lr"
    assert gate.check_edges(np.clip(lr + 40 / 255, 0, 1), e, signature=sig).accepted[0]   # brighter, in place
    from metavsr.models.codec.degrade import REGIMES, channel_degrade
    # through the channel, that much brighter is another scene: HN's clipping moves the mean by 8 levels at most
    far = gate.check_edges(channel_degrade(np.clip(lr + 40 / 255, 0, 1), *REGIMES["HN"]), e, signature=sig)
    near = gate.check_edges(channel_degrade(lr, *REGIMES["HN"]), e, signature=sig)
    assert near.accepted[0] and not far.accepted[0] and far.mark(0) == "lr"


def test_signature_stream_format_and_damage():
    hr, lr = _scene()
    e = canny_edges(hr, 50, 120)
    maps = np.concatenate([e, np.zeros_like(e)])
    sig = gate.sign(np.concatenate([lr, lr]), maps)
    assert sig.codec == "gate-signature" and sig.shape == (2, 128, 128, 1)
    assert [len(p) for p in sig.payload] == [gate.RECORD_BYTES, 0] == [32, 0]
    assert sig.nbytes == gate.signature_nbytes(maps)
    rec = gate.read_signature(sig, 2)
    assert rec[1] is None
    np.testing.assert_allclose(rec[0].fingerprint, gate.fingerprint(lr[0]).astype(np.float64))
    levels = gate.scores(gate.gradient(lr[0], (128, 128)), e[0])[0]   # own level over the plain mean
    assert levels > rec[0].levels[0] > 0.5 * levels                    # the floor lowers it a little
    assert rec[0].crc == gate.map_crc(e[0]) == __import__("zlib").crc32(
        np.packbits(e[0] > 0, axis=1).tobytes(), __import__("zlib").crc32(np.array([128, 128], ">u4").tobytes()))
    # a frame the sender sent without edges refuses any map the receiver holds for it
    r = gate.check_edges(np.concatenate([lr, lr]), np.concatenate([e, e]), signature=sig)
    assert r.accepted.tolist() == [True, False] and np.isinf(r.deviation[1])
    bad = [(dict(payload=(sig.payload[0][:31], b"")), "31 bytes"),
           (dict(payload=(sig.payload[0],)), "covers 1 frame"),
           (dict(codec="jbig2"), "gate-signature"),
           (dict(payload=(b"\x7c\x00" * 16, b"")), "non-finite"),
           (dict(shape=(2, 64, 64, 1)), "64x64 maps")]
    from dataclasses import replace
    for change, match in bad:
        with pytest.raises(ValueError, match=match):
            gate.check_edges(np.concatenate([lr, lr]), maps, signature=replace(sig, **change))
