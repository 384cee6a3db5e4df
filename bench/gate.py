"""Verification gate (models/orchestrator/gate.py): how often it accepts true edge maps and rejects
corrupted ones, on crops of scikit-image's images.

    python bench/gate.py [--crops 40] [--size 128] [--density 0.04]

Per crop: HR -> x4 antialiased bicubic LR; the sender's Canny edges at the given density (true); the
same map moved by 2, 3, 4 or 6 px in one of 8 directions (shift); random pixels at the same density
(random); the edges of a crop 6-15 px away, as a moving camera's other frame would give (other).
Two image sets: the one the thresholds were set on and held-out images. Prints acceptance rates.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TUNING = ("astronaut", "camera", "coffee")
HELD_OUT = ("chelsea", "rocket", "coins", "immunohistochemistry", "hubble_deep_field", "clock")
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def rgb(x: np.ndarray) -> np.ndarray:
    x = x if x.ndim == 3 else np.stack([x] * 3, -1)
    return x[..., :3].astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)


def cases(names, crops: int, size: int, density: float, seed: int = 0, thresholds=None):
    """{kind: [(lr [1,h,w,3], edges [1,H,W], detail)]} over ``crops`` random crops of each image."""
    import skimage.data
    from metavsr.models.codec.resize import downscale
    from metavsr.models.metadata.canny import canny_edges, canny_for_density

    def edges(frames):
        return canny_edges(frames, *thresholds) if thresholds else canny_for_density(frames, density)[0]
    rng = np.random.default_rng(seed)
    out = {"true": [], "shift": [], "random": [], "other": []}
    for name in names:
        img = rgb(getattr(skimage.data, name)())
        h, w = img.shape[:2]
        for _ in range(crops):
            y, x = int(rng.integers(16, h - size - 16)), int(rng.integers(16, w - size - 16))
            hr = img[y:y + size, x:x + size][None]
            lr = downscale(hr, 4, "bicubic")
            e = edges(hr)
            out["true"].append((lr, e, name))
            d = int(rng.choice([2, 3, 4, 6]))
            ux, uy = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
            out["shift"].append((lr, np.roll(e, (uy * d, ux * d), axis=(1, 2)), d))
            out["random"].append((lr, (rng.random(e.shape) < e.mean()).astype(np.uint8), name))
            oy, ox = (rng.integers(6, 16, size=2) * rng.choice([-1, 1], 2)).tolist()
            yy, xx = int(np.clip(y + oy, 0, h - size)), int(np.clip(x + ox, 0, w - size))
            out["other"].append((lr, edges(img[yy:yy + size, xx:xx + size][None]), name))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=int, default=40)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--density", type=float, default=0.04, help="Canny at this edge density per crop")
    ap.add_argument("--thresholds", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                    help="fixed Canny thresholds instead (MetaSR's setting, e.g. 100 200)")
    a = ap.parse_args()
    from _pack import load_pack
    load_pack()
    from metavsr.models.orchestrator import gate
    what = f"Canny {a.thresholds[0]:g}/{a.thresholds[1]:g}" if a.thresholds else f"edge density {a.density}"
    print(f"gate: level >= {gate.MIN_LEVEL}, peak >= {gate.MIN_PEAK}; {a.crops} crops of {a.size} px per image, {what}")
    print(f"{'set':>9} | {'true accepted':>13} | {'shift rejected':>14} | {'random rejected':>15} | {'other rejected':>14}"
          f" | shift rejected by px")
    for label, names in (("tuning", TUNING), ("held-out", HELD_OUT)):
        c = cases(names, a.crops, a.size, a.density, thresholds=a.thresholds)
        acc = {k: np.array([gate.check_edges(lr, e).accepted[0] for lr, e, _ in v]) for k, v in c.items()}
        by = {d: 1 - acc["shift"][[i for i, (_, _, dd) in enumerate(c["shift"]) if dd == d]].mean()
              for d in (2, 3, 4, 6)}
        print(f"{label:>9} | {acc['true'].mean():13.3f} | {1 - acc['shift'].mean():14.3f} | "
              f"{1 - acc['random'].mean():15.3f} | {1 - acc['other'].mean():14.3f} | "
              + "  ".join(f"{d}: {v:.2f}" for d, v in by.items()))


if __name__ == "__main__":
    main()
