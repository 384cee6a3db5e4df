"""Every metric the pack reports, with what a report needs to know about it: which way is better,
its unit and axis label, the smallest frame it works on, and whether it scores frames or frame pairs.

Anything that ranks, plots or takes Bjontegaard deltas asks here instead of guessing from the name,
so a new metric (or a lower-is-better one such as DISTS) is scored the right way round everywhere.
"""
from dataclasses import dataclass
from typing import Callable, Dict

from .common import MIN_DEEP_SIZE
from .dists import dists
from .lpips import lpips
from .psnr import psnr
from .ssim import ssim
from .temporal import ewarp, tlp, tof


@dataclass(frozen=True)
class Metric:
    """fn(x, y) -> one value per frame (or per frame pair, ``temporal``) for ``[T,H,W,3]`` 0..1."""
    name: str
    fn: Callable
    higher_is_better: bool
    unit: str
    label: str
    min_size: int = 1
    temporal: bool = False

    @property
    def sign(self) -> float:
        """+1 or -1: multiply by it to make any metric higher-is-better (for BD maths and hulls)."""
        return 1.0 if self.higher_is_better else -1.0


METRICS: Dict[str, Metric] = {m.name: m for m in (
    Metric("psnr", psnr, True, "dB", "PSNR (dB)"),
    Metric("ssim", ssim, True, "", "SSIM"),
    Metric("lpips", lpips, False, "", "LPIPS (lower is better)", MIN_DEEP_SIZE),
    Metric("dists", dists, False, "", "DISTS (lower is better)", MIN_DEEP_SIZE),
    Metric("tof", tof, False, "px", "tOF (px, lower is better)", 16, True),
    Metric("tlp", tlp, False, "", "tLP (lower is better)", MIN_DEEP_SIZE, True),
    Metric("ewarp", lambda x, y: ewarp(x, y), False, "", "E_warp (lower is better)", 16, True),
)}


def metric(name: str) -> Metric:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[name]
