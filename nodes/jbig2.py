"""JBIG2 edge-metadata nodes: MASK batch -> lossless JBIG2 bitstream (one page per frame) and back."""
import hashlib

import numpy as np

from ..models.codec import jbig2
from ..models.codec.bitstream import BITSTREAM_TYPE, Bitstream
from ..models.metadata import edge_rate
from . import _check
from ._comfy import Progress
from ._convert import to_mask, to_numpy

CATEGORY = "MetaVSR/codec"
TEMPLATES = ["auto", "0", "1", "2", "3"]
RESOLUTIONS = {"full": 1, "1/2": 2, "1/4": 4}
CONTAINERS = {"file": False, "pdf embedded": True}


def _digest(bitmap: np.ndarray) -> str:
    """Fingerprint of a coded map, carried in the bitstream's params for the round-trip check."""
    bitmap = np.ascontiguousarray(bitmap, np.uint8)
    return hashlib.sha256(np.packbits(bitmap, axis=-1).tobytes() + repr(bitmap.shape).encode()).hexdigest()[:32]


class MetaVSRJBIG2Encode:
    DESCRIPTION = ("Lossless JBIG2 (ITU-T T.88 generic region, MQ arithmetic coding) of bi-level edge maps: "
                   "one standalone JBIG2 file (or PDF-embedded stream) per frame, so the edge bits are counted "
                   "from real bytes. 'auto' keeps the smallest of all templates, TPGDON on/off and searched "
                   "adaptive pixels. Rate control: thin edges to one-pixel lines, or code at 1/2 or 1/4 "
                   "resolution (the decoder upscales with nearest neighbour).")
    CATEGORY = CATEGORY
    RETURN_TYPES = (BITSTREAM_TYPE, "INT", "FLOAT")
    RETURN_NAMES = ("bitstream", "bytes", "bpp")
    OUTPUT_TOOLTIPS = ("JBIG2 bitstream, one payload per frame.", "Total bytes, all frames.",
                       "Bits per HR pixel (all frames).")
    FUNCTION = "run"

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
            "container": (list(CONTAINERS), {"default": "file", "tooltip":
                          "'file': standalone .jb2 (T.88 Annex D); 'pdf embedded': the stream PDF's JBIG2Decode takes."}),
            "fps": ("FLOAT", {"default": 30.0, "min": 0.01, "max": 1000.0, "step": 0.01, "tooltip":
                    "Frame rate, for kbps in rate tables."}),
        }}

    def run(self, edges, template="auto", tpgdon=False, thinning=False, resolution="full",
            reduce_method="any", container="file", fps=30.0):
        maps = to_numpy(_check.mask("edges", edges, binary=True)).astype(np.uint8)
        if template not in TEMPLATES:
            raise _check.MetaVSRInputError(f"template: {template!r} is not one of {TEMPLATES}.")
        if resolution not in RESOLUTIONS:
            raise _check.MetaVSRInputError(f"resolution: {resolution!r} is not one of {list(RESOLUTIONS)}.")
        if reduce_method not in edge_rate.REDUCE_METHODS:
            raise _check.MetaVSRInputError(f"reduce_method: {reduce_method!r} is not one of "
                                           f"{list(edge_rate.REDUCE_METHODS)}.")
        if container not in CONTAINERS:
            raise _check.MetaVSRInputError(f"container: {container!r} is not one of {list(CONTAINERS)}.")
        fps = _check.number("fps", fps, 0.01, 1000.0)
        t, h, w = maps.shape
        if h * w > jbig2.MAX_PIXELS:
            raise _check.MetaVSRInputError(f"edges: {w}x{h} is larger than JBIG2 coding here allows "
                                           f"({jbig2.MAX_PIXELS} pixels per frame); downscale it first.")
        factor = RESOLUTIONS[resolution]
        coded = edge_rate.prepare(maps, bool(thinning), factor, reduce_method)
        embedded = CONTAINERS[container]
        opts = dict(auto=True) if template == "auto" else dict(template=int(template), tpgdon=bool(tpgdon))
        progress = Progress(t)
        payload, chosen = [], []
        for frame in coded:
            blob = jbig2.encode(frame, embedded=embedded, **opts)
            info = jbig2.describe(blob, embedded=embedded)
            chosen.append(dict(template=info["template"], tpgdon=info["tpgdon"], at=info["at"]))
            payload.append(blob)
            progress.update(1)
        stream = Bitstream("jbig2", tuple(payload), (t, h, w, 1), fps, params=dict(
            container=container, resolution=factor, reduce_method=reduce_method, thinning=bool(thinning),
            coded_size=(int(coded.shape[1]), int(coded.shape[2])), frames=chosen,
            digests=[_digest(f) for f in coded]))
        return (stream, stream.nbytes, stream.nbits / float(t * h * w))


class MetaVSRJBIG2Decode:
    DESCRIPTION = ("Decodes a MetaVSR JBIG2 bitstream back to edge maps at HR size (nearest-neighbour upscale "
                   "when it was coded at 1/2 or 1/4), and reports bytes, bits per HR pixel and whether every "
                   "frame decoded bit-exactly to the map the encoder coded.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MASK", "INT", "FLOAT", "BOOLEAN", "STRING")
    RETURN_NAMES = ("edges", "bytes", "bpp", "round_trip", "report")
    OUTPUT_TOOLTIPS = ("Decoded edge maps [T,H,W] at HR size, 1 = edge.", "Total bytes, all frames.",
                       "Bits per HR pixel (all frames).", "True when every frame is bit-exact.",
                       "One-line summary for a text preview.")
    FUNCTION = "run"

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
        if bitstream.codec != "jbig2":
            raise _check.MetaVSRInputError(f"bitstream: this is a {bitstream.codec!r} stream, not JBIG2; use the "
                                           f"matching decoder (MetaVSR Decode Bitstream).")
        t, h, w, _ = bitstream.shape
        if len(bitstream.payload) != t:
            raise _check.MetaVSRInputError(f"bitstream: {len(bitstream.payload)} payloads for {t} frames; "
                                           f"JBIG2 streams carry one file per frame.")
        params = bitstream.params
        factor = params.get("resolution", 1)
        if factor not in edge_rate.FACTORS:
            raise _check.MetaVSRInputError(f"bitstream: unknown resolution factor {factor!r} (expected one of "
                                           f"{list(edge_rate.FACTORS)}); re-encode with MetaVSR JBIG2 Encode.")
        # the declared sizes bound every allocation: the maps are refused before anything is made,
        # and each frame's decoder may make no page larger than the declared coded size
        _check.output_size("bitstream", (t, h, w), "decode fewer frames at a time", what="decoded edge maps")
        coded_size = (-(-h // factor), -(-w // factor))
        if tuple(params.get("coded_size", coded_size)) != coded_size:
            raise _check.MetaVSRInputError(f"bitstream: declares coded size {params.get('coded_size')} but "
                                           f"{w}x{h} at 1/{factor} is {coded_size[1]}x{coded_size[0]}; the "
                                           f"stream is inconsistent (re-encode it).")
        if params.get("container", "file") not in CONTAINERS:
            raise _check.MetaVSRInputError(f"bitstream: unknown container {params.get('container')!r}.")
        embedded = CONTAINERS[params.get("container", "file")]
        digests = params.get("digests")
        progress = Progress(t)
        out = np.empty((t, h, w), np.uint8)
        exact = digests is not None and len(digests) == t
        for i, blob in enumerate(bitstream.payload):
            limits = jbig2.Limits.for_page(coded_size[1], coded_size[0], max_input=max(len(blob), 1))
            try:
                coded = jbig2.decode(blob, embedded=embedded, limits=limits)
            except jbig2.JBIG2Error as e:
                raise _check.MetaVSRInputError(f"bitstream: frame {i} is not a readable JBIG2 stream of the "
                                               f"declared {coded_size[1]}x{coded_size[0]} size ({e}).") from None
            if coded.shape != coded_size:
                raise _check.MetaVSRInputError(f"bitstream: frame {i} decodes to {coded.shape[1]}x{coded.shape[0]} "
                                               f"but the bitstream declares {coded_size[1]}x{coded_size[0]}.")
            out[i] = edge_rate.upscale(coded, factor, (h, w))
            if exact:
                exact = _digest(coded) == digests[i]
            progress.update(1)
        bpp = bitstream.nbits / float(t * h * w)
        report = f"JBIG2: {t} frame(s) {w}x{h}, {bitstream.nbytes} bytes, {bpp:.4f} bpp"
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
