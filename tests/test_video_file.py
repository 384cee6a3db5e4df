"""Video files streamed through a receiver (models/video_file.py and the Stream Video File node).

Clips are made here with PyAV (32x24, 10-24 frames, with and without audio); the receivers are the
embedded one (one-shot, CPU) and a toy causal x4 streaming receiver whose frames are known in closed
form. Outputs are checked with independent decoders: OpenCV for frame count, size and fps, PyAV's
demuxer for the audio packets.
"""
import os
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import torch

from metavsr.models import video_file as vf
from metavsr.models.ops import windows
from metavsr.models.receivers.base import Configured, RunOptions, Streaming, run_segments, run_stream

W, H, FPS = 32, 24, 24


# --------------------------------------------------------------------------- fixtures
def _pattern(n, h=H, w=W, seed=0):
    """n uint8 frames of a smooth moving pattern (cheap to code, not flat)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ph = np.random.default_rng(seed).random(3) * 6
    out = []
    for i in range(n):
        chans = [0.5 + 0.45 * np.sin(x / (4 + c) + y / (6 + c) + 0.3 * i + ph[c]) for c in range(3)]
        out.append((np.stack(chans, -1) * 255).astype(np.uint8))
    return out


def make_clip(path, n=16, audio=None, fps=FPS, h=H, w=W, rate=48000):
    """A clip with libx264 video and optionally an audio track (an encoder name: aac, pcm_s16le...)."""
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    v.options = {"preset": "ultrafast", "crf": "10"}
    a = c.add_stream(audio, rate=rate, layout="stereo") if audio else None
    for i, f in enumerate(_pattern(n, h, w)):
        frame = av.VideoFrame.from_ndarray(f, format="rgb24")
        frame.pts = i
        for p in v.encode(frame):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    if a is not None:
        fmt = a.codec_context.format.name
        size = a.codec_context.frame_size or 1024
        total, t = int(rate * n / fps), 0
        rng = np.random.default_rng(1)
        while t < total:
            k = min(size, total - t)
            planar = fmt.endswith("p")
            shape = (2, k) if planar else (1, 2 * k)
            if "flt" in fmt:
                arr = (0.2 * rng.standard_normal(shape)).astype(np.float32)
            else:
                arr = (3000 * rng.standard_normal(shape)).astype(np.int16)
            af = av.AudioFrame.from_ndarray(arr, format=fmt, layout="stereo")
            af.sample_rate, af.pts = rate, t
            for p in a.encode(af):
                c.mux(p)
            t += k
        for p in a.encode(None):
            c.mux(p)
    c.close()
    return str(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {"plain": make_clip(d / "plain.mp4", 10),
            "aac": make_clip(d / "aac.mp4", 24, audio="aac"),
            "pcm": make_clip(d / "pcm.mkv", 12, audio="pcm_s16le")}


class ToyStream4(Streaming):
    """Causal x4: hr_t = repeat4(mean(lr_0..lr_t)) + 0.01 * seeded noise drawn in frame order."""
    name, scale, metadata_kinds = "toy stream x4", 4, ()
    fail_at = None

    def start(self, options):
        return {"t": 0, "sum": None, "rng": torch.Generator().manual_seed(options.seed).get_state()}

    def push(self, state, lr_t, metadata_t):
        if self.fail_at is not None and state["t"] == self.fail_at:
            raise RuntimeError("receiver failed on purpose")
        g = torch.Generator()
        g.set_state(state["rng"])
        total = lr_t.clone() if state["sum"] is None else state["sum"] + lr_t
        hr = (total / (state["t"] + 1)).repeat_interleave(4, 0).repeat_interleave(4, 1)
        hr = hr + 0.01 * torch.randn(hr.shape, generator=g)
        return hr.clamp(0, 1), {"t": state["t"] + 1, "sum": total, "rng": g.get_state()}


@pytest.fixture(scope="module")
def embedded():
    from metavsr.models.receivers.tiny.receiver import load_embedded
    return load_embedded()


def _collect():
    frames = []
    return frames, lambda i, f: frames.append(f.clone())


def _cv2(path):
    cap = cv2.VideoCapture(path)
    assert cap.isOpened(), path
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        n += 1
        shape = img.shape
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n, shape, fps


def _audio_packets(path):
    with av.open(path) as c:
        if not c.streams.audio:
            return None
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def _decode(path):
    return np.stack([f.to_ndarray(format="rgb24") for f in av.open(path).decode(video=0)])


# --------------------------------------------------------------------------- probe / read
def test_probe_and_read(clips):
    info = vf.probe(clips["aac"])
    assert (info["width"], info["height"], info["fps"], info["frames"]) == (W, H, Fraction(FPS), 24)
    assert info["has_audio"] and info["audio_codec"] == "aac" and info["video_codec"] == "h264"
    assert abs(info["duration"] - 1.0) < 0.05
    assert vf.probe(clips["plain"])["has_audio"] is False
    frames = list(vf.read_frames(clips["aac"]))
    assert len(frames) == 24
    assert frames[0].shape == (H, W, 3) and frames[0].dtype == torch.float32
    assert 0 <= float(min(f.min() for f in frames)) and float(max(f.max() for f in frames)) <= 1
    part = list(vf.read_frames(clips["aac"], start=5, max_frames=3))
    assert len(part) == 3 and all(torch.equal(a, b) for a, b in zip(part, frames[5:8]))
    ref = _pattern(24)
    err = [[np.abs(f.numpy() * 255 - r).mean() for r in ref] for f in frames]
    assert [int(np.argmin(e)) for e in err] == list(range(24))  # the right frames, in order
    assert max(e[i] for i, e in enumerate(err)) < 12  # (4:2:0 blurs this pattern's colours a little)


def test_probe_refuses_what_is_not_a_video(tmp_path, clips):
    with pytest.raises(vf.VideoFileError, match="no such file"):
        vf.probe(tmp_path / "missing.mp4")
    with pytest.raises(vf.VideoFileError, match="folder"):
        vf.probe(tmp_path)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(vf.VideoFileError, match="empty"):
        vf.probe(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(vf.VideoFileError, match="not a readable video") as e:
        vf.probe(text)
    assert str(text) in str(e.value)
    broken = tmp_path / "broken.mp4"
    data = open(clips["aac"], "rb").read()
    broken.write_bytes(data[: len(data) // 3])  # the index (moov) is at the end: gone
    with pytest.raises(vf.VideoFileError):
        vf.probe(broken)
    audio_only = tmp_path / "audio.m4a"
    c = av.open(str(audio_only), "w")
    a = c.add_stream("aac", rate=48000, layout="stereo")
    frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
    frame.sample_rate, frame.pts = 48000, 0
    for p in list(a.encode(frame)) + list(a.encode(None)):
        c.mux(p)
    c.close()
    with pytest.raises(vf.VideoFileError, match="no video stream"):
        vf.probe(audio_only)


# --------------------------------------------------------------------------- streaming receivers
def test_streaming_receiver_file_output_and_audio_copy(tmp_path, clips):
    rx = ToyStream4()
    frames, sink = _collect()
    calls = []
    info = vf.upscale_file(Configured(rx, RunOptions(seed=3)), clips["aac"], tmp_path / "up.mp4", chunk=5,
                           on_frame=sink, progress=lambda d, t, p=None: calls.append((d, t, p)))
    assert info["frames"] == 24 and info["mode"] == "streaming" and info["state"]["t"] == 24
    assert info["peak_rss_mb"] is None or info["peak_rss_mb"] > 0
    # the frames are the closed form of one uninterrupted run over the decoded frames
    whole, _ = run_stream(rx, torch.stack(list(vf.read_frames(clips["aac"]))), options=RunOptions(seed=3))
    assert torch.equal(torch.stack(frames), whole)
    # an independent decoder sees the frame count, x4 size and fps
    n, shape, fps = _cv2(info["path"])
    assert (n, shape[:2], round(fps, 3)) == (24, (4 * H, 4 * W), FPS)
    # audio packets came through byte for byte
    src, out = _audio_packets(clips["aac"]), _audio_packets(info["path"])
    assert src and out == src and info["output"]["audio"].startswith("copied")
    # one progress call per output frame with that frame as the preview (total from the container)
    per_frame = [c for c in calls if c[2] is not None]
    assert [c[0] for c in per_frame] == list(range(1, 25)) and all(c[1] == 24 for c in per_frame)
    assert torch.equal(per_frame[-1][2], frames[-1])
    assert os.listdir(tmp_path) == ["up.mp4"]


def test_streaming_cut_into_two_calls_equals_one(tmp_path, clips):
    rx = Configured(ToyStream4(), RunOptions(seed=7))
    one, sink = _collect()
    vf.upscale_file(rx, clips["aac"], tmp_path / "one.mp4", chunk=4, on_frame=sink, audio=False)
    a, sink_a = _collect()
    first = vf.upscale_file(rx, clips["aac"], tmp_path / "a.mp4", chunk=4, max_frames=10, on_frame=sink_a)
    b, sink_b = _collect()
    second = vf.upscale_file(rx, clips["aac"], tmp_path / "b.mp4", chunk=3, start=10, state=first["state"],
                             on_frame=sink_b)
    assert len(a) == 10 and len(b) == 14 and second["state"]["t"] == 24
    assert torch.equal(torch.stack(a + b), torch.stack(one))  # bit-identical before encoding
    assert first["state"]["t"] == 10  # the state handed in was not changed
    # each part carries its own stretch of the audio (cut at its end / shifted to its start)
    pa, pb = _audio_packets(first["path"]), _audio_packets(second["path"])
    src = _audio_packets(clips["aac"])
    assert pa == src[:len(pa)] and pb == src[len(src) - len(pb):]
    assert abs(len(pa) + len(pb) - len(src)) <= 2


# --------------------------------------------------------------------------- one-shot receivers
def test_one_shot_in_chunks_matches_the_whole_clip(tmp_path, clips, embedded):
    lr = torch.stack(list(vf.read_frames(clips["plain"])))
    whole = embedded.upscale(lr)
    got, sink = _collect()
    info = vf.upscale_file(embedded, clips["plain"], tmp_path / "up.mp4", chunk=4, overlap=1, crf=12,
                           on_frame=sink, preset="ultrafast")
    assert info["mode"] == "segments" and info["state"] is None and len(got) == 10
    assert (torch.stack(got) - whole).abs().max() < 1e-5
    n, shape, fps = _cv2(info["path"])
    assert (n, shape[:2], round(fps, 3)) == (10, (4 * H, 4 * W), FPS)
    # the decoded file against the in-memory result coded with the same settings
    with vf.VideoWriter(tmp_path / "ref.mp4", FPS, "h264", crf=12, preset="ultrafast") as w:
        for f in whole:
            w.write(f)
    diff = np.abs(_decode(info["path"]).astype(int) - _decode(str(tmp_path / "ref.mp4")).astype(int))
    assert diff.mean() < 0.05 and diff.max() <= 8


class WindowToy:
    """One-shot x1 receiver whose output depends on the window it sees (frame + window mean), so the
    cross-fade is visible; records the window lengths."""
    name, scale, metadata_kinds = "window toy", 1, ()

    def __init__(self):
        self.sizes = []

    def upscale(self, lr, metadata=None, options=RunOptions(), progress=None):
        self.sizes.append(lr.shape[0])
        return lr * 0.5 + lr.mean(0, keepdim=True) * 0.5


@pytest.mark.parametrize("t,segment,overlap", [(18, 6, 2), (10, 4, 1), (28, 8, 3)])
def test_stream_segments_is_run_segments_where_the_windows_agree(t, segment, overlap):
    """Where windows.starts spaces windows exactly ``segment - overlap`` apart, the streamed
    cross-fade is run_segments' result."""
    lr = torch.rand(t, 3, 4, 3, generator=torch.Generator().manual_seed(t))
    assert windows.starts(t, segment, overlap) == list(range(0, t - segment + 1, segment - overlap))
    toy = WindowToy()
    ref = run_segments(lambda x, m, p: toy.upscale(x), lr, {}, 1, segment, overlap)
    got = torch.stack(list(vf.stream_segments(lambda x, m: toy.upscale(x), iter(lr), segment, overlap)))
    assert torch.allclose(got, ref, atol=1e-6)


@pytest.mark.parametrize("t,segment,overlap", [(1, 4, 1), (4, 4, 1), (5, 4, 1), (11, 4, 0), (9, 1, 0),
                                               (20, 6, 5), (13, 5, 2)])
def test_stream_segments_bounds_memory_and_covers_every_frame(t, segment, overlap):
    lr = torch.rand(t, 2, 2, 3, generator=torch.Generator().manual_seed(1))
    read = []

    def source():
        for i in range(t):
            read.append(i)
            yield lr[i]
    toy = WindowToy()
    out = []
    for i, y in enumerate(vf.stream_segments(lambda x, m: toy.upscale(x), source(), segment, overlap)):
        assert len(read) <= i + 1 + 2 * segment - overlap  # never more than two windows ahead
        out.append(y)
    assert len(out) == t
    assert all(s == min(segment, t) for s in toy.sizes)  # every window is whole
    # a frame-independent receiver comes out exactly as a whole-clip pass
    ind = torch.stack(list(vf.stream_segments(lambda x, m: x * 2 - 1, iter(lr), segment, overlap)))
    assert torch.allclose(ind, lr * 2 - 1, atol=1e-6)


# --------------------------------------------------------------------------- audio, codecs
def test_audio_the_container_cannot_hold_is_reencoded(tmp_path, clips):
    info = vf.upscale_file(ToyStream4(), clips["pcm"], tmp_path / "up.mp4", chunk=6)
    assert info["input"]["audio_codec"] == "pcm_s16le" and info["input"]["frames"] is None  # mkv: no count
    assert "AAC" in info["output"]["audio"] and any("pcm_s16le" in n for n in info["notes"])
    with av.open(info["path"]) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac" and a.sample_rate == 48000 and a.channels == 2
        assert abs(float(a.duration * a.time_base) - 0.5) < 0.05
    assert _cv2(info["path"])[0] == 12
    # keep_audio off, or no audio in the source: no audio stream
    assert _audio_packets(vf.upscale_file(ToyStream4(), clips["pcm"], tmp_path / "na.mp4", audio=False)["path"]) \
        is None
    assert _audio_packets(vf.upscale_file(ToyStream4(), clips["plain"], tmp_path / "nb.mp4")["path"]) is None


@pytest.mark.parametrize("codec", ["h265", "av1"])
def test_other_codecs(tmp_path, clips, codec):
    info = vf.upscale_file(ToyStream4(), clips["aac"], tmp_path / f"up_{codec}.mp4", codec=codec, crf=30,
                           max_frames=8, preset="ultrafast")
    want = {"h265": "hevc", "av1": ("libdav1d", "av1")}[codec]
    with av.open(info["path"]) as c:
        assert c.streams.video[0].codec_context.name in want
        assert sum(1 for _ in c.decode(video=0)) == 8
        assert c.streams.audio  # audio cut to the video's length
    if codec == "h265":  # OpenCV's FFmpeg has no AV1 decoder; PyAV's (dav1d) checked the size
        assert _cv2(info["path"])[:2] == (8, (4 * H, 4 * W, 3))
    assert _decode(info["path"]).shape == (8, 4 * H, 4 * W, 3)


def test_av1_that_mp4_refuses_goes_into_matroska(tmp_path, monkeypatch, clips):
    setup = vf.VideoWriter._setup

    def refuse_mp4(self, fmt, ain, mode):
        if fmt == "mp4":
            raise ValueError("simulated: this FFmpeg's MP4 muxer has no AV1")
        return setup(self, fmt, ain, mode)
    monkeypatch.setattr(vf.VideoWriter, "_setup", refuse_mp4)
    info = vf.upscale_file(ToyStream4(), clips["aac"], tmp_path / "up.mp4", codec="av1", crf=40, max_frames=4,
                           preset="ultrafast")
    assert info["path"] == str(tmp_path / "up.mkv") and os.listdir(tmp_path) == ["up.mkv"]
    assert any("Matroska" in n for n in info["notes"]) and info["output"]["container"] == "matroska"
    assert _decode(info["path"]).shape[0] == 4 and _audio_packets(info["path"])


def test_writer_pads_sizes_encoders_mishandle(tmp_path):
    frames = np.random.default_rng(0).random((3, 21, 41, 3)).astype(np.float32)
    with vf.VideoWriter(tmp_path / "odd.mp4", 10, "h265", crf=30, preset="ultrafast") as w:
        for f in frames:
            w.write(f)
    assert w.info["padded_to"] == (22, 56) and w.info["notes"]
    assert _decode(w.info["path"]).shape == (3, 22, 56, 3)


# --------------------------------------------------------------------------- errors and atomicity
def test_bad_inputs_raise_clear_errors(tmp_path, clips):
    rx = ToyStream4()
    with pytest.raises(vf.VideoFileError, match="no such file") as e:
        vf.upscale_file(rx, tmp_path / "nope.mp4", tmp_path / "o.mp4")
    assert e.value.where == "input"
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(vf.VideoFileError, match="not a readable video"):
        vf.upscale_file(rx, bad, tmp_path / "o.mp4")
    with pytest.raises(vf.VideoFileError, match="codec") as e:
        vf.upscale_file(rx, clips["plain"], tmp_path / "o.mp4", codec="vp9")
    assert e.value.where == "codec"
    with pytest.raises(vf.VideoFileError, match="crf") as e:
        vf.upscale_file(rx, clips["plain"], tmp_path / "o.mp4", codec="av1", crf=0)
    assert e.value.where == "crf"
    with pytest.raises(vf.VideoFileError, match="container"):
        vf.upscale_file(rx, clips["plain"], tmp_path / "o.avi")
    with pytest.raises(vf.VideoFileError, match="overlap"):
        vf.upscale_file(WindowToy(), clips["plain"], tmp_path / "o.mp4", chunk=4, overlap=4)
    with pytest.raises(ValueError, match="state"):
        vf.upscale_file(WindowToy(), clips["plain"], tmp_path / "o.mp4", state={"t": 1})
    with pytest.raises(ValueError, match="sr_model"):
        vf.upscale_file("not a model", clips["plain"], tmp_path / "o.mp4")
    assert sorted(os.listdir(tmp_path)) == ["bad.mp4"]


def test_failure_midway_leaves_no_output_file(tmp_path, clips):
    target = tmp_path / "up.mp4"
    target.write_bytes(b"the previous result")
    rx = ToyStream4()
    rx.fail_at = 13
    with pytest.raises(RuntimeError, match="on purpose"):
        vf.upscale_file(rx, clips["aac"], target, chunk=4)
    assert target.read_bytes() == b"the previous result" and os.listdir(tmp_path) == ["up.mp4"]

    class Cancel(Exception):
        pass

    def cancel(done, total, preview=None):
        if done == 6:
            raise Cancel()
    with pytest.raises(Cancel):  # a cancel from the progress callback (ComfyUI's interrupt)
        vf.upscale_file(ToyStream4(), clips["aac"], tmp_path / "new.mp4", progress=cancel)
    assert os.listdir(tmp_path) == ["up.mp4"]


# --------------------------------------------------------------------------- the node
def test_stream_video_file_node(tmp_path, monkeypatch, clips):
    from metavsr.nodes import receiver as nodes
    from metavsr.nodes._check import MetaVSRInputError
    inp, outd = tmp_path / "input", tmp_path / "output"
    inp.mkdir()
    os.link(clips["aac"], inp / "clip.mp4")
    monkeypatch.setenv("METAVSR_INPUT_DIR", str(inp))
    monkeypatch.setenv("METAVSR_OUTPUT_DIR", str(outd))
    node = nodes.MetaVSRStreamVideoFile()
    spec = node.INPUT_TYPES()["required"]
    assert all(opts.get("tooltip") for _, opts in spec.values()) and all(node.OUTPUT_TOOLTIPS)
    res = node.run(Configured(ToyStream4()), "clip.mp4", "sub/up", "h264", 20, 5, 1, 0, True)
    path, text, image = res["result"]
    assert path == str(outd / "sub" / "up.mp4") and os.path.exists(path)
    assert "24 frames 32x24 -> 128x96" in text and "s/frame" in text and "peak RSS" in text
    assert image.shape == (1, 4 * H, 4 * W, 3) and _cv2(path)[0] == 24
    assert node.IS_CHANGED(video_path="clip.mp4")
    for args, name in ((("missing.mp4", "x.mp4", "h264", 18), "video_path"),
                       (("clip.mp4", "../x.mp4", "h264", 18), "output_name"),
                       (("clip.mp4", "/abs/x.mp4", "h264", 18), "output_name"),
                       (("clip.mp4", "x.avi", "h264", 18), "output_name"),
                       (("clip.mp4", "x.mp4", "vp9", 18), "codec"),
                       (("clip.mp4", "x.mp4", "h264", 60), "crf")):
        with pytest.raises(MetaVSRInputError) as e:
            node.run(Configured(ToyStream4()), *args, 4, 1, 0, True)
        assert str(e.value).startswith(name + ":"), str(e.value)
    with pytest.raises(MetaVSRInputError, match="^overlap:"):
        node.run(Configured(WindowToy()), "clip.mp4", "x.mp4", "h264", 18, 4, 4, 0, True)
    assert sorted(os.listdir(outd)) == ["sub"]


# --------------------------------------------------------------------------- MetaVSR Load Video Frames
@pytest.fixture
def input_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("METAVSR_INPUT_DIR", str(tmp_path))
    (tmp_path / "sub").mkdir()
    make_clip(tmp_path / "clip.mp4", 12)
    make_clip(tmp_path / "sub" / "other.mkv", 3)
    (tmp_path / "notes.txt").write_text("not a video")
    return tmp_path


def _cv2_frames(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            return np.stack(out)
        out.append(f[..., ::-1].astype(np.float32) / 255)


def test_load_video_frames_returns_the_asked_range(input_dir):
    from metavsr.nodes.video import MetaVSRLoadVideoFrames
    names = MetaVSRLoadVideoFrames.INPUT_TYPES()["required"]["video"][0]
    assert names == ["clip.mp4", "sub/other.mkv"]
    ref = _cv2_frames(input_dir / "clip.mp4")              # OpenCV's own FFmpeg build and colour conversion
    assert ref.shape == (12, H, W, 3)
    images, fps, n, info = MetaVSRLoadVideoFrames().run("clip.mp4", start_frame=2, frame_count=4, every_nth=3)
    assert images.shape == (4, H, W, 3) and images.dtype == torch.float32 and n == 4
    assert fps == pytest.approx(FPS / 3) and "returned 4 frames from 2, every 3" in info
    for got, want in zip(images.numpy(), (2, 5, 8, 11)):
        dist = np.abs(ref - got).mean(axis=(1, 2, 3))
        assert int(dist.argmin()) == want and np.abs(ref[want] - got).max() <= 4 / 255
    everything, _, n_all, _ = MetaVSRLoadVideoFrames().run("clip.mp4", start_frame=9, frame_count=0)
    assert n_all == 3 and np.abs(everything.numpy() - ref[9:]).max() <= 4 / 255
    sub, _, _, _ = MetaVSRLoadVideoFrames().run("sub/other.mkv", frame_count=0)
    assert sub.shape[0] == 3


def test_load_video_frames_errors_name_the_input(input_dir, monkeypatch):
    from metavsr.nodes import _check
    from metavsr.nodes.video import MetaVSRLoadVideoFrames
    node = MetaVSRLoadVideoFrames()
    with pytest.raises(_check.MetaVSRInputError, match="^start_frame: 40 is past the end"):
        node.run("clip.mp4", start_frame=40)
    with pytest.raises(_check.MetaVSRInputError, match="^video: 'gone.mp4' is not in ComfyUI's input folder"):
        node.run("gone.mp4")
    with pytest.raises(_check.MetaVSRInputError, match="^video: '../clip.mp4' is not inside"):
        node.run("../clip.mp4")
    assert MetaVSRLoadVideoFrames.VALIDATE_INPUTS("gone.mp4").startswith("video:")
    with pytest.raises(_check.MetaVSRInputError, match="^video: .*not a readable video"):
        node.run("notes.txt")
    # the memory guard refuses before decoding (a counted range) or as soon as a frame passes it (to the end)
    monkeypatch.setattr(_check, "MAX_OUTPUT_BYTES", 5 * H * W * 3 * 4)
    with pytest.raises(_check.MetaVSRInputError, match="^frame_count: .*MetaVSR Stream Video File"):
        node.run("clip.mp4", frame_count=6)
    with pytest.raises(_check.MetaVSRInputError, match="^frame_count: the frame batch would be 12x24x32x3"):
        node.run("clip.mp4", frame_count=0)
    real = vf.probe
    monkeypatch.setattr(vf, "probe", lambda p: {**real(p), "frames": None, "frames_estimate": None})
    with pytest.raises(_check.MetaVSRInputError, match="^frame_count: the frame batch would be 6x24x32x3"):
        node.run("clip.mp4", frame_count=0)
    assert node.run("clip.mp4", frame_count=5)[2] == 5
