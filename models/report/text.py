"""The main job's report as text: one summary line per regime, and the JSON-ready form."""
import math
from typing import List

import numpy as np


def summary_lines(report: dict) -> List[str]:
    """A short human summary of the report, one line per regime."""
    lines = []
    for regime, r in report["regimes"].items():
        s = r["summary"]["with_edges_vs_pixel_only"]
        b = r["summary"]["pixel_only_minus_bicubic_psnr_db"]
        bdp = f"{s['bd_psnr']:+.2f} dB" if s.get("bd_psnr") is not None else "n/a (no common rate range)"
        bdr = (f"{s['bd_rate_percent']:+.1f} %" if s.get("bd_rate_percent") is not None
               else "n/a (no common PSNR range)")
        pk = r["summary"].get("with_edges_vs_pixel_only_peak", {})
        up = []
        if pk.get("max_psnr_gain") is not None:
            up.append(f"{pk['max_psnr_gain']:+.2f} dB at {pk['at_bpp']:.3f} bpp")
        if pk.get("max_rate_saving_percent") is not None:
            up.append(f"{pk['max_rate_saving_percent']:.0f} % fewer bits at {pk['at_psnr']:.2f} dB")
        lines.append(f"{regime}: with edges vs pixel-only BD-PSNR {bdp}, BD-rate {bdr}"
                     + (f" (at best {', '.join(up)})" if up else "")
                     + f"; pixel-only vs bicubic {b['mean']:+.2f} dB (min {b['min']:+.2f})")
    return lines


def jsonable(report: dict) -> dict:
    """The report without the kept frames (for ``report.json``)."""
    def fix(v):
        if isinstance(v, dict):
            return {str(k): fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, (np.floating, np.integer)):
            return v.item()
        return v
    return fix({k: v for k, v in report.items() if not k.startswith("_")})
