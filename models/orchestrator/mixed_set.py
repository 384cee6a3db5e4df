"""A mixed test set for the orchestrator, made only from registry data (scikit-image's sample images,
matplotlib's DejaVu fonts) and seeded drawing, so every machine builds the same pixels:

- ``text``: lines of words rendered in DejaVu Sans / Serif, dark on a light page, light on a dark
  page, and as a subtitle band over a photo;
- ``cartoon`` (bucket ``flat``): flat-coloured shapes with dark outlines on a flat background;
- ``natural``: photo crops;
- ``lowlight`` (bucket ``low-light``): photo crops darkened as an under-exposed camera would record them (gamma 2, x 0.2);
- ``motion``: clips of a camera panning (and slowly zooming) over a photo.

``mixed_set(size, frames)`` -> ``{name: [T,H,W,3] float32}`` and ``{name: category}``. The category is
what the segment was made as; the content analysis (``models/metadata/content.py``) labels segments
on its own and the report compares the two.
"""
import os
from typing import Dict, Tuple

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# what each segment was made as, in the content analysis's bucket names
CATEGORY = {"text": "text", "cartoon": "flat", "natural": "natural", "lowlight": "low-light", "motion": "motion"}
WORDS = ("the quick brown fox jumps over a lazy dog while metadata helps super resolution of video "
         "frames sent at low rate with sharp edges coded losslessly").split()


def _font(name: str, size: int):
    import matplotlib
    path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", name)
    return ImageFont.truetype(path, size)


def _photo(name: str) -> np.ndarray:
    import skimage.data
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return img[..., :3].astype(np.float32) / 255.0


def _crop(img: np.ndarray, size: int, fy: float = 0.5, fx: float = 0.5) -> np.ndarray:
    h, w = img.shape[:2]
    if min(h, w) < size:
        s = size / min(h, w)
        img = cv2.resize(img, (int(np.ceil(w * s)), int(np.ceil(h * s))), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
    y, x = int((h - size) * fy), int((w - size) * fx)
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def text_page(size: int, font: str, px: int, ink, paper, seed: int) -> np.ndarray:
    """Lines of words on a flat page: ``[size,size,3]`` float32."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), tuple(paper))
    d = ImageDraw.Draw(im)
    f = _font(font, px)
    y = px // 2
    while y < size - px:
        d.text((px // 2, y), " ".join(rng.choice(WORDS, 8)), fill=tuple(ink), font=f)
        y += int(px * 1.5)
    return np.asarray(im, dtype=np.float32) / 255.0


def subtitle(photo: np.ndarray, px: int, seed: int) -> np.ndarray:
    """Two lines of white subtitles with a dark outline over the lower part of a photo."""
    rng = np.random.default_rng(seed)
    im = Image.fromarray((photo * 255).round().astype(np.uint8))
    d = ImageDraw.Draw(im)
    f = _font("DejaVuSans-Bold.ttf", px)
    h = photo.shape[0]
    for i in range(2):
        d.text((px // 2, h - (2 - i) * int(px * 1.4) - px // 2), " ".join(rng.choice(WORDS, 5)),
               fill=(255, 255, 255), font=f, stroke_width=max(1, px // 12), stroke_fill=(0, 0, 0))
    return np.asarray(im, dtype=np.float32) / 255.0


def cartoon(size: int, seed: int) -> np.ndarray:
    """Flat-filled ellipses, rectangles and polygons with dark outlines: ``[size,size,3]``."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(120, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(10):
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = rng.integers(-size // 8, size, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        shape = rng.integers(3)
        width = int(rng.integers(1, 4))
        if shape == 0:
            d.ellipse(box, fill=fill, outline=(20, 20, 20), width=width)
        elif shape == 1:
            d.rectangle(box, fill=fill, outline=(20, 20, 20), width=width)
        else:
            pts = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(int(rng.integers(3, 6)))]
            d.polygon(pts, fill=fill, outline=(20, 20, 20), width=width)
    return np.asarray(im, dtype=np.float32) / 255.0


def low_light(photo: np.ndarray) -> np.ndarray:
    return np.clip(0.2 * photo ** 2.0, 0, 1).astype(np.float32)


def pan_clip(photo: np.ndarray, size: int, frames: int, step: float, zoom: float = 0.004) -> np.ndarray:
    """A camera panning ``step`` px per frame (and zooming by ``zoom`` per frame) over ``photo``."""
    h, w = photo.shape[:2]
    out = []
    for t in range(frames):
        s = 1.0 + zoom * t
        cx, cy = w / 2 - step * (frames / 2 - t), h / 2 - 0.5 * step * (frames / 2 - t)
        m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)
        out.append(cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return np.clip(np.stack(out), 0, 1).astype(np.float32)


def mixed_set(size: int = 192, frames: int = 4, quick: bool = False
              ) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """``({name: [T,size,size,3] float32}, {name: category})``; ``quick`` keeps two segments per
    category. ``size`` is a multiple of 4 (the x4 link)."""
    if size % 4 or size < 64:
        raise ValueError(f"mixed set: size must be a multiple of 4 and at least 64, got {size}")
    px = max(10, size // 14)
    astro, coffee, chelsea, rocket = (_photo(n) for n in ("astronaut", "coffee", "chelsea", "rocket"))
    camera = _photo("camera")
    seg = {
        "text-sans-dark-on-light": text_page(size, "DejaVuSans.ttf", px, (25, 25, 25), (235, 232, 225), 0),
        "text-serif-light-on-dark": text_page(size, "DejaVuSerif.ttf", px, (240, 240, 240), (30, 40, 70), 1),
        "text-subtitle-coffee": subtitle(_crop(coffee, size, 0.4, 0.5), px, 2),
        "text-serif-small": text_page(size, "DejaVuSerif.ttf", max(9, px * 3 // 4), (0, 0, 0), (255, 255, 255), 3),
        "cartoon-0": cartoon(size, 0), "cartoon-1": cartoon(size, 1),
        "cartoon-2": cartoon(size, 2), "cartoon-3": cartoon(size, 3),
        "natural-astronaut": _crop(astro, size, 0.25, 0.45), "natural-chelsea": _crop(chelsea, size, 0.4, 0.6),
        "natural-rocket": _crop(rocket, size, 0.5, 0.3), "natural-camera": _crop(camera, size, 0.3, 0.5),
        "lowlight-coffee": low_light(_crop(coffee, size, 0.7, 0.2)),
        "lowlight-astronaut": low_light(_crop(astro, size, 0.7, 0.6)),
        "lowlight-chelsea": low_light(_crop(chelsea, size, 0.2, 0.3)),
        "motion-rocket": pan_clip(rocket, size, frames, 4.0),
        "motion-astronaut": pan_clip(astro, size, frames, 3.0),
        "motion-coffee": pan_clip(coffee, size, frames, 5.0),
    }
    if quick:
        keep = {}
        for name in seg:
            cat = name.split("-")[0]
            if sum(1 for k in keep if k.split("-")[0] == cat) < 2:
                keep[name] = seg[name]
        seg = keep
    frames_ = {n: (v if v.ndim == 4 else v[None]).astype(np.float32) for n, v in seg.items()}
    return frames_, {n: CATEGORY[n.split("-")[0]] for n in frames_}
