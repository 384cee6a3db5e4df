"""The main job's side-by-side picture: HR crop, bicubic, pixel-only, with edges (at no more bits),
and the decoded edge map, at a matched operating point of one image."""
import numpy as np

from ..atomic import save_image
from ..codec.jpeg import to_uint8
from ..metrics import hull


def _hull_points(points, key="psnr"):
    idx = hull([p["bpp"] for p in points], [p[key] for p in points])
    return [points[i] for i in idx]


def matched_pair(report: dict, regime: str, image: str):
    """For the side-by-side: the with-edges hull point of ``image`` with the best PSNR gain over the
    pixel-only point of the same or higher total rate (pixel-only gets at least as many bits)."""
    r = report["regimes"][regime]["points_per_image"]
    po = sorted(r["pixel_only"][image], key=lambda p: p["bits"])
    best = None
    for p in _hull_points(r["with_edges"][image]):
        richer = [a for a in po if a["bits"] >= p["bits"]]
        if not richer:
            continue
        a = richer[0]
        gain = p["psnr"] - a["psnr"]
        if best is None or gain > best[0]:
            best = (gain, p, a)
    if best is None:  # every with-edges point costs more than the best pixel-only point
        p = max(_hull_points(r["with_edges"][image]), key=lambda p: -p["bits"])
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
