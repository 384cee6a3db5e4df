"""Sender/codec/metadata nodes: outputs wired right, and bad inputs rejected with errors that name
the input and the fix."""
import pytest
import torch

import metavsr
from metavsr.nodes._check import MetaVSRInputError

N = metavsr.NODE_CLASS_MAPPINGS


def img(b=1, h=32, w=32, c=3, seed=0):
    return torch.rand(b, h, w, c, generator=torch.Generator().manual_seed(seed))


def run(name, **kw):
    cls = N[name]
    return getattr(cls(), cls.FUNCTION)(**kw)


def test_every_node_declares_the_v1_api():
    for key, cls in N.items():
        assert key.startswith("MetaVSR")
        assert cls.CATEGORY.startswith("MetaVSR/") and cls.DESCRIPTION and hasattr(cls, cls.FUNCTION)
        types = cls.INPUT_TYPES()
        for section in types.values():
            for name, spec in section.items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{key}.{name} has no tooltip"
        assert len(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)) == len(cls.RETURN_TYPES)


def test_pipeline_shapes_and_bitrate_table():
    hr = img(2, 64, 64)
    (deg,) = run("MetaVSRChannelDegrade", images=hr, regime="HN", noise_sigma=0, blur_kernel=0, blur_sigma=0, seed=1)
    (lr,) = run("MetaVSRDownscale", images=deg, method="patchwise", factor=4, patch_sigma=0.0)
    assert lr.shape == (2, 16, 16, 3)
    q, stream, cadm, actual = run("MetaVSRBitDepthQuantize", images=lr, bits=4, codebook="per frame", samples=1000,
                                  seed=0, scale_factor=4)
    assert cadm == 24 * 16 / 4 and actual == pytest.approx(24 * 2 * 64 * 64 / stream.nbits)
    dec, jstream = run("MetaVSRJPEG", images=q, quality=50)
    assert dec.shape == q.shape
    (redec,) = run("MetaVSRDecodeBitstream", bitstream=stream)
    assert torch.equal(redec, q)
    edges, density = run("MetaVSRCannyMetadata", images=hr, mode="target density", low=0, high=0,
                         target_density=0.05, dilation=0)
    assert edges.shape == (2, 64, 64) and set(edges.unique().tolist()) <= {0.0, 1.0}
    out = run("MetaVSRBitrate", bitstream_1=jstream, bitstream_2=stream, reference=hr)
    table, bits, bpp, kbps = out["result"]
    assert bits == 8 * (jstream.nbytes + stream.nbytes) and bpp == pytest.approx(bits / (2 * 64 * 64))
    assert "total" in table and out["ui"]["text"] == [table]
    (up,) = run("MetaVSRUpscale", images=dec, method="bicubic", factor=4)
    assert up.shape == hr.shape


def test_video_node_kbps():
    frames, stream, kbps = run("MetaVSRVideoEncode", images=img(3, 32, 48), codec="h264", rate_control="crf",
                               value=30, fps=24.0, preset="veryfast")
    assert frames.shape == (3, 32, 48, 3) and kbps == pytest.approx(stream.nbits * 24 / 3 / 1000)


BAD = [
    ("MetaVSRJPEG", dict(images=torch.zeros(0, 8, 8, 3), quality=50), "images", "empty"),
    ("MetaVSRJPEG", dict(images=img(c=4), quality=50), "images", "alpha"),
    ("MetaVSRJPEG", dict(images=img(c=1), quality=50), "images", "RGB"),
    ("MetaVSRJPEG", dict(images=img(), quality=101), "quality", "1..100"),
    ("MetaVSRJPEG", dict(images=img()[0], quality=50), "images", "batch"),
    ("MetaVSRJPEG", dict(images=img() * float("nan"), quality=50), "images", "NaN"),
    ("MetaVSRJPEG", dict(images=img() * 3, quality=50), "images", "0..1"),
    ("MetaVSRDownscale", dict(images=img(h=30), method="bicubic", factor=4), "images", "divisible"),
    ("MetaVSRDownscale", dict(images=img(h=2, w=2), method="area", factor=4), "images", "smaller than the factor"),
    ("MetaVSRBitDepthQuantize", dict(images=img(), bits=9, codebook="per frame", samples=1000, seed=0,
                                     scale_factor=1), "bits", "1..8"),
    ("MetaVSRVideoEncode", dict(images=img(), codec="h264", rate_control="crf", value=23, fps=0.0,
                                preset="fast"), "fps", "range"),
    ("MetaVSRVideoEncode", dict(images=img(), codec="h264", rate_control="crf", value=60, fps=30.0,
                                preset="fast"), "value", "0..51"),
    ("MetaVSRChannelDegrade", dict(images=img(), regime="custom", noise_sigma=5, blur_kernel=4, blur_sigma=1,
                                   seed=0), "blur_kernel", "odd"),
    ("MetaVSRCannyMetadata", dict(images=img(), mode="thresholds", low=200, high=100, target_density=0.1,
                                  dilation=0), "low", "low <= high"),
    ("MetaVSRBitrate", dict(), "bitstream_1", "connect"),
]


@pytest.mark.parametrize("name,kwargs,field,hint", BAD, ids=[f"{b[0]}-{b[2]}-{b[3]}" for b in BAD])
def test_bad_inputs_are_named(name, kwargs, field, hint):
    with pytest.raises(MetaVSRInputError) as err:
        run(name, **kwargs)
    msg = str(err.value)
    assert msg.startswith(field + ":") and hint in msg, msg
