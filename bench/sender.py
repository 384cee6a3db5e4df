"""Per-1080p-frame timings of the sender stages on this machine, printed as a table.

    python bench/sender.py [--frames 3] [--repeat 5]

Also prints the bit-depth quality check: PSNR of the ~1000-sample K-means palette against a
K-means palette of the same size fitted on all pixels (scipy kmeans2), which must stay within 0.5 dB.
"""
import argparse
import os
import sys
import time

import cv2
import numpy as np
import skimage.data

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402

load_pack()
from metavsr.models.codec import bitdepth, jpeg, resize, video  # noqa: E402
from metavsr.models.metadata import canny  # noqa: E402


def frame1080(name="astronaut"):
    img = cv2.resize(getattr(skimage.data, name)(), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    return (img.astype(np.float32) / 255.0)[None]


def timeit(fn, repeat):
    fn()  # warm-up (numba compilation, caches)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1000 * float(np.median(ts)), 1000 * float(np.min(ts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=5, help="frames in the H.264 clip")
    a = ap.parse_args()
    x = frame1080()
    u8 = jpeg.to_uint8(x)
    book = bitdepth.fit_codebook(u8, 4)
    clip = np.repeat(x, a.frames, axis=0)
    rows = [
        ("Canny (100, 200)", lambda: canny.canny_edges(x, 100, 200), 1),
        ("patch-wise downscale x4", lambda: resize.downscale(x, 4, "patchwise"), 1),
        ("bicubic downscale x4", lambda: resize.downscale(x, 4, "bicubic"), 1),
        ("bit-depth fit (n=4, 1000 samples)", lambda: bitdepth.fit_codebook(u8, 4), 1),
        ("bit-depth assign (n=4)", lambda: bitdepth.assign(u8[0], book), 1),
        ("bit-depth fit + assign (n=4)", lambda: bitdepth.assign(u8[0], bitdepth.fit_codebook(u8, 4)), 1),
        ("bit-depth fit + assign (n=8)", lambda: bitdepth.assign(u8[0], bitdepth.fit_codebook(u8, 8)), 1),
        ("JPEG q=50 encode+decode", lambda: jpeg.jpeg_decode(jpeg.jpeg_encode(x, 50)), 1),
        (f"H.264 crf 28 medium, {a.frames} frames", lambda: video.video_encode(clip, "h264", "crf", 28), a.frames),
    ]
    print(f"1920x1080 RGB, {os.cpu_count()} CPU cores, median/min of {a.repeat} runs after warm-up")
    print(f"{'stage':<40}{'median ms/frame':>16}{'min ms/frame':>14}")
    for name, fn, frames in rows:
        med, mn = timeit(fn, a.repeat)
        print(f"{name:<40}{med / frames:>16.1f}{mn / frames:>14.1f}")

    from scipy.cluster.vq import kmeans2
    print("\nbit-depth n=4 palette quality at 1080p (PSNR dB, RGB)")
    print(f"{'image':<12}{'1000 samples':>14}{'all pixels':>12}{'gap':>8}")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        f = frame1080(name)
        q, _ = bitdepth.quantize(f, 4)
        flat = jpeg.to_uint8(f).reshape(-1, 3).astype(np.float64)
        c, lab = kmeans2(flat, 16, minit="++", seed=0, iter=30)
        p_s = 10 * np.log10(1 / np.mean((q.reshape(-1, 3) - f.reshape(-1, 3)) ** 2))
        p_a = 10 * np.log10(1 / np.mean((c[lab] / 255 - f.reshape(-1, 3)) ** 2))
        print(f"{name:<12}{p_s:>14.2f}{p_a:>12.2f}{p_a - p_s:>8.2f}")


if __name__ == "__main__":
    main()
