"""The main job: MetaSR's sender -> receiver experiment (Sec. 4.3) as a sweep over the link layer.

For every image and channel regime (NN / LN / HN) the sender transmits (``models/link.py``)
  * a base layer: HR -> x4 bicubic downscale -> JPEG at each quality of a sweep; the channel
    (noise, blur) then acts on the decoded base layer, as in the paper;
  * optionally metadata: Canny edges of the HR at a target density, optionally thinned and/or coded
    at 1/2 resolution, coded losslessly with JBIG2 (error-free side channel).
The receiver super-resolves with and without the decoded edge map. The total rate of an operating
point is 8 * (JPEG bytes + JBIG2 bytes), counted from the real bytes; quality is PSNR / SSIM /
LPIPS against the HR. Over a set of images, an operating point's rate is the total bits over all
images per HR pixel (bpp) and its quality the mean over images.

Per regime the report holds every operating point, the efficient (convex-hull) points of each
curve, and the Bjontegaard deltas of with-edges against pixel-only (and pixel-only against the
bicubic upscale of the same received base layer). Where two curves share no quality (or rate)
range the delta is not extrapolated: the report says so instead. Figures and text: ``models/report``.
"""
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from . import link
from .codec.degrade import REGIMES
from .codec.resize import upscale
from .metadata.edges import EdgeCoding
from .metrics import bd_summary, hull, metric, peak_deltas
from .receivers.base import RunOptions

SCALE = link.SCALE
QUALITIES = (10, 20, 30, 45, 60, 80)
QUICK_QUALITIES = (15, 40, 80)
OPTIONS = RunOptions(tile=768)  # the embedded receiver in 192 px LR tiles (memory only, not the result)


@dataclass(frozen=True)
class EdgeSetting:
    """How the edge metadata is made: Canny target density, thinning, coding resolution factor."""
    density: float
    thin: bool = True
    factor: int = 1

    @property
    def label(self) -> str:
        return f"d{self.density:g}{'-thin' if self.thin else ''}{'' if self.factor == 1 else f'-1/{self.factor}'}"


# thinned and coded at 1/2 resolution: of the full- and half-resolution maps at 0.5 ... 8 % density,
# these made up nearly all efficient points on the six evaluation images
EDGE_SETTINGS = tuple(EdgeSetting(d, True, 2) for d in (0.005, 0.01, 0.02, 0.04, 0.08))
QUICK_EDGE_SETTINGS = (EdgeSetting(0.01, True, 2), EdgeSetting(0.04, True, 2))


def send_edges(hr: np.ndarray, setting: EdgeSetting) -> link.Sent:
    """HR ``[H,W,3]`` -> the decoded edge map as the receiver sees it (``received`` [1,H,W]), its
    JBIG2 stream and the Canny details: Canny at the target density, thinned / reduced as set, coded
    with JBIG2's ``auto`` parameter search."""
    return link.send_metadata("edges", hr, produce=dict(density=setting.density),
                              coding=EdgeCoding(thinning=setting.thin, factor=setting.factor))


# ----------------------------------------------------------------------------- RD analysis
def bd_points(anchor: List[dict], test: List[dict], key: str) -> dict:
    """BD-rate (%) and BD-quality of ``test`` against ``anchor`` (lists of points with ``bpp`` and
    ``key``) for the metric ``key`` in its own direction; a missing delta says why."""
    s = bd_summary(([p["bpp"] for p in anchor], [p[key] for p in anchor]),
                   ([p["bpp"] for p in test], [p[key] for p in test]), metric(key).higher_is_better)
    out = {}
    for ours, theirs in (("bd_rate_percent", "rate_percent"), (f"bd_{key}", "quality")):
        out[ours] = None if s[theirs] is None else round(s[theirs], 4)
        if theirs + "_note" in s:
            out[ours + "_note"] = s[theirs + "_note"]
    return out


def peak_points(anchor: List[dict], test: List[dict], key: str) -> dict:
    """The largest gain of ``test`` over ``anchor`` at matched rate and the largest rate saving at
    matched ``key`` (MetaSR's "up to" figures; :func:`models.metrics.peak_deltas`), rounded."""
    s = peak_deltas(([p["bpp"] for p in anchor], [p[key] for p in anchor]),
                    ([p["bpp"] for p in test], [p[key] for p in test]), metric(key).higher_is_better)
    names = {"quality_gain": f"max_{key}_gain", "quality_gain_note": f"max_{key}_gain_note",
             "quality_gain_at_rate": "at_bpp", "rate_saving_percent": "max_rate_saving_percent",
             "rate_saving_percent_note": "max_rate_saving_percent_note", "rate_saving_at_quality": f"at_{key}"}
    return {names[k]: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}


def hull_points(points: List[dict], key: str = "psnr") -> List[dict]:
    """The efficient points (the convex hull in bpp vs ``key``, best side), by increasing rate."""
    if not points:
        return []
    idx = hull([p["bpp"] for p in points], [p[key] for p in points], metric(key).higher_is_better)
    return [points[i] for i in idx]


def _mean_points(per_image: Dict[str, Dict[tuple, dict]], hr_pixels: int, metrics) -> Dict[tuple, dict]:
    """Aggregate operating points over images: bits summed (bpp over all HR pixels), quality mean."""
    keys = set.intersection(*(set(v) for v in per_image.values()))
    out = {}
    for k in sorted(keys, key=str):
        pts = [per_image[n][k] for n in per_image]
        agg = dict(pts[0]["setting"])
        agg["bits"] = int(sum(p["bits"] for p in pts))
        agg["bpp"] = agg["bits"] / hr_pixels
        for m in metrics:
            vals = [p[m] for p in pts if m in p]
            if len(vals) == len(pts):
                agg[m] = float(np.mean(vals))
        out[k] = agg
    return out


# ----------------------------------------------------------------------------- the experiment
def run_experiment(images: Dict[str, np.ndarray], model, regimes: Sequence[str] = ("NN", "LN", "HN"),
                   qualities: Sequence[int] = QUALITIES, edge_settings: Sequence[EdgeSetting] = EDGE_SETTINGS,
                   metrics: Sequence[str] = ("psnr", "ssim", "lpips"), seed: int = 0,
                   progress: Optional[Callable[[int, int, str], None]] = None,
                   keep_image: Optional[str] = None, options: RunOptions = OPTIONS) -> dict:
    """Sweep JPEG quality x edge setting for every regime; returns the report dict.

    images:     ``{name: [H,W,3] float32 0..1}``, H and W multiples of 4.
    model:      a receiver (``models/receivers``) with ``"edges"`` in ``metadata_kinds``.
    progress:   ``(done, total, message)`` callback.
    keep_image: name of the image whose reconstructions are kept (``report["_frames"]``) for the
                side-by-side picture; they are not part of the JSON.
    """
    for n, img in images.items():
        if img.ndim != 3 or img.shape[-1] != 3 or img.shape[0] % SCALE or img.shape[1] % SCALE:
            raise ValueError(f"image {n!r}: needs [H,W,3] with H, W multiples of {SCALE}, got {img.shape}")
    if "edges" not in getattr(model, "metadata_kinds", ()):
        raise ValueError("the receiver model does not take edge metadata")
    qualities = sorted(int(q) for q in qualities)
    total = len(images) * (len(edge_settings) + len(regimes) * len(qualities) * (1 + len(edge_settings)))
    done = 0
    t0 = time.time()

    def tick(msg):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, msg)

    def sr(lr, edges=None):
        return link.receive(model, lr[None], None if edges is None else {"edges": edges}, options)[0]

    hr_pixels = sum(img.shape[0] * img.shape[1] for img in images.values())
    per_image_points = {r: {"bicubic": {}, "pixel_only": {}, "with_edges": {}} for r in regimes}
    edges_info = {}
    frames = {}
    for name, hr in images.items():
        edge_maps = {}
        for es in edge_settings:
            sent = send_edges(hr, es)
            edge_maps[es] = (sent.received, sent.bits)
            edges_info.setdefault(name, {})[es.label] = dict(
                bits=sent.bits, **sent.info, coded_density=sent.stream.params["coded_density"])
            tick(f"{name}: edges {es.label} -> {sent.bits} bits")
        for regime in regimes:
            for q in qualities:
                base = link.send_base(hr, q, regime, seed)
                lr, jbits = base.received[0], base.bits
                bic = upscale(lr[None], SCALE, "bicubic")[0]
                sr0 = sr(lr)
                m_bic = link.measure(bic, hr, [m for m in metrics if m != "lpips"])  # the baseline's PSNR/SSIM
                m_sr0 = link.measure(sr0, hr, metrics)
                per_image_points[regime]["bicubic"].setdefault(name, {})[(q,)] = dict(
                    setting=dict(quality=q), bits=jbits, **m_bic)
                per_image_points[regime]["pixel_only"].setdefault(name, {})[(q,)] = dict(
                    setting=dict(quality=q), bits=jbits, **m_sr0)
                if name == keep_image:
                    frames[(regime, q, "bicubic")] = bic
                    frames[(regime, q, "pixel_only")] = sr0
                    frames[(regime, q, "lr")] = lr
                tick(f"{name} {regime} q{q}: pixel-only {m_sr0.get('psnr', float('nan')):.2f} dB")
                for es in edge_settings:
                    e, ebits = edge_maps[es]
                    sr1 = sr(lr, e)
                    m1 = link.measure(sr1, hr, metrics)
                    per_image_points[regime]["with_edges"].setdefault(name, {})[(q, es.label)] = dict(
                        setting=dict(quality=q, edges=es.label), bits=jbits + ebits, jpeg_bits=jbits,
                        edge_bits=ebits, **m1)
                    if name == keep_image:
                        frames[(regime, q, es.label)] = sr1
                        frames[("edges", es.label)] = e[0]
                    tick(f"{name} {regime} q{q} {es.label}: {m1.get('psnr', float('nan')):.2f} dB")

    report = dict(
        experiment="MetaSR Sec. 4.3: JPEG base layer + JBIG2 Canny edges vs pixel-only at matched total rate",
        model=getattr(model, "name", type(model).__name__), scale=SCALE, images={
            n: dict(height=int(i.shape[0]), width=int(i.shape[1])) for n, i in images.items()},
        hr_pixels=int(hr_pixels), qualities=qualities, edge_settings=[asdict(e) | {"label": e.label}
                                                                       for e in edge_settings],
        channel={r: dict(zip(("noise_sigma", "blur_kernel", "blur_sigma"), REGIMES[r])) for r in regimes},
        seed=seed, metrics=list(metrics), rate="bits = 8 x (JPEG bytes + JBIG2 bytes) over all images; "
        "bpp = bits per HR pixel; quality = mean over images; BD deltas on convex hulls (pchip)",
        edges=edges_info, regimes={})
    for regime in regimes:
        report["regimes"][regime] = _regime_report(per_image_points[regime], images, hr_pixels, metrics)
    report["seconds"] = round(time.time() - t0, 1)
    if keep_image is not None:
        report["_frames"] = frames
        report["_keep"] = keep_image
    return report


def _regime_report(points: dict, images: dict, hr_pixels: int, metrics) -> dict:
    """One regime's curves, hulls, BD summary and per-image deltas from its per-image points."""
    curves = {kind: list(_mean_points(points[kind], hr_pixels, metrics).values())
              for kind in ("bicubic", "pixel_only", "with_edges")}
    hulls = {k: hull_points(v, "psnr") for k, v in curves.items()}
    summary = dict(with_edges_vs_pixel_only=bd_points(hulls["pixel_only"], hulls["with_edges"], "psnr"),
                   with_edges_vs_pixel_only_peak=peak_points(hulls["pixel_only"], hulls["with_edges"], "psnr"),
                   pixel_only_vs_bicubic=bd_points(hulls["bicubic"], hulls["pixel_only"], "psnr"))
    if "lpips" in metrics and all("lpips" in p for p in curves["pixel_only"] + curves["with_edges"]):
        summary["with_edges_vs_pixel_only_lpips"] = bd_points(
            hull_points(curves["pixel_only"], "lpips"), hull_points(curves["with_edges"], "lpips"), "lpips")
    bic = {p["quality"]: p for p in curves["bicubic"]}
    diffs = [p["psnr"] - bic[p["quality"]]["psnr"] for p in curves["pixel_only"]]
    summary["pixel_only_minus_bicubic_psnr_db"] = dict(
        mean=round(float(np.mean(diffs)), 4), min=round(float(np.min(diffs)), 4),
        per_quality={str(p["quality"]): round(d, 4) for p, d in zip(curves["pixel_only"], diffs)})
    worst = min(((p["psnr"] - b["psnr"], n, p["setting"]["quality"])
                 for n in images
                 for p, b in zip(points["pixel_only"][n].values(), points["bicubic"][n].values())),
                key=lambda t: t[0])
    summary["pixel_only_minus_bicubic_psnr_db"]["worst_single_image"] = dict(
        db=round(worst[0], 4), image=worst[1], quality=worst[2])
    for kind in ("pixel_only", "with_edges"):
        summary[f"{kind}_psnr_range_db"] = [round(min(p["psnr"] for p in curves[kind]), 3),
                                            round(max(p["psnr"] for p in curves[kind]), 3)]
    per_image = {}
    for n in images:
        pi = {k: list(points[k][n].values()) for k in ("pixel_only", "with_edges")}
        for pts in pi.values():
            for p in pts:
                p["bpp"] = p["bits"] / (images[n].shape[0] * images[n].shape[1])
        per_image[n] = bd_points(hull_points(pi["pixel_only"]), hull_points(pi["with_edges"]), "psnr")
    return dict(points=curves,
                hull={k: [p.get("edges", "") and f"q{p['quality']}+{p['edges']}" or f"q{p['quality']}" for p in v]
                      for k, v in hulls.items()},
                summary=summary, per_image_bd=per_image,
                points_per_image={k: {n: list(v.values()) for n, v in points[k].items()}
                                  for k in ("bicubic", "pixel_only", "with_edges")})


# ----------------------------------------------------------------------------- figures
def plot_rd(report: dict, path: str, key: str = "psnr"):
    """RD curves per regime (bpp vs ``key``): bicubic, pixel-only, every with-edges point and its
    convex hull, the BD figures (and for PSNR their peaks) in a corner. Writes a PNG atomically."""
    from .report import rd_panels
    m = metric(key)
    panels = []
    for regime, r in report["regimes"].items():
        pts = r["points"]
        curve = lambda kind: dict(rates=[p["bpp"] for p in pts[kind]], qualities=[p[key] for p in pts[kind]])
        hull_we = hull_points(pts["with_edges"], key)
        s = r["summary"]["with_edges_vs_pixel_only"]
        bdp, bdr = s.get("bd_psnr"), s.get("bd_rate_percent")
        note = (f"BD-PSNR {bdp:+.2f} dB" if bdp is not None else "BD-PSNR: no common rate range") + "\n" + (
            f"BD-rate {bdr:+.1f} %" if bdr is not None else "BD-rate: no common PSNR range")
        pk = r["summary"].get("with_edges_vs_pixel_only_peak", {}) if key == "psnr" else {}
        if pk.get("max_psnr_gain") is not None and pk.get("max_rate_saving_percent") is not None:
            note += f"\nat best {pk['max_psnr_gain']:+.2f} dB, {pk['max_rate_saving_percent']:.0f} % fewer bits"
        ch = report["channel"][regime]
        panels.append(dict(
            curves=[dict(name="bicubic of base layer", linestyle=":", marker="s", ms=4, lw=1.6, **curve("bicubic")),
                    dict(name="receiver, pixel-only", marker="o", ms=4, lw=1.6, **curve("pixel_only")),
                    dict(name="with edges (all points)", style="points", **curve("with_edges")),
                    dict(name="with edges (hull)", marker="^", ms=5, lw=1.8, color="tab:red",
                         rates=[p["bpp"] for p in hull_we], qualities=[p[key] for p in hull_we])],
            higher_is_better=m.higher_is_better, log_rate=True,
            xlabel="total rate (bits per HR pixel, JPEG + JBIG2)", ylabel=m.label, note=note,
            title=f"{regime}: noise {ch['noise_sigma']:g}/255, blur σ {ch['blur_sigma']:g}"))
    rd_panels(panels, path, f"{report['model']}: x4 SR at matched total rate ({len(report['images'])} image(s))")
