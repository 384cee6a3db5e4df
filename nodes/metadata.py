"""Metadata extraction at the sender (computed on the HR frames, or given as a map)."""
import os

import numpy as np

from ..models.codec.bitstream import BITSTREAM_TYPE, Bitstream
from ..models.metadata import canny
from ..models.metadata import depth as depth_codec
from . import _check
from ._comfy import Progress
from ._convert import to_image, to_mask, to_numpy
from ._declare import FPS, node


@node("MetaVSR/metadata",
      ("MASK", "edges", "Bi-level edge map [T,H,W], 1 = edge."),
      ("FLOAT", "density", "Fraction of edge pixels over all frames."))
class MetaVSRCannyMetadata:
    """Canny edge metadata (OpenCV) on the HR frames, by thresholds or by a target edge density (the
    thresholds are searched, high = threshold, low = 0.4·high). Optional dilation. Outputs a MASK (1 =
    edge) for JBIG2 and the edge density."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "HR frames (the sender sees the original)."}),
            "mode": (["thresholds", "target density"], {"default": "thresholds", "tooltip":
                     "Use the thresholds below, or search thresholds to hit target_density."}),
            "low": ("INT", {"default": 100, "min": 0, "max": 1000, "tooltip": "Canny low (hysteresis) threshold."}),
            "high": ("INT", {"default": 200, "min": 0, "max": 1000, "tooltip": "Canny high threshold."}),
            "target_density": ("FLOAT", {"default": 0.05, "min": 0.0, "max": 0.5, "step": 0.005, "tooltip":
                               "target density mode: wanted fraction of edge pixels."}),
            "dilation": ("INT", {"default": 0, "min": 0, "max": 10, "tooltip":
                         "Grow edges by this many pixels (costs bits, survives downscaled coding)."}),
        }}

    def run(self, images, mode, low, high, target_density, dilation):
        frames = to_numpy(_check.image("images", images, channels=(1, 3), min_size=3))
        dil = _check.number("dilation", dilation, 0, 10, integer=True)
        if mode == "thresholds":
            lo = _check.number("low", low, 0, 1000)
            hi = _check.number("high", high, 0, 1000)
            if lo > hi:
                raise _check.MetaVSRInputError(f"low: {lo} is above high ({hi}); set low <= high.")
            edges = canny.canny_edges(frames, lo, hi, dil)
        elif mode == "target density":
            d = _check.number("target_density", target_density, 0.0, 0.5)
            edges = canny.canny_for_density(frames, d, dilate=dil)[0]
        else:
            raise _check.MetaVSRInputError(f"mode: {mode!r} is not 'thresholds' or 'target density'.")
        return (to_mask(edges), float(edges.mean()))


NODE_CLASS_MAPPINGS = {"MetaVSRCannyMetadata": MetaVSRCannyMetadata}
NODE_DISPLAY_NAME_MAPPINGS = {"MetaVSRCannyMetadata": "MetaVSR Canny Metadata"}


def _depth_image(maps):
    """[T,H,W] float 0..1 -> IMAGE [T,H,W,3] grey (the Super-Resolve node's depth input)."""
    return to_image(np.repeat(np.asarray(maps, np.float32)[..., None], 3, axis=-1))


@node("MetaVSR/metadata",
      ("IMAGE", "depth", "The quantised depth as the receiver decodes it (grey IMAGE, near = bright)."),
      (BITSTREAM_TYPE, "bitstream", "The depth stream (one file per frame); feed MetaVSR Bitrate."),
      ("INT", "bytes", "Total bytes, all frames."),
      ("FLOAT", "bpp", "Bits per HR pixel (all frames)."))
class MetaVSRDepthMetadata:
    """Depth metadata at the sender: a depth map (near = bright, e.g. from a depth estimator node)
    quantised to n bits and coded losslessly, as PNG or as JBIG2 bit-planes of the Gray-coded values
    (which one is smaller depends on the map: compare them with the Bitrate node). Outputs the map
    exactly as the receiver decodes it, the real bitstream for the Bitrate node, and its size."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "depth": ("IMAGE", {"tooltip": "Depth map at HR size, near = bright (grey or RGB; channels are averaged)."}),
            "bits": ("INT", {"default": 8, "min": 1, "max": 16, "tooltip":
                     "Quantisation depth n: 2^n depth levels (fewer bits, coarser depth)."}),
            "coder": (list(depth_codec.CODERS), {"default": "png", "tooltip":
                      "png: one greyscale PNG per frame; jbig2: the n Gray-coded bit-planes as one multi-page "
                      "JBIG2 file per frame."}),
            "fps": FPS,
        }}

    def run(self, depth, bits=8, coder="png", fps=30.0):
        d = to_numpy(_check.image("depth", depth, channels=(1, 3)))
        n = _check.number("bits", bits, 1, 16, integer=True)
        fps = _check.number("fps", fps, 0.01, 1000.0)
        if coder not in depth_codec.CODERS:
            raise _check.MetaVSRInputError(f"coder: {coder!r} is not one of {list(depth_codec.CODERS)}.")
        t, h, w, _ = d.shape
        stream = depth_codec.encode(d, depth_codec.DepthCoding(n, coder), fps, progress=Progress(t))
        return (_depth_image(depth_codec.decode(stream)), stream, stream.nbytes, stream.nbits / float(t * h * w))


@node("MetaVSR/codec",
      ("IMAGE", "depth", "Decoded depth [T,H,W,3] grey, near = bright; connect to MetaVSR Super-Resolve's depth."))
class MetaVSRDepthDecode:
    """Receiver side: decodes a MetaVSR depth bitstream back to the quantised depth map (near = bright)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"bitstream": (BITSTREAM_TYPE, {"tooltip": "A depth bitstream from MetaVSR Depth Metadata."})}}

    def run(self, bitstream):
        if not isinstance(bitstream, Bitstream) or bitstream.codec != depth_codec.CODEC:
            got = bitstream.codec if isinstance(bitstream, Bitstream) else type(bitstream).__name__
            raise _check.MetaVSRInputError(f"bitstream: expected a depth stream from MetaVSR Depth Metadata, got {got!r}.")
        t, h, w, _ = bitstream.shape
        _check.output_size("bitstream", (t, h, w, 3), "decode fewer frames at a time", what="decoded depth")
        try:
            maps = depth_codec.decode(bitstream, progress=Progress(t))
        except depth_codec.DepthStreamError as e:
            raise _check.MetaVSRInputError(f"bitstream: {e}.") from None
        return (_depth_image(maps),)


NODE_CLASS_MAPPINGS.update({"MetaVSRDepthMetadata": MetaVSRDepthMetadata, "MetaVSRDepthDecode": MetaVSRDepthDecode})
NODE_DISPLAY_NAME_MAPPINGS.update({"MetaVSRDepthMetadata": "MetaVSR Depth Metadata",
                                   "MetaVSRDepthDecode": "MetaVSR Depth Decode"})


# --------------------------------------------------------------------------- depth from a local model
from ..models.metadata import depth_model  # noqa: E402
from . import _models  # noqa: E402
from ._comfy import register_model_folder, torch_device  # noqa: E402

DEPTH_KIND = "depth"
register_model_folder(DEPTH_KIND, DEPTH_KIND)
_DEPTH_CACHE = _models.ModelCache()


def _depth_folders():
    return _models.entries(_models.comfy_folders(DEPTH_KIND),
                           lambda p: os.path.isdir(p) and os.path.isfile(os.path.join(p, "config.json")))


@node("MetaVSR/metadata",
      ("IMAGE", "depth", "Depth [T,H,W,3] grey, near = bright (0..1 per frame); connect to MetaVSR Depth Metadata."))
class MetaVSRDepthEstimate:
    """Depth at the sender from a local depth model folder (Depth-Anything or DPT in transformers
    format: config.json + model.safetensors, in ComfyUI/models/depth/<name>/). Needs the transformers
    package; nothing downloads. The map is relative depth, normalised per frame, near = bright."""

    @classmethod
    def INPUT_TYPES(cls):
        names = _depth_folders() or ["(none: put a model folder in models/depth)"]
        return {"required": {
            "model": (names, {"tooltip": "A transformers depth model folder in ComfyUI/models/depth/."}),
            "images": ("IMAGE", {"tooltip": "HR frames [T,H,W,3]."}),
            "device": (["auto", "cpu"], {"default": "auto", "tooltip": "auto: ComfyUI's device; cpu: slower, no GPU memory."}),
        }}

    def run(self, model, images, device="auto"):
        path = _models.find(model, _models.comfy_folders(DEPTH_KIND)) if isinstance(model, str) else None
        if path is None or not os.path.isdir(path):
            raise _check.MetaVSRInputError(f"model: {model!r} is not a folder in ComfyUI/models/depth/; put a "
                                           f"transformers depth model there (config.json + model.safetensors) and press R.")
        frames = to_numpy(_check.image("images", images, channels=(3,), min_size=8))
        dev = torch_device() if device == "auto" else "cpu"
        try:
            weights = os.path.join(path, "model.safetensors")  # a replaced weight file reloads
            key = weights if os.path.isfile(weights) else os.path.join(path, "config.json")
            net = _DEPTH_CACHE.get(key, (str(dev), path), lambda: depth_model.load(path, dev))
        except depth_model.DepthModelError as e:
            raise _check.MetaVSRInputError(f"model: {e}") from None
        t = frames.shape[0]
        progress = Progress(t)
        return (_depth_image(depth_model.estimate(net, frames, lambda d, n: progress(d, n))),)


NODE_CLASS_MAPPINGS["MetaVSRDepthEstimate"] = MetaVSRDepthEstimate
NODE_DISPLAY_NAME_MAPPINGS["MetaVSRDepthEstimate"] = "MetaVSR Depth Estimate"
