"""Base-layer codecs (JPEG, H.264/H.265/AV1), generic bitstream decoding, and rate accounting."""
from ..models.codec import bitdepth, jpeg, video
from ..models.codec.bitstream import BITSTREAM_TYPE, Bitstream, rate_table
from ..models.metadata.edges import CODECS as _EDGE_CODECS
from . import _check
from ._comfy import Progress
from ._convert import to_image, to_numpy
from ._declare import FPS, node

CATEGORY = "MetaVSR/codec"
MAX_BITRATE_INPUTS = 6


@node(CATEGORY,
      ("IMAGE", "decoded", "Decoded JPEG frames: what the receiver gets."),
      (BITSTREAM_TYPE, "bitstream", "The exact JPEG bytes, one file per frame; feed MetaVSR Bitrate."))
class MetaVSRJPEG:
    """JPEG base layer: encodes each frame as a baseline JPEG (libjpeg) and returns the decoded frames
    plus the exact bytes, whose size the Bitrate node counts."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Frames to encode (RGB)."}),
            "quality": ("INT", {"default": 40, "min": 1, "max": 100, "tooltip": "libjpeg quality 1..100."}),
            "subsampling": (list(jpeg.SUBSAMPLING), {"default": "4:2:0", "tooltip": "Chroma subsampling."}),
        }}

    def run(self, images, quality, subsampling="4:2:0"):
        frames = _check.image("images", images)
        q = _check.number("quality", quality, 1, 100, integer=True)
        if subsampling not in jpeg.SUBSAMPLING:
            raise _check.MetaVSRInputError(f"subsampling: {subsampling!r} is not one of {list(jpeg.SUBSAMPLING)}.")
        stream = jpeg.jpeg_encode(to_numpy(frames), q, subsampling)
        return (to_image(jpeg.jpeg_decode(stream)), stream)


@node(CATEGORY,
      ("IMAGE", "decoded", "Decoded frames: what the receiver gets."),
      (BITSTREAM_TYPE, "bitstream", "The exact elementary stream (Annex-B / IVF); feed MetaVSR Bitrate."),
      ("FLOAT", "kbps", "Bitrate of the stream in kbit/s at the given fps."))
class MetaVSRVideoEncode:
    """Video base layer through FFmpeg (PyAV): H.264 (x264), H.265 (x265) or AV1 (SVT-AV1) at a constant
    rate factor or constant QP. Returns the decoded frames, the exact elementary bitstream, and its kbps
    at the given fps. Odd sizes are padded for 4:2:0 and cropped back."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Frames of the clip, in order."}),
            "codec": (list(video.CODECS), {"default": "h264", "tooltip": "h264 = x264, hevc = x265, av1 = SVT-AV1."}),
            "rate_control": (["crf", "qp"], {"default": "crf", "tooltip": "Constant rate factor or constant QP."}),
            "value": ("INT", {"default": 28, "min": 0, "max": 63, "tooltip":
                      "CRF/QP: 0..51 for h264/hevc, 1..63 for av1 (SVT-AV1 reads 0 as 'unset'); higher = "
                      "fewer bits."}),
            "fps": FPS,
            "preset": (list(video.PRESETS), {"default": "medium", "tooltip":
                       "Speed/efficiency preset (x264/x265 names; mapped to SVT-AV1 preset numbers)."}),
        }}

    def run(self, images, codec, rate_control, value, fps, preset):
        frames = _check.image("images", images, min_size=2)
        if codec not in video.CODECS:
            raise _check.MetaVSRInputError(f"codec: {codec!r} is not one of {list(video.CODECS)}.")
        vmax = video.CODECS[codec][2]
        v = _check.number("value", value, video.MIN_VALUE[codec], vmax, integer=True)
        fps = _check.number("fps", fps, 0.01, 1000)
        if rate_control not in ("crf", "qp"):
            raise _check.MetaVSRInputError(f"rate_control: {rate_control!r} is not 'crf' or 'qp'.")
        if preset not in video.PRESETS:
            raise _check.MetaVSRInputError(f"preset: {preset!r} is not one of {video.PRESETS}.")
        t = frames.shape[0]
        progress = Progress(2 * t)  # encoding, then decoding what the receiver gets
        try:
            stream = video.video_encode(to_numpy(frames), codec, rate_control, v, fps, preset,
                                        progress=lambda done, total: progress(done, 2 * t))
            decoded = video.video_decode(stream, progress=lambda done, total: progress(t + done, 2 * t))
        except ValueError as e:  # a size the encoder cannot take, named by the codec module
            raise _check.MetaVSRInputError(f"images: {e}.") from None
        return (to_image(decoded), stream, video.kbps(stream))


def decode_image_stream(stream: Bitstream):
    """Decode any image-like bitstream (JPEG, video, bit-depth VQ) -> ``[T,H,W,C]`` float32."""
    if stream.codec == "jpeg":
        return jpeg.jpeg_decode(stream)
    if stream.codec in video.CODECS:
        return video.video_decode(stream)
    if stream.codec.startswith("vq"):
        return bitdepth.decode(stream)
    raise ValueError(f"no image decoder for codec {stream.codec!r}")


@node(CATEGORY,
      ("IMAGE", "images", "Decoded frames [T,H,W,3] float 0..1 (greyscale streams are expanded to RGB)."))
class MetaVSRDecodeBitstream:
    """Receiver side: decodes an image bitstream (JPEG, H.264/H.265/AV1, CaDM bit-depth) back to frames.
    Edge maps (JBIG2) decode with the JBIG2 Decode node."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"bitstream": (BITSTREAM_TYPE, {"tooltip": "Any MetaVSR image bitstream."})}}

    def run(self, bitstream):
        if not isinstance(bitstream, Bitstream):
            raise _check.MetaVSRInputError("bitstream: not a MetaVSR bitstream; connect a MetaVSR codec node.")
        if bitstream.codec in _EDGE_CODECS.values():
            raise _check.MetaVSRInputError("bitstream: this is a JBIG2 edge map; use the MetaVSR JBIG2 Decode node.")
        t, h, w, _ = bitstream.shape
        _check.output_size("bitstream", (t, h, w, 3), "decode fewer frames at a time", what="decoded frames")
        try:
            frames = decode_image_stream(bitstream)
        except ValueError as exc:
            raise _check.MetaVSRInputError(f"bitstream: {exc}") from None
        if frames.shape[-1] == 1:
            frames = frames.repeat(3, axis=-1)
        return (to_image(frames),)


def format_table(rows) -> str:
    """Rate rows from ``rate_table`` -> fixed-width text table."""
    head = f"{'stream':<8}{'frames':>7}{'bytes':>11}{'bits':>12}{'bpp':>10}{'kbps':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["codec"] == "total":
            lines.append("-" * len(head))
        lines.append(f"{r['codec']:<8}{r['frames']:>7}{r['bytes']:>11}{r['bits']:>12}{r['bpp']:>10.4f}{r['kbps']:>11.2f}")
    return "\n".join(lines)


@node(CATEGORY,
      ("STRING", "table", "Per-stream and total rate table (text)."),
      ("FLOAT", "total_bits", "Total bits of all streams."),
      ("FLOAT", "total_bpp", "Total bits per original HR pixel, all frames."),
      ("FLOAT", "total_kbps", "Total kbit/s at each stream's fps."))
class MetaVSRBitrate:
    """Counts the real transmitted bits of any number of bitstreams (base layer + metadata): bits,
    bytes, bpp per original HR pixel and kbps at each stream's fps, per stream and in total."""
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        opt = {f"bitstream_{i}": (BITSTREAM_TYPE, {"tooltip": "A stream to count (any MetaVSR codec node)."})
               for i in range(1, MAX_BITRATE_INPUTS + 1)}
        opt["reference"] = ("IMAGE", {"tooltip": "The original HR frames: bpp is per HR pixel. Without it, the "
                                                 "largest decoded stream size is taken as HR."})
        return {"required": {}, "optional": opt}

    def run(self, reference=None, **streams):
        given = [v for k, v in sorted(streams.items()) if v is not None]
        if not given:
            raise _check.MetaVSRInputError("bitstream_1: connect at least one bitstream (e.g. from MetaVSR JPEG).")
        for k, v in sorted(streams.items()):
            if v is not None and not isinstance(v, Bitstream):
                raise _check.MetaVSRInputError(f"{k}: not a MetaVSR bitstream; connect a MetaVSR codec node.")
        hr = None
        if reference is not None:
            ref = _check.image("reference", reference, channels=(1, 3, 4))
            hr = (int(ref.shape[1]), int(ref.shape[2]))
        rows = rate_table(given, hr)
        table = format_table(rows)
        total = rows[-1]
        return {"ui": {"text": [table]},
                "result": (table, float(total["bits"]), float(total["bpp"]), float(total["kbps"]))}


NODE_CLASS_MAPPINGS = {
    "MetaVSRJPEG": MetaVSRJPEG,
    "MetaVSRVideoEncode": MetaVSRVideoEncode,
    "MetaVSRDecodeBitstream": MetaVSRDecodeBitstream,
    "MetaVSRBitrate": MetaVSRBitrate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MetaVSRJPEG": "MetaVSR JPEG Base Layer",
    "MetaVSRVideoEncode": "MetaVSR Video Base Layer",
    "MetaVSRDecodeBitstream": "MetaVSR Decode Bitstream",
    "MetaVSRBitrate": "MetaVSR Bitrate",
}
