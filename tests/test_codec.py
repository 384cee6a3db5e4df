"""Base-layer codecs decoded by an independent decoder (OpenCV's libjpeg / FFmpeg build)."""
import cv2
import numpy as np
import pytest
import skimage.data

from metavsr.models.codec import jpeg, video
from metavsr.models.codec.bitstream import Bitstream, rate_table


def clip(t=4, h=72, w=90):
    img = cv2.resize(skimage.data.chelsea(), (w + 2 * t, h), interpolation=cv2.INTER_AREA)
    return np.stack([img[:, 2 * i:2 * i + w] for i in range(t)]).astype(np.float32) / 255.0


def test_jpeg_bytes_decode_with_opencv():
    x = clip(2)
    s = jpeg.jpeg_encode(x, 50)
    ours = jpeg.jpeg_decode(s)
    for i, data in enumerate(s.payload):
        assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
        ref = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        # two libjpeg builds: IDCT/upsampling may differ by a level or two, never more
        diff = np.abs(ours[i] * 255 - ref.astype(np.float32))
        assert diff.max() <= 3 and diff.mean() < 0.6
    assert s.nbits == 8 * sum(len(p) for p in s.payload)


def test_jpeg_quality_orders_size_and_error():
    x = clip(1)
    sizes, errs = [], []
    for q in (10, 50, 95):
        s = jpeg.jpeg_encode(x, q)
        sizes.append(s.nbytes)
        errs.append(float(np.mean((jpeg.jpeg_decode(s) - x) ** 2)))
    assert sizes == sorted(sizes) and errs == sorted(errs, reverse=True)
    with pytest.raises(ValueError):
        jpeg.jpeg_encode(x, 0)


def test_jpeg_corrupt_stream_raises():
    s = jpeg.jpeg_encode(clip(1), 50)
    with pytest.raises(ValueError, match="corrupt"):
        jpeg.jpeg_decode(Bitstream("jpeg", (b"\xff\xd8garbage",), s.shape))


@pytest.mark.parametrize("codec,rc,value", [("h264", "crf", 28), ("h264", "qp", 24), ("hevc", "crf", 28),
                                            ("av1", "crf", 40), ("av1", "qp", 40)])
def test_video_stream_decodes_with_opencv(tmp_path, codec, rc, value):
    x = clip(5, 71, 90)  # odd height: padded for 4:2:0 and cropped back
    s = video.video_encode(x, codec, rc, value, fps=25, preset="veryfast")
    ours = video.video_decode(s)
    assert ours.shape == x.shape
    psnr = 10 * np.log10(1 / np.mean((ours - x) ** 2))
    assert psnr > 28
    ext = {"h264": ".h264", "hevc": ".hevc", "av1": ".ivf"}[codec]
    path = str(tmp_path / ("clip" + ext))
    with open(path, "wb") as f:
        f.write(s.payload[0])
    cap = cv2.VideoCapture(path)
    ref = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        ref.append(cv2.cvtColor(fr, cv2.COLOR_BGR2RGB)[:71, :90])
    if codec == "av1" and not ref:
        # OpenCV's wheel has no AV1 decoder: let FFmpeg probe the file on its own (IVF demuxer +
        # its AV1 decoder), which checks the container as well as the stream
        import av
        with av.open(path) as inp:
            assert inp.format.name == "ivf"
            ref = [f.to_ndarray(format="rgb24")[:71, :90] for f in inp.decode(video=0)]
    assert len(ref) == 5
    diff = np.abs(np.stack(ref).astype(np.float32) - ours * 255)
    assert diff.mean() < 1.5  # same bitstream, independent decoder; YUV->RGB rounding only
    assert video.kbps(s) == pytest.approx(s.nbits * 25 / 5 / 1000)


def test_h264_is_annexb_and_qp_orders_size():
    x = clip(3)
    a = video.video_encode(x, "h264", "qp", 20, preset="veryfast")
    b = video.video_encode(x, "h264", "qp", 40, preset="veryfast")
    assert a.payload[0][:4] == b"\x00\x00\x00\x01" and a.nbytes > b.nbytes


def test_video_rejects_bad_parameters_and_streams():
    x = clip(2)
    with pytest.raises(ValueError):
        video.video_encode(x, "h264", "crf", 60)
    with pytest.raises(ValueError):
        video.video_encode(x, "vp9")
    with pytest.raises(ValueError):
        video.video_encode(x, fps=0)
    s = video.video_encode(x, "h264", preset="veryfast")
    with pytest.raises(ValueError):
        video.video_decode(Bitstream("h264", (s.payload[0][: len(s.payload[0]) // 3],), s.shape))


def test_rate_table_formulas():
    a = Bitstream("jpeg", (b"x" * 1000, b"y" * 500), (2, 64, 64, 3), fps=25)
    b = Bitstream("jbig2", (b"z" * 100, b"z" * 100), (2, 256, 256, 1), fps=25)
    rows = rate_table([a, b], hr_size=(256, 256))
    assert rows[0]["bits"] == 12000 and rows[0]["bpp"] == pytest.approx(12000 / (256 * 256 * 2))
    assert rows[0]["kbps"] == pytest.approx(12000 / (2 / 25) / 1000)
    assert rows[-1]["bits"] == 13600 and rows[-1]["bpp"] == pytest.approx(13600 / (256 * 256 * 2))
    assert rate_table([a, b])[0]["bpp"] == rows[0]["bpp"]  # HR size defaults to the largest stream
    with pytest.raises(ValueError):
        Bitstream("jpeg", (), (1, 1, 1, 3))
    with pytest.raises(ValueError):
        Bitstream("jpeg", (b"x",), (1, 1, 1, 3), fps=0)
