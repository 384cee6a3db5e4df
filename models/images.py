"""Input images for the main job and scripts: files of any mode at their full bit depth, the
scikit-image evaluation set, distinct names, and the crops the x4 sender needs.

Images are ``[H,W,3]`` float32 0..1.
"""
import os
from typing import Dict, List, Sequence

import numpy as np

EVAL_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "text")


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
