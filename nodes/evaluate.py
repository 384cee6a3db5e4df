"""Evaluation nodes: metrics, temporal metrics, RD curves (list-execution sweeps), comparison views.

All computation lives in ``models/metrics``; these nodes validate, move tensors to the compute
device, format tables and draw pictures.
"""
import math
import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from ..models import metrics as M
from ..models.atomic import save_image
from ..models.ops import windows
from ..models.report import rd_image
from ..models.metrics import features as metric_files
from ..models.metrics.common import MIN_DEEP_SIZE
from . import _check
from ._comfy import Progress, model_folders, register_model_folder, temp_dir, to_pil, torch_device
from ._declare import node

CATEGORY = "MetaVSR/evaluate"
MAX_GRID_INPUTS = 6
MAX_SERIES = 4
MAX_SWEEP = 256
MAX_OUTPUT_BYTES = 2 << 30  # refuse to build comparison images larger than 2 GiB
MAX_PREVIEW_FRAMES = 64
NOT_COMPUTED = -1.0  # FLOAT output of a metric that was switched off (never NaN)

register_model_folder(metric_files.MODEL_KIND, metric_files.MODEL_KIND)


def _weights_dirs():
    return model_folders(metric_files.MODEL_KIND)


def _deep_metric(fn, name, *args, **kw):
    """Run LPIPS/DISTS, turning a missing weight file into an input error that says how to get it."""
    try:
        return fn(*args, weights_dirs=_weights_dirs(), **kw)
    except M.MissingWeightsError as e:
        raise _check.MetaVSRInputError(f"{name}: {e}") from None


CHUNK = 8  # frames per device batch of the deep metrics


def _chunks(frames: int, chunk: int = CHUNK, overlap: int = 0) -> int:
    return len(windows.batches(frames, chunk, overlap))


def _on_device(fn, x, y, chunk=CHUNK, overlap=0, progress=None, **kw):
    """Run a per-frame metric on the compute device a few frames at a time, so a long clip never has to
    fit on the GPU at once. ``overlap`` frames are repeated between chunks (1 for per-pair metrics).
    ``progress.update()`` after each chunk (and the cancel check that comes with it)."""
    dev = torch_device()
    parts = []
    for s, e in windows.batches(x.shape[0], chunk, overlap):
        xs, ys = x[s:e].to(dev), y[s:e].to(dev)
        parts.append(fn(xs, ys, **kw).double().cpu())
        if progress is not None:
            progress.update()
    return torch.cat(parts)


def _pair(images, reference, min_size=1):
    """Check an output/reference pair; a 1-frame reference is compared with every frame."""
    x = _check.image("images", images, channels=(3,), min_size=min_size)
    y = _check.image("reference", reference, channels=(3,), min_size=min_size)
    if x.shape[1:3] != y.shape[1:3]:
        raise _check.MetaVSRInputError(
            f"reference: is {y.shape[2]}x{y.shape[1]} but images are {x.shape[2]}x{x.shape[1]}; metrics compare "
            f"at the same size (upscale the output with MetaVSR Upscale, or compare against the LR reference).")
    if y.shape[0] == 1 and x.shape[0] > 1:
        y = y.expand_as(x)
    elif x.shape[0] != y.shape[0]:
        raise _check.MetaVSRInputError(f"reference: has {y.shape[0]} frames but images has {x.shape[0]}; give "
                                       f"the same number of frames (or a single reference frame).")
    return x, y


def _fmt(v, digits=4):
    if v is None:
        return "off"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def _table(header, rows):
    cols = [header] + rows
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


@node(CATEGORY,
      ("FLOAT", "psnr", "Mean PSNR over frames (dB)."),
      ("FLOAT", "ssim", "Mean SSIM over frames."),
      ("FLOAT", "lpips", "Mean LPIPS over frames (-1 when off)."),
      ("FLOAT", "dists", "Mean DISTS over frames (-1 when off)."),
      ("STRING", "table", "Per-frame table (text)."))
class MetaVSRMetrics:
    """Full-reference quality of images (or video frames) against the HR reference: PSNR and SSIM (RGB
    on 0..1, or BT.601 luma Y on 16..235 as in SR papers), LPIPS (AlexNet weights ship with the pack;
    VGG needs a converted file) and DISTS (needs the VGG file). Outputs the mean over frames (-1 for a
    metric switched off); the table lists every frame. In a sweep (list execution) it runs once per
    item."""
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Frames to judge (e.g. the receiver output) [T,H,W,3]."}),
                "reference": ("IMAGE", {"tooltip": "Ground-truth HR frames, same size; 1 frame is compared with all."}),
                "color_space": (["RGB", "Y"], {"default": "RGB", "tooltip":
                                "PSNR/SSIM on RGB 0..1 (peak 1) or on BT.601 luma Y = 16 + 65.481R + 128.553G + "
                                "24.966B (peak 255, BasicSR/MATLAB convention)."}),
                "crop_border": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip":
                                "Pixels ignored on each side for PSNR/SSIM (SR papers crop the scale factor)."}),
                "lpips_net": (["alex", "vgg", "off"], {"default": "alex", "tooltip":
                              "LPIPS backbone. 'vgg' needs models/metavsr_metrics/vgg16_metrics.safetensors."}),
                "dists": ("BOOLEAN", {"default": False, "tooltip":
                          "Compute DISTS (needs models/metavsr_metrics/vgg16_metrics.safetensors)."}),
            },
            "optional": {
                "label": ("STRING", {"default": "", "tooltip": "Name shown in the table (e.g. the setting judged)."}),
            },
        }

    def run(self, images, reference, color_space="RGB", crop_border=0, lpips_net="alex", dists=False, label=""):
        x, y = _pair(images, reference)
        crop = _check.number("crop_border", crop_border, 0, 64, integer=True)
        h, w = x.shape[1:3]
        if min(h, w) - 2 * crop < 11:
            raise _check.MetaVSRInputError(f"crop_border: {crop} leaves {w - 2 * crop}x{h - 2 * crop} pixels; SSIM "
                                           f"needs at least 11x11. Lower crop_border or use larger images.")
        if lpips_net not in ("alex", "vgg", "off"):
            raise _check.MetaVSRInputError(f"lpips_net: {lpips_net!r} is not alex, vgg or off.")
        if (lpips_net != "off" or dists) and min(h, w) < MIN_DEEP_SIZE:
            raise _check.MetaVSRInputError(f"images: {w}x{h} is too small for LPIPS/DISTS (min 32x32); set "
                                           f"lpips_net to off and dists to false.")
        if color_space not in ("RGB", "Y"):
            raise _check.MetaVSRInputError(f"color_space: {color_space!r} is not RGB or Y.")
        space = "y" if color_space == "Y" else "rgb"
        progress = Progress(2 + _chunks(x.shape[0]) * ((lpips_net != "off") + bool(dists)))
        p = M.psnr(x, y, space, crop).double()
        progress.update()
        s = M.ssim(x, y, space, crop).double()
        progress.update()
        lp = ds = None
        if lpips_net != "off":
            lp = _deep_metric(_on_device, f"lpips_net={lpips_net}", M.lpips, x, y, net=lpips_net,
                              progress=progress)
        if dists:
            ds = _deep_metric(_on_device, "dists", M.dists, x, y, progress=progress)
        mean = lambda t: None if t is None else float(t.mean())
        sp = "Y" if space == "y" else "RGB"
        header = ["frame", f"PSNR-{sp} dB", f"SSIM-{sp}", f"LPIPS-{lpips_net}", "DISTS"]
        rows = [["mean", _fmt(mean(p), 2), _fmt(mean(s)), _fmt(mean(lp)), _fmt(mean(ds))]]
        n = x.shape[0]
        if n > 1:
            for i in range(min(n, 64)):
                rows.append([str(i), _fmt(float(p[i]), 2), _fmt(float(s[i])),
                             _fmt(None if lp is None else float(lp[i])), _fmt(None if ds is None else float(ds[i]))])
        title = (f"{label}\n" if label else "") + f"{n} frame(s), {w}x{h}, crop {crop}"
        table = title + "\n" + _table(header, rows) + ("\n(first 64 frames listed)" if n > 64 else "")
        out = tuple(NOT_COMPUTED if v is None else v for v in (mean(p), mean(s), mean(lp), mean(ds)))
        return {"ui": {"text": [table]}, "result": out + (table,)}


@node(CATEGORY,
      ("FLOAT", "tof", "Mean tOF over frame pairs (pixels; lower is better)."),
      ("FLOAT", "tlp", "Mean tLP over frame pairs (lower is better)."),
      ("FLOAT", "ewarp_x1e3", "Mean flow warping error x1e-3 (lower is better)."),
      ("STRING", "table", "Per-pair table (text)."))
class MetaVSRTemporalMetrics:
    """Temporal consistency of a clip against the ground-truth clip, per consecutive frame pair: tOF
    (optical-flow difference, pixels), tLP (LPIPS-difference of consecutive frames) and E_warp (flow
    warping error, x1e-3 as STAR reports it). Flow: OpenCV DIS, preset medium."""
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The clip to judge [T,H,W,3], T >= 2."}),
                "reference": ("IMAGE", {"tooltip": "Ground-truth clip, same size and frame count."}),
                "lpips_net": (["alex", "vgg"], {"default": "alex", "tooltip": "LPIPS backbone for tLP."}),
                "ewarp_flow": (["reference", "images"], {"default": "reference", "tooltip":
                               "Compute E_warp's flow on the ground truth (Lai et al.) or on the judged clip "
                               "itself (no-reference use)."}),
            },
        }

    def run(self, images, reference, lpips_net="alex", ewarp_flow="reference"):
        x, y = _pair(images, reference, min_size=32)
        if x.shape[0] < 2:
            raise _check.MetaVSRInputError("images: temporal metrics need a clip of at least 2 frames (got 1).")
        progress = Progress(2 + _chunks(x.shape[0], overlap=1))
        of = M.tof(x, y).double()
        progress.update()
        lp = _deep_metric(_on_device, f"lpips_net={lpips_net}", M.tlp, x, y, overlap=1, net=lpips_net,
                          progress=progress)
        ew = M.ewarp(x, y if ewarp_flow == "reference" else None).double() * 1e3
        progress.update()
        rows = [["mean", _fmt(float(of.mean())), _fmt(float(lp.mean())), _fmt(float(ew.mean()))]]
        for i in range(min(len(of), 64)):
            rows.append([f"{i}-{i + 1}", _fmt(float(of[i])), _fmt(float(lp[i])), _fmt(float(ew[i]))])
        table = (f"{x.shape[0]} frames, flow: DIS medium\n"
                 + _table(["pair", "tOF px", f"tLP-{lpips_net}", "E_warp x1e-3"], rows))
        return {"ui": {"text": [table]},
                "result": (float(of.mean()), float(lp.mean()), float(ew.mean()), table)}


@node(CATEGORY,
      ("INT", "ints", "The values rounded to integers, as a list (runs downstream nodes once each)."),
      ("FLOAT", "floats", "The values as floats, as a list."),
      ("INT", "count", "How many values."))
class MetaVSRSweepValues:
    """A list of values for a sweep: connect 'ints' or 'floats' to a widget input (JPEG quality, CRF,
    edge density, ...) and ComfyUI runs the downstream nodes once per value in one queue run; MetaVSR RD
    Curve collects the results."""
    OUTPUT_IS_LIST = (True, True, False)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"values": ("STRING", {"default": "10, 30, 50, 70, 90", "tooltip":
                             f"Comma- or space-separated numbers (at most {MAX_SWEEP}); 'ints' rounds them."})}}

    def run(self, values):
        parts = [p for p in str(values).replace(",", " ").replace(";", " ").split() if p]
        if not parts:
            raise _check.MetaVSRInputError("values: give at least one number, e.g. '10, 30, 50'.")
        if len(parts) > MAX_SWEEP:
            raise _check.MetaVSRInputError(f"values: {len(parts)} values; a sweep takes at most {MAX_SWEEP}.")
        floats = [_check.number(f"values[{i}]", p) for i, p in enumerate(parts)]
        return ([int(round(v)) for v in floats], floats, len(floats))


def _first(v, default=None):
    """INPUT_IS_LIST hands every input over as a list; widgets are one-item lists."""
    if v is None:
        return default
    return v[0] if isinstance(v, (list, tuple)) and v else v


def _as_floats(name, v):
    if v is None:
        return []
    vals = list(v) if isinstance(v, (list, tuple)) else [v]
    return [_check.number(f"{name}[{i}]", x) for i, x in enumerate(vals)]


@node(CATEGORY,
      ("IMAGE", "plot", "RD plot image with BD figures in the legend."),
      ("STRING", "table", "BD table and all points (text)."))
class MetaVSRRDCurve:
    """Collects (rate, quality) points of up to 4 named series (each input may be a list from a sweep)
    and draws the rate-distortion curves, with Bjontegaard BD-rate and BD-quality of every series
    against the chosen anchor series (and their peaks: the most bits saved at matched quality, the
    largest quality gain at matched rate, as MetaSR states its results), and optionally the convex
    hull of all points."""
    INPUT_IS_LIST = True
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        req = {
            "rate_1": ("FLOAT", {"forceInput": True, "tooltip": "Rates of series 1 (e.g. total_bpp of MetaVSR Bitrate)."}),
            "quality_1": ("FLOAT", {"forceInput": True, "tooltip": "Qualities of series 1 (e.g. psnr of MetaVSR Metrics)."}),
            "name_1": ("STRING", {"default": "series 1", "tooltip": "Legend name of series 1."}),
            "anchor": ("INT", {"default": 1, "min": 1, "max": MAX_SERIES, "tooltip": "Series BD-rates are measured against."}),
            "rate_label": ("STRING", {"default": "bits per HR pixel", "tooltip": "x-axis label."}),
            "quality_label": ("STRING", {"default": "PSNR (dB)", "tooltip": "y-axis label."}),
            "higher_is_better": ("BOOLEAN", {"default": True, "tooltip":
                                 "Off for distances (LPIPS, DISTS): BD and hull then treat lower as better."}),
            "bd_method": (list(M.rd.METHODS), {"default": "pchip", "tooltip":
                          "pchip: piecewise-cubic (JVET, >= 2 points); cubic: classic polynomial fit (>= 4 points)."}),
            "log_rate": ("BOOLEAN", {"default": True, "tooltip": "Logarithmic rate axis."}),
            "show_hull": ("BOOLEAN", {"default": False, "tooltip": "Draw the convex hull of all points (best operating points)."}),
            "width": ("INT", {"default": 900, "min": 320, "max": 2400, "step": 10, "tooltip": "Plot width in pixels."}),
            "height": ("INT", {"default": 600, "min": 240, "max": 1600, "step": 10, "tooltip": "Plot height in pixels."}),
        }
        opt = {}
        for i in range(2, MAX_SERIES + 1):
            opt[f"rate_{i}"] = ("FLOAT", {"forceInput": True, "tooltip": f"Rates of series {i}."})
            opt[f"quality_{i}"] = ("FLOAT", {"forceInput": True, "tooltip": f"Qualities of series {i}."})
            opt[f"name_{i}"] = ("STRING", {"default": f"series {i}", "tooltip": f"Legend name of series {i}."})
        return {"required": req, "optional": opt}

    def run(self, **kw):
        series, slot_of = {}, {}
        for i in range(1, MAX_SERIES + 1):
            r, q = kw.get(f"rate_{i}"), kw.get(f"quality_{i}")
            if r is None and q is None:
                continue
            if r is None or q is None:
                missing = f"rate_{i}" if r is None else f"quality_{i}"
                raise _check.MetaVSRInputError(f"{missing}: series {i} needs both rate_{i} and quality_{i} connected.")
            r, q = _as_floats(f"rate_{i}", r), _as_floats(f"quality_{i}", q)
            if len(r) != len(q):
                raise _check.MetaVSRInputError(f"quality_{i}: {len(q)} values but rate_{i} has {len(r)}; both must "
                                               f"come from the same sweep.")
            if any(v <= 0 for v in r):
                raise _check.MetaVSRInputError(f"rate_{i}: rates must be > 0 (got {min(r)}).")
            if any(math.isinf(v) for v in q):
                raise _check.MetaVSRInputError(f"quality_{i}: contains inf (identical images give infinite PSNR); "
                                               f"drop that operating point.")
            name = str(_first(kw.get(f"name_{i}"), f"series {i}")).strip() or f"series {i}"
            series.setdefault(name, []).extend(zip(r, q))
            slot_of.setdefault(i, name)
        if not series:
            raise _check.MetaVSRInputError("rate_1: connect at least one series (rate_1 and quality_1).")
        anchor_slot = _check.number("anchor", _first(kw.get("anchor"), 1), 1, MAX_SERIES, integer=True)
        if anchor_slot not in slot_of:
            raise _check.MetaVSRInputError(f"anchor: series {anchor_slot} is not connected; pick one of "
                                           f"{sorted(slot_of)}.")
        anchor = slot_of[anchor_slot]
        higher = bool(_first(kw.get("higher_is_better"), True))
        method = _first(kw.get("bd_method"), "pchip")
        if method not in M.rd.METHODS:
            raise _check.MetaVSRInputError(f"bd_method: {method!r} is not one of {M.rd.METHODS}.")
        bd, rows = {}, []
        ra, qa = zip(*series[anchor])
        for name, pts in series.items():
            rb, qb = zip(*pts)
            if name == anchor:
                rows.append([name, str(len(pts)), "anchor", "anchor", "", ""])
                continue
            s = M.bd_summary((ra, qa), (rb, qb), higher, method)
            pk = M.peak_deltas((ra, qa), (rb, qb), higher, method)
            peak = ["n/a" if pk["rate_saving_percent"] is None else
                    f"{pk['rate_saving_percent']:.1f} % at {pk['rate_saving_at_quality']:.4g}",
                    "n/a" if pk["quality_gain"] is None else
                    f"{pk['quality_gain']:+.4f} at {pk['quality_gain_at_rate']:.4g}"]
            if s["rate_percent"] is not None and s["quality"] is not None:
                bd[name] = f"BD-rate {s['rate_percent']:+.2f} %, BD-Q {s['quality']:+.3f}"
                rows.append([name, str(len(pts)), f"{s['rate_percent']:+.2f} %", f"{s['quality']:+.4f}"] + peak)
            else:  # too few points, no overlap, repeated qualities: say why
                bd[name] = "BD n/a"
                rows.append([name, str(len(pts)), "n/a" if s["rate_percent"] is None else f"{s['rate_percent']:+.2f} %",
                             "n/a" if s["quality"] is None else f"{s['quality']:+.4f}"] + peak)
                note = s.get("rate_percent_note") or s.get("quality_note")
                rows.append(["", "", f"({note.removeprefix('not computed: ')})", "", "", ""])
        curves = [dict(name=f"{n} (anchor)" if n == anchor else f"{n}: {bd.get(n, 'BD n/a')}",
                       rates=[p[0] for p in pts], qualities=[p[1] for p in pts], lw=2.6 if n == anchor else 2.0,
                       ms=7) for n, pts in series.items()]
        lines = []
        if bool(_first(kw.get("show_hull"), False)):
            allpts = [(r, q, n) for n, pts in series.items() for r, q in pts]
            idx = M.hull([p[0] for p in allpts], [p[1] for p in allpts], higher)
            if len(idx) >= 2:
                curves.append(dict(name="convex hull (all points)", style="hull", rates=[allpts[i][0] for i in idx],
                                   qualities=[allpts[i][1] for i in idx]))
            lines = ["", "convex hull (best operating points):"] + [
                f"  {allpts[i][2]}: rate {allpts[i][0]:.5g}, quality {allpts[i][1]:.5g}" for i in idx]
        width = _check.number("width", _first(kw.get("width"), 900), 320, 2400, integer=True)
        height = _check.number("height", _first(kw.get("height"), 600), 240, 1600, integer=True)
        plot = torch.from_numpy(rd_image(
            curves, width, height, higher_is_better=higher, log_rate=bool(_first(kw.get("log_rate"), True)),
            xlabel=str(_first(kw.get("rate_label"), "bits per HR pixel")),
            ylabel=str(_first(kw.get("quality_label"), "PSNR (dB)")),
            title=f"Rate-distortion, BD vs anchor '{anchor}'" if anchor else "Rate-distortion").copy())[None]
        pts_lines = ["", "points (rate, quality):"] + [
            f"  {n}: " + ", ".join(f"({r:.5g}, {q:.5g})" for r, q in sorted(p)) for n, p in series.items()]
        table = (f"Bjontegaard ({method}) vs anchor '{anchor}'\n"
                 + _table(["series", "points", "BD-rate", "BD-quality", "most bits saved (at quality)",
                           "largest quality gain (at rate)"], rows) + "\n".join([""] + pts_lines + lines))
        return {"ui": {"text": [table]}, "result": (plot, table)}


# ---------------------------------------------------------------------------------------------------
# comparison views

def _font(size):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def auto_font_size(width: int) -> int:
    """Caption size for a panel ``width`` px wide: readable when the whole grid is scaled down to a
    screen (a 1956 px grid of 5 panels shown at 1000 px still gets ~8 px letters)."""
    return int(min(160, max(14, width // 24)))


def _text_bar(text, width, height, size, fg=(255, 255, 255), bg=(24, 24, 24)) -> np.ndarray:
    """A caption strip [height,width,3] float 0..1 with ``text`` left-aligned (Pillow default font),
    the font shrunk until the text fits the strip."""
    from PIL import Image, ImageDraw
    im = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(im)
    margin = max(6, size // 3)
    font = _font(size)
    fits = lambda t: not hasattr(font, "getlength") or font.getlength(t) <= width - 2 * margin
    while size > 8 and not fits(text):
        size = max(8, int(size * 0.9))
        font = _font(size)
    while len(text) > 1 and not fits(text):  # even the smallest type is too wide: cut it
        text = text[:-2] + "\u2026"
    top, bottom = (d.textbbox((0, 0), text, font=font)[1::2] if text else (0, size))
    d.text((margin, (height - (bottom - top)) // 2 - top), text, fill=fg, font=font)
    return np.asarray(im, dtype=np.float32) / 255.0


def _resize(img: torch.Tensor, h: int, w: int, method: str) -> torch.Tensor:
    """[T,H,W,C] -> [T,h,w,C]; 'nearest' keeps pixels honest (LR shown blocky), 'bicubic' smooths."""
    if img.shape[1:3] == (h, w):
        return img
    x = img.permute(0, 3, 1, 2)
    if method == "nearest":
        x = F.interpolate(x, size=(h, w), mode="nearest-exact")
    else:
        x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    return x.permute(0, 2, 3, 1).contiguous()


def _frames_of(named):
    """Common frame count of several clips; 1-frame inputs are broadcast."""
    counts = {n: int(t.shape[0]) for n, t in named}
    t = max(counts.values())
    for n, c in counts.items():
        if c not in (1, t):
            raise _check.MetaVSRInputError(f"{n}: has {c} frames but another input has {t}; give clips of equal "
                                           f"length (or single images).")
    return t


def _crop_box(h, w, cx, cy, size):
    """Square crop (side = size * min(h, w)) centred at fractions (cx, cy), kept inside the frame."""
    side = max(4, int(round(size * min(h, w))))
    x0 = int(round(cx * w - side / 2))
    y0 = int(round(cy * h - side / 2))
    x0 = min(max(x0, 0), w - side)
    y0 = min(max(y0, 0), h - side)
    return x0, y0, side


def _draw_rect(tile: np.ndarray, x0, y0, side, colour, thick=2):
    c = np.asarray(colour, dtype=np.float32)
    x1, y1 = x0 + side - 1, y0 + side - 1
    tile[y0:y0 + thick, x0:x1 + 1] = c
    tile[y1 - thick + 1:y1 + 1, x0:x1 + 1] = c
    tile[y0:y1 + 1, x0:x0 + thick] = c
    tile[y0:y1 + 1, x1 - thick + 1:x1 + 1] = c


@node(CATEGORY, ("IMAGE", "grid", "The grid image (one per frame for clips)."))
class MetaVSRComparisonGrid:
    """Side-by-side grid of up to 6 images or clips with captions, optionally with a zoomed crop of the
    same region under each (region given as fractions, so LR and HR inputs show the same content).
    Inputs of different sizes are resized to the largest one."""

    @classmethod
    def INPUT_TYPES(cls):
        opt = {f"images_{i}": ("IMAGE", {"tooltip": f"Panel {i} (image or clip)."})
               for i in range(1, MAX_GRID_INPUTS + 1)}
        return {
            "required": {
                "captions": ("STRING", {"default": "HR\nA\nB", "multiline": True, "tooltip":
                             "One caption per line, in the order of the connected inputs."}),
                "columns": ("INT", {"default": 0, "min": 0, "max": MAX_GRID_INPUTS, "tooltip":
                            "Panels per row; 0 = all in one row."}),
                "resize": (["nearest", "bicubic"], {"default": "nearest", "tooltip":
                           "How smaller inputs are enlarged to the largest size."}),
                "zoom_size": ("FLOAT", {"default": 0.25, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                              "Side of the zoomed square as a fraction of the shorter side; 0 = no zoom panel."}),
                "zoom_x": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                           "Horizontal centre of the zoomed region (fraction of width)."}),
                "zoom_y": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                           "Vertical centre of the zoomed region (fraction of height)."}),
                "font_size": ("INT", {"default": 0, "min": 0, "max": 160, "tooltip":
                              "Caption font size in pixels; 0 = scaled to the panel (about 1/24 of its width, "
                              "so captions stay readable when the grid is shown smaller). Captions that do not "
                              "fit a panel are shrunk to fit."}),
            },
            "optional": opt,
        }

    def run(self, captions="", columns=0, resize="nearest", zoom_size=0.25, zoom_x=0.5, zoom_y=0.5,
            font_size=18, **inputs):
        named = [(f"images_{i}", inputs[f"images_{i}"]) for i in range(1, MAX_GRID_INPUTS + 1)
                 if inputs.get(f"images_{i}") is not None]
        if not named:
            raise _check.MetaVSRInputError("images_1: connect at least one image input.")
        named = [(n, _check.image(n, v, channels=(1, 3), min_size=4)) for n, v in named]
        named = [(n, v.expand(-1, -1, -1, 3) if v.shape[-1] == 1 else v) for n, v in named]
        zs = _check.number("zoom_size", zoom_size, 0.0, 1.0)
        zx, zy = _check.number("zoom_x", zoom_x, 0.0, 1.0), _check.number("zoom_y", zoom_y, 0.0, 1.0)
        fs = _check.number("font_size", font_size, 0, 160, integer=True)
        cols = _check.number("columns", columns, 0, MAX_GRID_INPUTS, integer=True) or len(named)
        if resize not in ("nearest", "bicubic"):
            raise _check.MetaVSRInputError(f"resize: {resize!r} is not nearest or bicubic.")
        t = _frames_of(named)
        h = max(int(v.shape[1]) for _, v in named)
        w = max(int(v.shape[2]) for _, v in named)
        caps = str(captions).split("\n")
        n = len(named)
        rows = -(-n // cols)
        fs = fs or auto_font_size(w)
        pad, cap_h = max(6, w // 160), fs + fs // 2 + 6
        zoom_h = w if zs > 0 else 0  # the zoom panel is square, as wide as the tile
        cell_h = cap_h + h + (pad + zoom_h if zs > 0 else 0)
        gh, gw = pad + rows * (cell_h + pad), pad + cols * (w + pad)
        if t * gh * gw * 3 * 4 > MAX_OUTPUT_BYTES:
            raise _check.MetaVSRInputError(
                f"images_1: the grid would be {t} x {gw}x{gh} pixels (> 2 GiB); compare fewer frames (select a "
                f"few with an image-batch node) or smaller crops.")
        clips = [_resize(v, h, w, resize) for _, v in named]
        box = _crop_box(h, w, zx, zy, zs) if zs > 0 else None
        bars = [_text_bar(caps[i] if i < len(caps) else "", w, cap_h, fs) for i in range(n)]
        out = np.full((t, gh, gw, 3), 0.12, dtype=np.float32)
        colour = (1.0, 0.85, 0.1)
        progress = Progress(t)
        for f in range(t):
            for i, clip in enumerate(clips):
                r, c = divmod(i, cols)
                y0, x0 = pad + r * (cell_h + pad), pad + c * (w + pad)
                tile = clip[min(f, clip.shape[0] - 1)].numpy().copy()
                out[f, y0:y0 + cap_h, x0:x0 + w] = bars[i]
                if box is not None:
                    bx, by, side = box
                    crop = torch.from_numpy(tile[by:by + side, bx:bx + side].copy())[None]
                    z = _resize(crop, zoom_h, w, "nearest" if resize == "nearest" else "bicubic")[0].numpy()
                    _draw_rect(tile, bx, by, side, colour, thick=max(1, min(h, w) // 200 + 1))
                    zy0 = y0 + cap_h + h + pad
                    out[f, zy0:zy0 + zoom_h, x0:x0 + w] = z
                out[f, y0 + cap_h:y0 + cap_h + h, x0:x0 + w] = tile
            progress.update()
        return (torch.from_numpy(out),)


def _save_previews(images: torch.Tensor, prefix: str) -> list:
    """Write frames as PNG where ComfyUI serves temporary previews; return the UI image records.

    Outside ComfyUI (tests, scripts) the files go to the system temp folder.
    """
    root, kind = temp_dir(), "temp"
    os.makedirs(root, exist_ok=True)
    records = []
    for i in range(min(images.shape[0], MAX_PREVIEW_FRAMES)):
        fd, path = tempfile.mkstemp(prefix=f"metavsr_{prefix}_", suffix=".png", dir=root)
        os.close(fd)  # reserves a unique name; the image replaces it whole (never a half PNG)
        save_image(path, to_pil(images[i]), compress_level=1)
        records.append({"filename": os.path.basename(path), "subfolder": "", "type": kind})
    return records


@node(CATEGORY, ("IMAGE", "split_view", "A left of the split, B right, with labels (one per frame)."))
class MetaVSRABCompare:
    """A/B view of two images or clips: sends them to ComfyUI's image-compare slider widget (a_images /
    b_images) and outputs a split view (A left of the split, B right) that any preview node shows. B is
    resized to A's size if needed."""
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image_a": ("IMAGE", {"tooltip": "A (e.g. without metadata)."}),
                "image_b": ("IMAGE", {"tooltip": "B (e.g. with metadata)."}),
                "split": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                          "Position of the split in the split_view output (fraction of the width)."}),
                "label_a": ("STRING", {"default": "A", "tooltip": "Label drawn top-left."}),
                "label_b": ("STRING", {"default": "B", "tooltip": "Label drawn top-right."}),
            },
            # the frontend's native compare slider renders for an IMAGECOMPARE widget (ComfyUI >= 0.3.66)
            "optional": {"compare_view": ("IMAGECOMPARE", {"socketless": True, "tooltip":
                                         "Slider view of A and B (shown after a run)."})},
        }

    def run(self, image_a, image_b, split=0.5, label_a="A", label_b="B", compare_view=None):
        a = _check.image("image_a", image_a, channels=(3,), min_size=2)
        b = _check.image("image_b", image_b, channels=(3,), min_size=2)
        s = _check.number("split", split, 0.0, 1.0)
        t = _frames_of([("image_a", a), ("image_b", b)])
        h, w = int(a.shape[1]), int(a.shape[2])
        b = _resize(b, h, w, "nearest")
        a, b = a.expand(t, -1, -1, -1), b.expand(t, -1, -1, -1)
        xs = int(round(s * w))
        view = torch.cat([a[:, :, :xs], b[:, :, xs:]], dim=2).clone()
        line = max(1, w // 400 + 1)
        view[:, :, max(0, xs - line // 2 - 1):min(w, xs + line // 2 + 1)] = 1.0
        fs = max(10, min(h, w) // 24)
        for text, left in ((str(label_a), True), (str(label_b), False)):
            if not text:
                continue
            tw = min(w // 2, int(len(text) * fs * 0.62) + 14)
            bar = torch.from_numpy(_text_bar(text, tw, fs + 10, fs))
            bh = min(bar.shape[0], h)
            x0 = 0 if left else w - tw
            view[:, :bh, x0:x0 + tw] = bar[:bh]
        ui = {"a_images": _save_previews(a, "a"), "b_images": _save_previews(b, "b")}
        return {"ui": ui, "result": (view,)}


def _parse_colour(text: str):
    t = str(text).strip().lstrip("#")
    named = {"red": "ff2020", "green": "20e020", "blue": "2080ff", "yellow": "ffe020", "magenta": "ff20ff",
             "cyan": "20ffff", "white": "ffffff", "black": "000000"}
    t = named.get(t.lower(), t)
    if len(t) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in t):
        raise _check.MetaVSRInputError(f"color: {text!r} is not a colour; use #rrggbb (e.g. #ff2020) or a name "
                                       f"({', '.join(named)}).")
    return tuple(int(t[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


@node(CATEGORY, ("IMAGE", "images", "Frames with the map drawn over them."))
class MetaVSREdgeOverlay:
    """Draws a metadata map (edge MASK, 1 = edge) over an image in a chosen colour, to see what the
    sender transmitted. A mask of another size is scaled to the image (nearest)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Background frames."}),
                "mask": ("MASK", {"tooltip": "Edge/metadata map, 0..1 (1 = drawn)."}),
                "color": ("STRING", {"default": "#ff2020", "tooltip": "#rrggbb or red/green/blue/yellow/magenta/cyan/white/black."}),
                "opacity": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                            "1 = solid colour where the mask is 1."}),
            },
        }

    def run(self, images, mask, color="#ff2020", opacity=1.0):
        x = _check.image("images", images, channels=(3,))
        m = _check.mask("mask", mask)
        a = _check.number("opacity", opacity, 0.0, 1.0)
        col = torch.tensor(_parse_colour(color), dtype=torch.float32)
        t = _frames_of([("images", x), ("mask", m)])
        h, w = int(x.shape[1]), int(x.shape[2])
        mh, mw = int(m.shape[1]), int(m.shape[2])
        if (mh, mw) != (h, w):
            if abs(mh / mw - h / w) > 0.02:
                raise _check.MetaVSRInputError(f"mask: is {mw}x{mh} but images are {w}x{h} (different aspect "
                                               f"ratio); compute the metadata on these frames or crop them alike.")
            m = F.interpolate(m[:, None], size=(h, w), mode="nearest-exact")[:, 0]
        m = (m * a).expand(t, -1, -1)[..., None]
        return ((x.expand(t, -1, -1, -1) * (1 - m) + col * m).contiguous(),)


NODE_CLASS_MAPPINGS = {
    "MetaVSRMetrics": MetaVSRMetrics,
    "MetaVSRTemporalMetrics": MetaVSRTemporalMetrics,
    "MetaVSRSweepValues": MetaVSRSweepValues,
    "MetaVSRRDCurve": MetaVSRRDCurve,
    "MetaVSRComparisonGrid": MetaVSRComparisonGrid,
    "MetaVSRABCompare": MetaVSRABCompare,
    "MetaVSREdgeOverlay": MetaVSREdgeOverlay,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MetaVSRMetrics": "MetaVSR Metrics",
    "MetaVSRTemporalMetrics": "MetaVSR Temporal Metrics",
    "MetaVSRSweepValues": "MetaVSR Sweep Values",
    "MetaVSRRDCurve": "MetaVSR RD Curve",
    "MetaVSRComparisonGrid": "MetaVSR Comparison Grid",
    "MetaVSRABCompare": "MetaVSR A/B Compare",
    "MetaVSREdgeOverlay": "MetaVSR Edge Overlay",
}
