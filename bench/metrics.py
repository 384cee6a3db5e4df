"""Speed of the metrics (prints a table; no assertions).

    python bench/metrics.py [--device cpu|cuda] [--sizes 512x384,1920x1080] [--frames 4]

LPIPS-VGG and DISTS run when vgg16_metrics.safetensors is found ($METAVSR_MODELS/metavsr_metrics).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _pack import load_pack  # noqa: E402

load_pack("metavsr")
from metavsr.models import metrics as M  # noqa: E402


def _clip(h, w, frames, seed=0):
    """A textured clip with slow motion and mild noise, [T,H,W,3] float 0..1."""
    import cv2
    from skimage import data
    base = cv2.resize(data.astronaut(), (w + 8 * frames, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    x = np.stack([base[:, 2 * t:2 * t + w] for t in range(frames)])
    noisy = np.clip(x + rng.normal(0, 0.03, x.shape), 0, 1).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(noisy)


def _time(fn, device, repeat=3):
    fn()  # warm-up: weight loading, cuDNN autotune
    if device.type == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", default="512x384,1920x1080")
    ap.add_argument("--frames", type=int, default=4)
    a = ap.parse_args()
    dev = torch.device(a.device)
    try:
        M.features.find_vgg()
        have_vgg = True
    except M.MissingWeightsError:
        have_vgg = False
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"torch {torch.__version__}, VGG file {'found' if have_vgg else 'absent (LPIPS-VGG/DISTS skipped)'}")
    print(f"{'metric':<14}{'size':>11}{'frames':>8}{'s total':>10}{'ms/frame':>11}  value (mean)")
    for size in a.sizes.split(","):
        w, h = map(int, size.split("x"))
        gt, out = _clip(h, w, a.frames)
        gd, od = gt.to(dev), out.to(dev)
        cases = [("psnr", lambda: M.psnr(od, gd)), ("ssim", lambda: M.ssim(od, gd)),
                 ("lpips-alex", lambda: M.lpips(od, gd, net="alex"))]
        if have_vgg:
            cases += [("lpips-vgg", lambda: M.lpips(od, gd, net="vgg")), ("dists", lambda: M.dists(od, gd))]
        cases += [("tof", lambda: M.tof(out, gt)), ("tlp-alex", lambda: M.tlp(od, gd)),
                  ("ewarp", lambda: M.ewarp(out, gt))]
        for name, fn in cases:
            s = _time(fn, dev)
            v = float(fn().float().mean())
            n = a.frames - 1 if name in ("tof", "tlp-alex", "ewarp") else a.frames
            print(f"{name:<14}{size:>11}{a.frames:>8}{s:>10.3f}{1000 * s / n:>11.1f}  {v:.4f}")


if __name__ == "__main__":
    main()
