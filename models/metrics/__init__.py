"""Quality metrics and rate-distortion tools. All full-reference metrics take ``[B,H,W,C]`` float
0..1 tensors (ComfyUI's IMAGE layout) and return one value per frame; temporal ones one per frame pair.
Importing this package loads no weights (LPIPS/DISTS load lazily, once, on first use)."""
from .dists import dists
from .features import MissingWeightsError
from .lpips import lpips
from .psnr import psnr, rgb_to_y
from .rd import NoOverlapError, bd_quality, bd_rate, bd_summary, convex_hull, distortion, hull, peak_deltas, rdo_cost
from .registry import METRICS, Metric, metric
from .ssim import ssim
from .temporal import ewarp, tlp, tof

__all__ = ["psnr", "ssim", "lpips", "dists", "tof", "tlp", "ewarp", "bd_rate", "bd_quality", "bd_summary",
           "peak_deltas", "rdo_cost", "convex_hull", "hull", "distortion", "rgb_to_y", "METRICS", "Metric", "metric",
           "MissingWeightsError", "NoOverlapError"]
