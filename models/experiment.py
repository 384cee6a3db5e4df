"""The main job: MetaSR's sender -> receiver experiment (Sec. 4.3) as plain functions.

For every image and channel regime (NN / LN / HN) the sender transmits
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
range the delta is not extrapolated: the report says so instead.
"""
import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from .atomic import save_figure, save_image
from .codec import jbig2
from .codec.degrade import REGIMES, channel_degrade
from .codec.jpeg import jpeg_decode, jpeg_encode, to_uint8
from .codec.resize import downscale, upscale
from .metadata import edge_rate
from .metadata.canny import canny_for_density
from .metrics import NoOverlapError, bd_psnr, bd_rate, convex_hull, lpips, psnr, ssim

EVAL_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "text")
SCALE = 4
QUALITIES = (10, 20, 30, 45, 60, 80)
QUICK_QUALITIES = (15, 40, 80)


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


# ----------------------------------------------------------------------------- inputs
def crop_to_multiple(img: np.ndarray, multiple: int = 16) -> np.ndarray:
    """Centre-crop ``[H,W,C]`` so H and W are multiples of ``multiple`` (the x4 sender needs 4)."""
    h, w = img.shape[:2]
    hh, ww = h - h % multiple, w - w % multiple
    if hh < multiple or ww < multiple:
        raise ValueError(f"image {w}x{h} is too small (needs at least {multiple}x{multiple})")
    y, x = (h - hh) // 2, (w - ww) // 2
    return img[y:y + hh, x:x + ww]


def _to_rgb_float(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    img = img[..., :3]
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return np.clip(img.astype(np.float32), 0, 1)


def eval_images(names: Sequence[str] = EVAL_IMAGES, multiple: int = 16, max_side: int = 0) -> Dict[str, np.ndarray]:
    """scikit-image sample images (bundled with scikit-image) as ``{name: [H,W,3] float32 0..1}``;
    greyscale ones (camera, text) in RGB. ``max_side`` > 0 centre-crops larger images to it."""
    from skimage import data
    out = {}
    for n in names:
        img = _to_rgb_float(getattr(data, n)())
        if max_side:
            img = _centre(img, max_side)
        out[n] = crop_to_multiple(img, multiple)
    return out


def _centre(img, side):
    h, w = img.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[y:y + min(h, side), x:x + min(w, side)]


MAX_PIXELS = 4096 * 4096  # per image in the main job: the metrics need ~150 bytes per HR pixel


def _pil_to_float(im) -> np.ndarray:
    """A PIL image in any mode -> ``[H,W,3]`` float32 0..1 at its full bit depth.

    16-bit greyscale (modes I;16*, or I from older Pillow) keeps its 16 bits: ``convert("RGB")``
    would clip it to 255 and turn it white. Float images must already lie in 0..1.
    """
    mode = im.mode
    if mode.startswith("I;16"):
        return _to_rgb_float(np.asarray(im).astype(np.uint16))
    if mode == "I":
        arr = np.asarray(im)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise ValueError(f"32-bit integer image with values {arr.min()}..{arr.max()}; save it as 8- or "
                             f"16-bit first")
        return _to_rgb_float(arr.astype(np.uint16))
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        if not np.isfinite(arr).all() or arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
            raise ValueError("floating-point image outside 0..1 (or with NaN); normalise it first")
        return _to_rgb_float(arr)
    return _to_rgb_float(np.asarray(im.convert("RGB")))  # palette, alpha, CMYK, YCbCr, 1-bit, ...


def load_image(path: str, multiple: int = 16, max_side: int = 0, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file -> ``[H,W,3]`` float32 0..1, centre-cropped to a multiple of ``multiple``
    (and to ``max_side`` when given). Errors name the file: an unreadable one, or one over
    ``max_pixels`` after cropping (say ``max_side`` then)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.seek(0)
            if im.width * im.height > 16 * max_pixels:  # don't even decode a 1-gigapixel file
                raise ValueError(f"it is {im.width}x{im.height}, far above what the main job handles")
            img = _pil_to_float(im)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
        raise ValueError(f"{path}: cannot use it as an input image ({e})") from None
    if max_side:
        img = _centre(img, max_side)
    if img.shape[0] * img.shape[1] > max_pixels:
        raise ValueError(f"{path}: {img.shape[1]}x{img.shape[0]} is larger than the main job handles "
                         f"({max_pixels} pixels: its metrics need ~{img.shape[0] * img.shape[1] * 150 >> 30} GiB); "
                         f"centre-crop it with --max-side 2048 (or resize it)")
    try:
        return crop_to_multiple(img, multiple)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def unique_names(paths: Sequence[str]) -> List[str]:
    """A short distinct name per input file: the file name without extension, with as many parent
    folders as it takes to tell equal names apart (``a/photo``, ``b/photo``)."""
    import os
    full = [os.path.normpath(os.path.abspath(p)) for p in paths]
    dup = {p for p in full if full.count(p) > 1}
    if dup:
        raise ValueError(f"{sorted(dup)[0]} is given more than once")
    parts = [os.path.splitext(p)[0].split(os.sep) for p in full]
    depth = [1] * len(paths)
    while True:
        names = ["/".join(pp[-d:]) for pp, d in zip(parts, depth)]
        clash = {n for n in names if names.count(n) > 1}
        if not clash:
            return names
        for i, n in enumerate(names):
            if n in clash:
                depth[i] += 1


# ----------------------------------------------------------------------------- sender / channel
def send_base(hr: np.ndarray, quality: int, regime: str, seed: int = 0):
    """HR ``[H,W,3]`` -> (received LR ``[H/4,W/4,3]`` float32, JPEG bits): bicubic x4 down, JPEG,
    then the regime's channel on the decoded base layer."""
    lr = downscale(hr[None], SCALE, "bicubic")
    stream = jpeg_encode(lr, quality)
    noise, k, sigma = REGIMES[regime]
    received = channel_degrade(jpeg_decode(stream), noise, k, sigma, seed=seed)
    return received[0], stream.nbits


def send_edges(hr: np.ndarray, setting: EdgeSetting):
    """HR ``[H,W,3]`` -> (decoded edge map ``[H,W]`` uint8 as the receiver sees it, JBIG2 bits,
    info). The map is Canny at the target density, thinned / reduced as set, coded losslessly with
    JBIG2 (``auto`` parameter search), decoded and brought back to HR by nearest neighbour."""
    edges, low, high, density = canny_for_density(hr[None], setting.density)
    coded = edge_rate.prepare(edges[0], thinning=setting.thin, factor=setting.factor)
    data = jbig2.encode(coded, auto=True)
    decoded = jbig2.decode(data)
    if not np.array_equal(decoded != 0, coded != 0):
        raise RuntimeError("JBIG2 round trip is not lossless")  # the side channel must be exact
    received = edge_rate.upscale(decoded, setting.factor, hr.shape[:2])
    info = dict(low=round(float(low), 2), high=round(float(high), 2), density=round(float(density), 5),
                coded_density=round(float(np.mean(coded != 0)), 5))
    return received.astype(np.uint8), 8 * len(data), info


# ----------------------------------------------------------------------------- measurement
def measure(sr: np.ndarray, hr: np.ndarray, metrics: Sequence[str] = ("psnr", "ssim", "lpips")) -> dict:
    """PSNR (dB, RGB), SSIM (RGB) and LPIPS-Alex of ``sr`` against ``hr`` (both ``[H,W,3]``)."""
    x = torch.from_numpy(np.ascontiguousarray(sr, np.float32))[None]
    y = torch.from_numpy(np.ascontiguousarray(hr, np.float32))[None]
    out = {}
    if "psnr" in metrics:
        out["psnr"] = float(psnr(x, y)[0])
    if "ssim" in metrics:
        out["ssim"] = float(ssim(x, y)[0])
    if "lpips" in metrics and min(hr.shape[:2]) >= 32:
        out["lpips"] = float(lpips(x, y)[0])
    return out


def super_resolve(model, lr: np.ndarray, edges: Optional[np.ndarray] = None) -> np.ndarray:
    """Run an ``SRModel`` on one received LR frame (with the decoded edge map, or pixel-only)."""
    meta = None
    if edges is not None:
        meta = {"edges": torch.from_numpy(edges.astype(np.float32))[None, :, :, None]}
    out = model.upscale(torch.from_numpy(np.ascontiguousarray(lr))[None], meta)
    return out[0].numpy()


# ----------------------------------------------------------------------------- RD analysis
def _bd(anchor, test, key):
    """BD-rate (%) and BD-quality of ``test`` against ``anchor`` (lists of points with ``bpp`` and
    ``key``), on their convex hulls; a missing overlap is reported, not extrapolated."""
    out = {}
    sign = -1.0 if key == "lpips" else 1.0  # lower-is-better metric: negate for Bjontegaard
    ra, qa = [p["bpp"] for p in anchor], [sign * p[key] for p in anchor]
    rb, qb = [p["bpp"] for p in test], [sign * p[key] for p in test]
    for name, fn in (("bd_rate_percent", bd_rate), (f"bd_{key}", bd_psnr)):
        try:
            v = fn(ra, qa, rb, qb)
            out[name] = round(sign * v if name != "bd_rate_percent" else v, 4)
        except NoOverlapError as e:
            out[name] = None
            out[name + "_note"] = ("not computed: the two curves share no "
                                   + ("quality" if name == "bd_rate_percent" else "rate")
                                   + f" range, so it would need extrapolation ({e})")
        except ValueError as e:
            out[name] = None
            out[name + "_note"] = f"not computed: {e}"
    return out


def hull_points(points: List[dict], key: str = "psnr") -> List[dict]:
    """The efficient points (upper-left convex hull in bpp vs quality), by increasing rate."""
    if not points:
        return []
    sign = -1.0 if key == "lpips" else 1.0
    idx = convex_hull([p["bpp"] for p in points], [sign * p[key] for p in points])
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
                   keep_image: Optional[str] = None) -> dict:
    """Sweep JPEG quality x edge setting for every regime; returns the report dict.

    images:     ``{name: [H,W,3] float32 0..1}``, H and W multiples of 4.
    model:      an ``SRModel`` with ``"edges"`` in ``metadata_kinds``.
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

    hr_pixels = sum(img.shape[0] * img.shape[1] for img in images.values())
    per_image_points = {r: {"bicubic": {}, "pixel_only": {}, "with_edges": {}} for r in regimes}
    edges_info = {}
    frames = {}
    for name, hr in images.items():
        edge_maps = {}
        for es in edge_settings:
            e, bits, info = send_edges(hr, es)
            edge_maps[es] = (e, bits)
            edges_info.setdefault(name, {})[es.label] = dict(bits=bits, **info)
            tick(f"{name}: edges {es.label} -> {bits} bits")
        for regime in regimes:
            for q in qualities:
                lr, jbits = send_base(hr, q, regime, seed)
                bic = upscale(lr[None], SCALE, "bicubic")[0]
                sr0 = super_resolve(model, lr)
                m_bic = measure(bic, hr, [m for m in metrics if m != "lpips"])  # the baseline's PSNR/SSIM
                m_sr0 = measure(sr0, hr, metrics)
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
                    sr1 = super_resolve(model, lr, e)
                    m1 = measure(sr1, hr, metrics)
                    per_image_points[regime]["with_edges"].setdefault(name, {})[(q, es.label)] = dict(
                        setting=dict(quality=q, edges=es.label), bits=jbits + ebits, jpeg_bits=jbits,
                        edge_bits=ebits, **m1)
                    if name == keep_image:
                        frames[(regime, q, es.label)] = sr1
                        frames[("edges", es.label)] = e
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
        curves = {}
        for kind in ("bicubic", "pixel_only", "with_edges"):
            agg = _mean_points(per_image_points[regime][kind], hr_pixels, metrics)
            curves[kind] = list(agg.values())
        hulls = {k: hull_points(v, "psnr") for k, v in curves.items()}
        summary = dict(with_edges_vs_pixel_only=_bd(hulls["pixel_only"], hulls["with_edges"], "psnr"),
                       pixel_only_vs_bicubic=_bd(hulls["bicubic"], hulls["pixel_only"], "psnr"))
        if "lpips" in metrics and all("lpips" in p for p in curves["pixel_only"] + curves["with_edges"]):
            summary["with_edges_vs_pixel_only_lpips"] = _bd(
                hull_points(curves["pixel_only"], "lpips"), hull_points(curves["with_edges"], "lpips"), "lpips")
        bic = {p["quality"]: p for p in curves["bicubic"]}
        diffs = [p["psnr"] - bic[p["quality"]]["psnr"] for p in curves["pixel_only"]]
        summary["pixel_only_minus_bicubic_psnr_db"] = dict(
            mean=round(float(np.mean(diffs)), 4), min=round(float(np.min(diffs)), 4),
            per_quality={str(p["quality"]): round(d, 4) for p, d in zip(curves["pixel_only"], diffs)})
        worst = min(((p["psnr"] - b["psnr"], n, p["setting"]["quality"])
                     for n in images
                     for p, b in zip(per_image_points[regime]["pixel_only"][n].values(),
                                     per_image_points[regime]["bicubic"][n].values())), key=lambda t: t[0])
        summary["pixel_only_minus_bicubic_psnr_db"]["worst_single_image"] = dict(
            db=round(worst[0], 4), image=worst[1], quality=worst[2])
        summary["pixel_only_psnr_range_db"] = [round(min(p["psnr"] for p in curves["pixel_only"]), 3),
                                                round(max(p["psnr"] for p in curves["pixel_only"]), 3)]
        summary["with_edges_psnr_range_db"] = [round(min(p["psnr"] for p in curves["with_edges"]), 3),
                                                round(max(p["psnr"] for p in curves["with_edges"]), 3)]
        per_image = {}
        for n in images:
            pi = {k: list(per_image_points[regime][k][n].values()) for k in ("pixel_only", "with_edges")}
            for pts in pi.values():
                for p in pts:
                    p["bpp"] = p["bits"] / (images[n].shape[0] * images[n].shape[1])
            per_image[n] = _bd(hull_points(pi["pixel_only"]), hull_points(pi["with_edges"]), "psnr")
        report["regimes"][regime] = dict(
            points=curves, hull={k: [p.get("edges", "") and f"q{p['quality']}+{p['edges']}" or f"q{p['quality']}"
                                     for p in v] for k, v in hulls.items()},
            summary=summary, per_image_bd=per_image,
            points_per_image={k: {n: list(v.values()) for n, v in per_image_points[regime][k].items()}
                              for k in ("bicubic", "pixel_only", "with_edges")})
    report["seconds"] = round(time.time() - t0, 1)
    if keep_image is not None:
        report["_frames"] = frames
        report["_keep"] = keep_image
    return report


# ----------------------------------------------------------------------------- figures
def plot_rd(report: dict, path: str, metric: str = "psnr"):
    """RD curves per regime (bpp vs ``metric``): bicubic, pixel-only, every with-edges point and
    its convex hull. Writes a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    regimes = list(report["regimes"])
    fig, axes = plt.subplots(1, len(regimes), figsize=(5.2 * len(regimes), 4.3), squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        r = report["regimes"][regime]
        pts = r["points"]
        sign = -1 if metric == "lpips" else 1

        def line(kind, style, label):
            ps = sorted(pts[kind], key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in ps], [p[metric] for p in ps], style, label=label, lw=1.6, ms=4)
        line("bicubic", "s:", "bicubic of base layer")
        line("pixel_only", "o-", "receiver, pixel-only")
        we = pts["with_edges"]
        ax.scatter([p["bpp"] for p in we], [p[metric] for p in we], s=9, c="tab:red", alpha=0.35,
                   label="with edges (all points)")
        hull = sorted(hull_points(we, metric), key=lambda p: p["bpp"])
        ax.plot([p["bpp"] for p in hull], [p[metric] for p in hull], "^-", c="tab:red", lw=1.8, ms=5,
                label="with edges (hull)")
        s = r["summary"]["with_edges_vs_pixel_only"]
        bdp, bdr = s.get("bd_psnr"), s.get("bd_rate_percent")
        txt = (f"BD-PSNR {bdp:+.2f} dB" if bdp is not None else "BD-PSNR: no common rate range") + "\n" + (
            f"BD-rate {bdr:+.1f} %" if bdr is not None else "BD-rate: no common PSNR range")
        ax.text(0.97, 0.04, txt, transform=ax.transAxes, ha="right", va="bottom", fontsize=9,
                bbox=dict(fc="white", ec="0.7"))
        ax.set_xscale("log")
        ax.set_title(f"{regime}: noise {report['channel'][regime]['noise_sigma']:g}/255, "
                     f"blur σ {report['channel'][regime]['blur_sigma']:g}")
        ax.set_xlabel("total rate (bits per HR pixel, JPEG + JBIG2)")
        ax.set_ylabel({"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS (lower is better)"}[metric])
        ax.grid(True, which="both", alpha=0.3)
        if sign < 0:
            ax.invert_yaxis()
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{report['model']}: x4 SR at matched total rate ({len(report['images'])} image(s))")
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)


def matched_pair(report: dict, regime: str, image: str):
    """For the side-by-side: the with-edges hull point of ``image`` with the best PSNR gain over the
    pixel-only point of the same or higher total rate (pixel-only gets at least as many bits)."""
    r = report["regimes"][regime]["points_per_image"]
    po = sorted(r["pixel_only"][image], key=lambda p: p["bits"])
    best = None
    for p in hull_points(r["with_edges"][image]):
        richer = [a for a in po if a["bits"] >= p["bits"]]
        if not richer:
            continue
        a = richer[0]
        gain = p["psnr"] - a["psnr"]
        if best is None or gain > best[0]:
            best = (gain, p, a)
    if best is None:  # every with-edges point costs more than the best pixel-only point
        p = max(hull_points(r["with_edges"][image]), key=lambda p: -p["bits"])
        best = (p["psnr"] - po[-1]["psnr"], p, po[-1])
    return best[1], best[2]


def side_by_side(report: dict, hr: np.ndarray, path: str, regime: str = "HN", crop: int = 192):
    """PNG: HR crop | bicubic | pixel-only | with edges (at no more bits) | decoded edge map, with
    each panel's rate and PSNR, for the kept image at a matched operating point."""
    from PIL import Image, ImageDraw, ImageFont
    frames = report["_frames"]
    name = report["_keep"]
    pe, po = matched_pair(report, regime, name)
    q_e, lab = pe["setting"]["quality"], pe["setting"]["edges"]
    q_p = po["setting"]["quality"]
    bic_pts = {p["setting"]["quality"]: p for p in report["regimes"][regime]["points_per_image"]["bicubic"][name]}
    h, w = hr.shape[:2]
    c = min(crop, h, w)
    # the crop with the most edges shows what metadata does
    e = frames[("edges", lab)].astype(np.float32)
    best, yx = -1, (0, 0)
    for y in range(0, h - c + 1, max(8, c // 4)):
        for x in range(0, w - c + 1, max(8, c // 4)):
            s = e[y:y + c, x:x + c].sum()
            if s > best:
                best, yx = s, (y, x)
    y, x = yx
    hw = h * w

    def cut(a):
        return a[y:y + c, x:x + c]
    panels = [
        (hr, "original HR"),
        (frames[(regime, q_p, "bicubic")], f"bicubic, q{q_p}: {bic_pts[q_p]['bits'] / hw:.3f} bpp, "
                                           f"{bic_pts[q_p]['psnr']:.2f} dB"),
        (frames[(regime, q_p, "pixel_only")], f"pixel-only q{q_p}: {po['bits'] / hw:.3f} bpp, {po['psnr']:.2f} dB"),
        (frames[(regime, q_e, lab)], f"q{q_e} + edges {lab}: {pe['bits'] / hw:.3f} bpp, {pe['psnr']:.2f} dB"),
        (np.repeat(1.0 - e[..., None], 3, axis=-1), f"decoded edges ({pe['edge_bits']} bits)"),
    ]
    zoom = 2 if c <= 256 else 1
    tile = c * zoom
    top = 34
    canvas = Image.new("RGB", (tile * len(panels) + 6 * (len(panels) - 1), tile + top + 22), "white")
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    for i, (img, label) in enumerate(panels):
        u8 = to_uint8(cut(img))
        im = Image.fromarray(u8).resize((tile, tile), Image.NEAREST)
        x0 = i * (tile + 6)
        canvas.paste(im, (x0, top))
        draw.text((x0 + 2, 8), label, fill="black", font=font)
    draw.text((2, tile + top + 5), f"{name}, {regime} channel, crop {c}x{c} at ({x},{y}) shown x{zoom}; "
              f"rates and PSNR of the whole image; with-edges uses no more bits than pixel-only", fill="black", font=font)
    save_image(path, canvas)
    return dict(image=name, regime=regime, pixel_only=po["setting"], with_edges=pe["setting"],
                pixel_only_bits=po["bits"], with_edges_bits=pe["bits"],
                pixel_only_psnr=po["psnr"], with_edges_psnr=pe["psnr"])


def summary_lines(report: dict) -> List[str]:
    """A short human summary of the report, one line per regime."""
    lines = []
    for regime, r in report["regimes"].items():
        s = r["summary"]["with_edges_vs_pixel_only"]
        b = r["summary"]["pixel_only_minus_bicubic_psnr_db"]
        bdp = f"{s['bd_psnr']:+.2f} dB" if s.get("bd_psnr") is not None else "n/a (no common rate range)"
        bdr = (f"{s['bd_rate_percent']:+.1f} %" if s.get("bd_rate_percent") is not None
               else "n/a (no common PSNR range)")
        lines.append(f"{regime}: with edges vs pixel-only BD-PSNR {bdp}, BD-rate {bdr}; "
                     f"pixel-only vs bicubic {b['mean']:+.2f} dB (min {b['min']:+.2f})")
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
