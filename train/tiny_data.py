"""Training data recipe for the embedded receiver: images, synthetic renders, sender degradations.

Sources (never the scikit-image sample images, which are the evaluation set):
  * every still image (first frame of animations) in the MIT-licensed
    ``comfyui-workflow-templates-media-{image,video,other}`` wheels, unpacked with ``unzip``;
  * synthetic renders drawn here: text in the system's TrueType fonts, line art, flat cartoons.

``prepare_folder`` writes them once (resized so the longer side is at most ``max_side``, JPEG q95 for
photos, PNG for renders) into one folder that travels to the training machine; ``sample_pair`` then
turns a random HR crop into exactly what the sender nodes transmit: bicubic x4 downscale, JPEG at a
random quality, the channel (NN / LN / HN or in between) on top of the decoded base layer, and, for
a random share of samples, a Canny edge map of the HR crop (random thresholds, optionally thinned
or coded at half resolution and nearest-neighbour upscaled, as the edge-rate options do).
"""
import glob
import os

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from metavsr.models.codec.degrade import REGIMES, channel_degrade
from metavsr.models.codec.jpeg import jpeg_decode, jpeg_encode
from metavsr.models.codec.resize import downscale
from metavsr.models.metadata import edge_rate
from metavsr.models.metadata.canny import canny_edges

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.fonts"))


# ---------------------------------------------------------------- sources
def _ahash(img: np.ndarray) -> np.ndarray:
    """64-bit average hash of an RGB uint8 image (for excluding evaluation images)."""
    g = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (8, 8), interpolation=cv2.INTER_AREA)
    return (g > g.mean()).ravel()


def evaluation_hashes():
    """Average hashes of the scikit-image sample images (the evaluation set) and their flips."""
    from skimage import data
    hashes = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "text", "page", "moon",
                 "coins", "horse", "hubble_deep_field", "immunohistochemistry", "retina"):
        try:
            img = getattr(data, name)()
        except Exception:
            continue
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        img = np.ascontiguousarray(img[..., :3]).astype(np.uint8)
        for v in (img, img[:, ::-1], img[::-1]):
            hashes.append(_ahash(np.ascontiguousarray(v)))
    return hashes


def _load_rgb(path: str):
    try:
        im = Image.open(path)
        im.seek(0)
        return np.asarray(im.convert("RGB"))
    except Exception:
        return None


def media_images(media_dirs, min_side: int = 128):
    """Paths of usable still images under ``media_dirs`` (sorted, so the recipe is reproducible)."""
    paths = []
    for d in media_dirs:
        for p in glob.glob(os.path.join(d, "**", "*"), recursive=True):
            if p.lower().endswith(IMAGE_EXTS):
                paths.append(p)
    return sorted(paths)


def _fonts():
    out = []
    for d in FONT_DIRS:
        out += glob.glob(os.path.join(d, "**", "*.ttf"), recursive=True)
    return sorted(out)


def _colour(rng, dark=None):
    c = rng.integers(0, 256, 3)
    if dark is True:
        c = c // 3
    elif dark is False:
        c = 170 + c // 3
    return tuple(int(v) for v in c)


def render_text(rng, size: int, fonts) -> np.ndarray:
    """Lines of random text (letters, digits, punctuation) in random fonts, sizes and colours."""
    light_bg = rng.random() < 0.7
    img = Image.new("RGB", (size, size), _colour(rng, dark=not light_bg))
    draw = ImageDraw.Draw(img)
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,;:!?-+()/&%"
    y = int(rng.integers(-10, 10))
    while y < size:
        pt = int(rng.integers(9, 48))
        font = (ImageFont.truetype(fonts[rng.integers(len(fonts))], pt) if fonts
                else ImageFont.load_default())
        text = "".join(rng.choice(list(chars), int(rng.integers(5, 40))))
        draw.text((int(rng.integers(-20, 20)), y), text, fill=_colour(rng, dark=light_bg), font=font)
        y += int(pt * rng.uniform(1.0, 1.6))
    return np.asarray(img)


def render_line_art(rng, size: int) -> np.ndarray:
    """Strokes, polylines, arcs and outlined shapes on a plain background."""
    light_bg = rng.random() < 0.8
    img = Image.new("RGB", (size, size), _colour(rng, dark=not light_bg))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(8, 40))):
        col = _colour(rng, dark=light_bg)
        w = int(rng.integers(1, 5))
        kind = rng.integers(4)
        pts = [tuple(int(v) for v in rng.integers(-size // 4, size * 5 // 4, 2)) for _ in range(int(rng.integers(2, 6)))]
        if kind == 0:
            draw.line(pts, fill=col, width=w)
        elif kind == 1:
            box = sorted(rng.integers(-size // 4, size * 5 // 4, 2)), sorted(rng.integers(-size // 4, size * 5 // 4, 2))
            draw.arc([box[0][0], box[1][0], box[0][1] + 2, box[1][1] + 2], int(rng.integers(360)),
                     int(rng.integers(360)), fill=col, width=w)
        elif kind == 2 and len(pts) >= 3:
            draw.polygon(pts, outline=col, width=w)
        else:
            x0, y0 = pts[0]
            r = int(rng.integers(4, size // 3))
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], outline=col, width=w)
    return np.asarray(img)


def render_cartoon(rng, size: int) -> np.ndarray:
    """Flat-coloured filled shapes with dark outlines, as in cel-shaded cartoons and icons."""
    img = Image.new("RGB", (size, size), _colour(rng))
    draw = ImageDraw.Draw(img)
    outline = _colour(rng, dark=True)
    for _ in range(int(rng.integers(5, 25))):
        fill = _colour(rng)
        w = int(rng.integers(0, 4))
        x0, y0 = (int(v) for v in rng.integers(-size // 4, size, 2))
        dx, dy = (int(v) for v in rng.integers(8, size // 2, 2))
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([x0, y0, x0 + dx, y0 + dy], fill=fill, outline=outline, width=w)
        elif kind == 1:
            draw.rounded_rectangle([x0, y0, x0 + dx, y0 + dy], radius=int(rng.integers(0, 12)),
                                   fill=fill, outline=outline, width=w)
        else:
            pts = [(x0 + int(rng.integers(0, dx)), y0 + int(rng.integers(0, dy))) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(pts, fill=fill, outline=outline, width=max(w, 1))
    return np.asarray(img)


def prepare_folder(media_dirs, out_dir: str, n_synthetic: int = 600, max_side: int = 512,
                   synthetic_size: int = 256, seed: int = 0, log=print) -> dict:
    """Write the training images into ``out_dir``; returns counts. Skips images whose average hash
    matches a scikit-image sample image (the evaluation set) within 6 bits."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    eval_h = evaluation_hashes()
    n_photo = n_skip = 0
    for i, p in enumerate(media_images(media_dirs)):
        img = _load_rgb(p)
        if img is None or min(img.shape[:2]) < 128:
            continue
        h = _ahash(img)
        if any(int((h != e).sum()) <= 6 for e in eval_h):
            n_skip += 1
            continue
        f = max_side / max(img.shape[:2])
        if f < 1:
            img = cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_AREA)
        Image.fromarray(img).save(os.path.join(out_dir, f"photo_{i:04d}.jpg"), quality=95, subsampling=0)
        n_photo += 1
    fonts = _fonts()
    renders = (lambda r: render_text(r, synthetic_size, fonts), lambda r: render_line_art(r, synthetic_size),
               lambda r: render_cartoon(r, synthetic_size))
    for i in range(n_synthetic):
        img = renders[i % 3](rng)
        Image.fromarray(img).save(os.path.join(out_dir, f"synth_{i:04d}.png"))
    log(f"prepared {n_photo} photos ({n_skip} skipped as evaluation look-alikes) and {n_synthetic} renders in {out_dir}")
    return {"photos": n_photo, "skipped": n_skip, "synthetic": n_synthetic, "fonts": len(fonts)}


def load_folder(folder: str):
    """All training images of a prepared folder as a list of RGB uint8 arrays."""
    paths = sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(IMAGE_EXTS))
    return [img for img in (_load_rgb(p) for p in paths) if img is not None]


# ---------------------------------------------------------------- degradations
def sample_channel(rng):
    """(noise_sigma, blur_kernel, blur_sigma): the three paper regimes exactly (75 %), or a point
    on the NN -> LN -> HN path (noise and blur grow together, as in the paper's regimes)."""
    u = rng.random()
    if u < 0.75:
        return REGIMES[("NN", "LN", "HN")[int(u / 0.25)]]
    t = float(rng.uniform(0, 2.2))  # 0 = NN, 1 = LN, 2 = HN, a little beyond
    if t < 1:
        return 10.0 * t, (5 if t > 0.3 else 3), 0.8 * t
    return 10.0 + 10.0 * (t - 1), 7, 0.8 + 0.4 * (t - 1)


EDGE_MODES = {0: "plain", 1: "thinned", 2: "half-res", 3: "thinned half-res"}  # apply_edges' codings


def edge_params(rng, modes=None) -> tuple:
    """Random Canny thresholds and coding mode (0 plain, 1 thinned, 2 half resolution, 3 thinned
    and half resolution, what the main job's edge settings send) for :func:`apply_edges`; a clip
    keeps one draw for all its frames, as a sender would. ``modes``: draw the mode uniformly from
    these instead (a fine-tune for one coding)."""
    high = float(np.exp(rng.uniform(np.log(40), np.log(600))))
    low = high * float(rng.uniform(0.3, 0.6))
    if modes:
        return low, high, int(modes[int(rng.integers(len(modes)))])
    u = rng.random()
    return low, high, 1 if u < 0.15 else 2 if u < 0.3 else 3 if u < 0.6 else 0


def apply_edges(hr: np.ndarray, params: tuple) -> np.ndarray:
    """Canny edge map of ``hr`` [H,W,3] float 0..1 with :func:`edge_params` -> [H,W] uint8."""
    low, high, mode = params
    e = canny_edges(hr[None], low, high)[0]
    if mode in (1, 3):
        e = edge_rate.thin(e)
    if mode in (2, 3):  # coded at 1/2 resolution, nearest-neighbour upscaled at the receiver
        e = edge_rate.upscale(edge_rate.reduce(e, 2), 2, e.shape)
    return e


def sample_edges(hr: np.ndarray, rng, modes=None) -> np.ndarray:
    """A Canny edge map of ``hr`` [H,W,3] float 0..1 at random thresholds -> [H,W] uint8."""
    return apply_edges(hr, edge_params(rng, modes))


def sample_pair(img: np.ndarray, rng, crop: int = 160, scale: int = 4, p_edges: float = 0.6,
                quality=(10, 95), modes=None):
    """A random training example from one RGB uint8 image; JPEG quality uniform in ``quality``
    (inclusive), edge coding mode from ``modes`` (None: :func:`edge_params`' mix).

    Returns ``(lr [h,w,3] float32, edges [H,W] uint8 | None, hr [H,W,3] float32)``, H = crop.
    """
    h, w = img.shape[:2]
    if min(h, w) < crop:  # small images: enlarge (renders and thumbnails only)
        f = crop / min(h, w)
        img = cv2.resize(img, (max(crop, round(w * f)), max(crop, round(h * f))), interpolation=cv2.INTER_CUBIC)
        h, w = img.shape[:2]
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    hr = img[y:y + crop, x:x + crop]
    if rng.random() < 0.5:
        hr = hr[:, ::-1]
    hr = np.rot90(hr, int(rng.integers(4)))
    hr = np.ascontiguousarray(hr).astype(np.float32) / 255.0
    lr = downscale(hr[None], scale, "bicubic" if rng.random() < 0.85 else "area")
    lr = jpeg_decode(jpeg_encode(lr, int(rng.integers(quality[0], quality[1] + 1))))
    noise, k, sigma = sample_channel(rng)
    lr = channel_degrade(lr, noise, k, sigma, seed=int(rng.integers(1 << 31)))[0]
    edges = sample_edges(hr, rng, modes) if rng.random() < p_edges else None
    return lr, edges, hr
