"""Metadata extraction at the sender (computed on the HR frames)."""
from ..models.metadata import canny
from . import _check
from ._convert import to_mask, to_numpy


class MetaVSRCannyMetadata:
    DESCRIPTION = ("Canny edge metadata (OpenCV) on the HR frames, by thresholds or by a target edge density "
                   "(the thresholds are searched, high = threshold, low = 0.4·high). Optional dilation. "
                   "Outputs a MASK (1 = edge) for JBIG2 and the edge density.")
    CATEGORY = "MetaVSR/metadata"
    RETURN_TYPES = ("MASK", "FLOAT")
    RETURN_NAMES = ("edges", "density")
    OUTPUT_TOOLTIPS = ("Bi-level edge map [T,H,W], 1 = edge.", "Fraction of edge pixels over all frames.")
    FUNCTION = "run"

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
