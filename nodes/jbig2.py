"""JBIG2 edge-metadata nodes: MASK batch -> lossless JBIG2 bitstream (one page per frame, or one
inter-frame clip) and back. The coding itself is the edge channel of ``models/metadata/edges.py``,
shared with the main job."""
import numpy as np

from ..models.codec.bitstream import BITSTREAM_TYPE, Bitstream
from ..models.metadata import edge_rate
from ..models.metadata import edges as edge_channel
from . import _check
from ._comfy import Progress
from ._convert import to_mask, to_numpy
from ._declare import FPS, node

CATEGORY = "MetaVSR/codec"
TEMPLATES = ["auto", "0", "1", "2", "3"]
RESOLUTIONS = {"full": 1, "1/2": 2, "1/4": 4}
CONTAINERS = list(edge_channel.CONTAINERS)
VIDEO = list(edge_channel.VIDEO_MODES)


@node(CATEGORY,
      (BITSTREAM_TYPE, "bitstream", "JBIG2 bitstream: one payload per frame, or one inter-frame clip."),
      ("INT", "bytes", "Total bytes, all frames."),
      ("FLOAT", "bpp", "Bits per HR pixel (all frames)."))
class MetaVSRJBIG2Encode:
    """Lossless JBIG2 (ITU-T T.88 generic region, MQ arithmetic coding) of bi-level edge maps: one
    standalone JBIG2 file (or PDF-embedded stream) per frame, or with video 'inter-frame' one clip whose
    frames are coded against the previous one (T.88 generic refinement regions, key frame every 30), so
    the edge bits are counted from real bytes. 'auto' keeps the smallest of all templates, TPGDON on/off
    and searched adaptive pixels. Rate control: thin edges to one-pixel lines, or code at 1/2 or 1/4
    resolution (the decoder upscales with nearest neighbour)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "edges": ("MASK", {"tooltip": "Bi-level edge maps [T,H,W], 1 = edge (e.g. from MetaVSR Canny Metadata)."}),
            "template": (TEMPLATES, {"default": "auto", "tooltip":
                         "Generic-region template (0 = 16-pixel context ... 3 = 10 pixels); auto tries all "
                         "four with TPGDON on/off and adaptive-pixel positions, keeping the smallest file."}),
            "tpgdon": ("BOOLEAN", {"default": False, "tooltip":
                       "Typical prediction: a row equal to the one above costs one decision (ignored by auto)."}),
            "thinning": ("BOOLEAN", {"default": False, "tooltip":
                         "Thin edges to one-pixel lines before coding (fewer bits, slightly different map)."}),
            "resolution": (list(RESOLUTIONS), {"default": "full", "tooltip":
                           "Code the map at full, 1/2 or 1/4 resolution; the receiver upscales with nearest neighbour."}),
            "reduce_method": (list(edge_rate.REDUCE_METHODS), {"default": "any", "tooltip":
                              "Reduced resolution: 'any' marks a block if any pixel is an edge (lines survive); "
                              "'nearest' keeps the block's top-left pixel."}),
            "container": (CONTAINERS, {"default": "file", "tooltip":
                          "'file': standalone .jb2 (T.88 Annex D); 'pdf embedded': the stream PDF's JBIG2Decode takes."}),
            "fps": FPS,
            # last, so that graphs saved before it load with the default
            "video": (VIDEO, {"default": "per-frame", "tooltip":
                      "'per-frame': every frame its own JBIG2 file. 'inter-frame': one clip, each frame coded "
                      "against the previous one (T.88 refinement, global motion compensated) or on its own, "
                      "whichever is smaller; a key frame every 30 frames; 0.55-0.66 of the per-frame bytes "
                      "on the sample clips. Needs container 'file'."}),
        }}

    def run(self, edges, template="auto", tpgdon=False, thinning=False, resolution="full",
            reduce_method="any", container="file", fps=30.0, video="per-frame"):
        maps = to_numpy(_check.mask("edges", edges, binary=True)).astype(np.uint8)
        if template not in TEMPLATES:
            raise _check.MetaVSRInputError(f"template: {template!r} is not one of {TEMPLATES}.")
        if resolution not in RESOLUTIONS:
            raise _check.MetaVSRInputError(f"resolution: {resolution!r} is not one of {list(RESOLUTIONS)}.")
        if reduce_method not in edge_rate.REDUCE_METHODS:
            raise _check.MetaVSRInputError(f"reduce_method: {reduce_method!r} is not one of "
                                           f"{list(edge_rate.REDUCE_METHODS)}.")
        if container not in CONTAINERS:
            raise _check.MetaVSRInputError(f"container: {container!r} is not one of {CONTAINERS}.")
        if video not in VIDEO:
            raise _check.MetaVSRInputError(f"video: {video!r} is not one of {VIDEO}.")
        if video == "inter-frame" and container != "file":
            raise _check.MetaVSRInputError("video: inter-frame coding writes its own clip container; set "
                                           "container to 'file'.")
        fps = _check.number("fps", fps, 0.01, 1000.0)
        t, h, w = maps.shape
        coding = edge_channel.EdgeCoding(
            thinning=bool(thinning), factor=RESOLUTIONS[resolution], reduce_method=reduce_method,
            template=None if template == "auto" else int(template), tpgdon=bool(tpgdon), container=container,
            video=video)
        try:
            stream = edge_channel.encode(maps, coding, fps, progress=Progress(t))
        except ValueError as e:
            raise _check.MetaVSRInputError(f"edges: {e}.") from None
        return (stream, stream.nbytes, stream.nbits / float(t * h * w))


@node(CATEGORY,
      ("MASK", "edges", "Decoded edge maps [T,H,W] at HR size, 1 = edge."),
      ("INT", "bytes", "Total bytes, all frames."),
      ("FLOAT", "bpp", "Bits per HR pixel (all frames)."),
      ("BOOLEAN", "round_trip", "True when every frame is bit-exact."),
      ("STRING", "report", "One-line summary for a text preview."))
class MetaVSRJBIG2Decode:
    """Decodes a MetaVSR JBIG2 bitstream (per-frame files or an inter-frame clip) back to edge maps at HR
    size (nearest-neighbour upscale when it was coded at 1/2 or 1/4), and reports bytes, bits per HR pixel
    and whether every frame decoded bit-exactly to the map the encoder coded."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "bitstream": (BITSTREAM_TYPE, {"tooltip": "A JBIG2 bitstream from MetaVSR JBIG2 Encode."}),
        }, "optional": {
            "original": ("MASK", {"tooltip": "Optional: the full-resolution edge map before coding, to report "
                                  "how many pixels reduced-resolution coding changed."}),
        }}

    def run(self, bitstream, original=None):
        if not isinstance(bitstream, Bitstream):
            raise _check.MetaVSRInputError("bitstream: expected a MetaVSR bitstream; connect MetaVSR JBIG2 Encode.")
        if bitstream.codec not in edge_channel.CODECS.values():
            raise _check.MetaVSRInputError(f"bitstream: this is a {bitstream.codec!r} stream, not JBIG2; use the "
                                           f"matching decoder (MetaVSR Decode Bitstream).")
        t, h, w, _ = bitstream.shape
        # the declared sizes bound every allocation: the maps are refused before anything is made
        _check.output_size("bitstream", (t, h, w), "decode fewer frames at a time", what="decoded edge maps")
        try:
            out, _, exact = edge_channel.decode(bitstream, progress=Progress(t))
        except edge_channel.EdgeStreamError as e:
            raise _check.MetaVSRInputError(f"bitstream: {e}.") from None
        factor = bitstream.params.get("resolution", 1)
        digests = bitstream.params.get("digests")
        bpp = bitstream.nbits / float(t * h * w)
        report = f"JBIG2: {t} frame(s) {w}x{h}, {bitstream.nbytes} bytes, {bpp:.4f} bpp"
        if bitstream.codec == edge_channel.CODECS["inter-frame"]:
            intra = sum(f.get("kind") == "intra" for f in bitstream.params.get("frames", []))
            report += f", inter-frame clip ({intra} intra)"
        if factor > 1:
            report += f", coded at 1/{factor}"
        report += ", round trip " + ("bit-exact" if exact else "NOT verified" if digests is None else "MISMATCH")
        if original is not None:
            ref = to_numpy(_check.mask("original", original, binary=True)).astype(np.uint8)
            if ref.shape[1:] != (h, w) or ref.shape[0] not in (1, t):
                raise _check.MetaVSRInputError(f"original: shape {tuple(ref.shape)} does not match the "
                                               f"decoded {t}x{h}x{w}; connect the map given to the encoder.")
            changed = float((np.broadcast_to(ref, out.shape) != out).mean())
            report += f", {100 * changed:.3f}% pixels differ from the original"
        return {"ui": {"text": (report,)},
                "result": (to_mask(out), bitstream.nbytes, bpp, bool(exact), report)}


NODE_CLASS_MAPPINGS = {"MetaVSRJBIG2Encode": MetaVSRJBIG2Encode, "MetaVSRJBIG2Decode": MetaVSRJBIG2Decode}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRJBIG2Encode": "MetaVSR JBIG2 Encode",
                              "MetaVSRJBIG2Decode": "MetaVSR JBIG2 Decode"}
