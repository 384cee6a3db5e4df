"""JBIG2 Encode / Decode nodes: MASK batch -> one JBIG2 file per frame -> MASK, checked with jbig2dec."""
import shutil

import numpy as np
import pytest
import torch
from skimage import data

from metavsr.models.codec.bitstream import Bitstream
from metavsr.nodes._check import MetaVSRInputError
from metavsr.nodes.jbig2 import MetaVSRJBIG2Decode, MetaVSRJBIG2Encode
from metavsr.models.metadata.canny import canny_edges
from test_jbig2 import jbig2dec


@pytest.fixture(scope="module")
def masks():
    frames = np.stack([data.astronaut()[:200, :301], data.coffee()[:200, :301]]).astype(np.float32) / 255
    return torch.from_numpy(canny_edges(frames, 100, 200).astype(np.float32))


def test_round_trip_full_resolution(masks, tmp_path):
    stream, nbytes, bpp = MetaVSRJBIG2Encode().run(masks, template="auto")
    assert isinstance(stream, Bitstream) and stream.codec == "jbig2" and len(stream.payload) == 2
    assert stream.shape == (2, 200, 301, 1) and nbytes == stream.nbytes
    assert bpp == pytest.approx(8 * nbytes / (2 * 200 * 301))
    if shutil.which("jbig2dec"):
        for i, blob in enumerate(stream.payload):  # each payload is a standalone one-page file
            np.testing.assert_array_equal(jbig2dec(blob, tmp_path), masks[i].numpy().astype(np.uint8))
    res = MetaVSRJBIG2Decode().run(stream, original=masks)
    edges, nb, bpp2, exact, report = res["result"]
    assert torch.equal(edges, masks) and nb == nbytes and bpp2 == bpp and exact is True
    assert "bit-exact" in report and "0.000% pixels differ" in report and res["ui"]["text"] == (report,)


def test_fixed_template_embedded_and_half_resolution(masks, tmp_path):
    stream, _, _ = MetaVSRJBIG2Encode().run(masks, template="2", tpgdon=True, resolution="1/2",
                                            container="pdf embedded")
    assert stream.params["coded_size"] == (100, 151)
    assert all(f["template"] == 2 and f["tpgdon"] for f in stream.params["frames"])
    if shutil.which("jbig2dec"):
        small = jbig2dec(stream.payload[0], tmp_path, embedded=True)
        assert small.shape == (100, 151)
    edges, _, _, exact, report = MetaVSRJBIG2Decode().run(stream, original=masks)["result"]
    assert exact and edges.shape == masks.shape and "coded at 1/2" in report
    covered = edges.numpy()[masks.numpy() == 1]
    assert covered.min() == 1  # 'any' reduction keeps every edge pixel covered after upscaling


def test_thinning_and_quarter_resolution_cost_fewer_bytes(masks):
    full = MetaVSRJBIG2Encode().run(masks)[1]
    assert MetaVSRJBIG2Encode().run(masks, thinning=True)[1] <= full
    assert MetaVSRJBIG2Encode().run(masks, resolution="1/4")[1] < full


def test_tampered_stream_is_flagged_or_refused(masks):
    stream, _, _ = MetaVSRJBIG2Encode().run(masks, template="0")
    blob = bytearray(stream.payload[0])
    blob[-30] ^= 0x40  # inside the arithmetic-coded data: still decodes, to a different map
    bad = Bitstream("jbig2", (bytes(blob),) + stream.payload[1:], stream.shape, params=stream.params)
    out = MetaVSRJBIG2Decode().run(bad)["result"]
    assert out[3] is False and "MISMATCH" in out[4]
    broken = Bitstream("jbig2", (b"garbage",) + stream.payload[1:], stream.shape, params=stream.params)
    with pytest.raises(MetaVSRInputError, match="frame 0 is not a readable JBIG2 stream.*magic"):
        MetaVSRJBIG2Decode().run(broken)


def test_input_validation(masks):
    with pytest.raises(MetaVSRInputError, match="edges: a bi-level mask"):
        MetaVSRJBIG2Encode().run(masks * 0.5)
    with pytest.raises(MetaVSRInputError, match="template"):
        MetaVSRJBIG2Encode().run(masks, template="7")
    with pytest.raises(MetaVSRInputError, match="resolution"):
        MetaVSRJBIG2Encode().run(masks, resolution="1/3")
    jpeg_like = Bitstream("jpeg", (b"x",), (1, 4, 4, 3))
    with pytest.raises(MetaVSRInputError, match="not JBIG2"):
        MetaVSRJBIG2Decode().run(jpeg_like)
    with pytest.raises(MetaVSRInputError, match="original"):
        stream = MetaVSRJBIG2Encode().run(masks)[0]
        MetaVSRJBIG2Decode().run(stream, original=masks[:, :10])
