"""Where the embedded receiver uses the transmitted edges, and where it leaves them unused.

    python bench/edge_use.py [--weights W] [--regimes NN LN HN] [--quality 30] [--density 0.04]

On the six evaluation images the sender of the main job (x4 bicubic, JPEG at --quality, the
channel, Canny at --density thinned and coded at 1/2 resolution) feeds the still receiver with and
without the edge map. One row per image and regime:

* PSNR pixel-only -> with edges;
* the share of the squared error within 4 px of a transmitted edge, and how much of the error
  there the edges removed (``models/metrics/edge_use.py``);
* at the transmitted edge pixels, the median projected-gradient ratio of the output against the HR
  (1 = each edge drawn with its contrast and polarity, 0 = missing) and the share drawn with at
  least half its contrast, pixel-only -> with edges, and the share drawn with the wrong polarity;
* the share of those edge pixels where the received LR itself (bicubic, gradients at a 3 px scale)
  shows the right polarity: what a receiver could know without being told.

The last columns show how much of a map the receiver turns into edges. Where the LR shows the
polarity but the output does not draw the edge, a better receiver has room; part of the gap is the
map's own 1/2-resolution position (even a clean LR, NN, leaves some undrawn).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="still weights (default: the shipped file)")
    ap.add_argument("--regimes", nargs="+", default=["NN", "HN"], choices=["NN", "LN", "HN"])
    ap.add_argument("--quality", type=int, default=30)
    ap.add_argument("--density", type=float, default=0.04)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    load_pack("metavsr")
    import torch
    torch.set_num_threads(args.threads)
    from metavsr.models import experiment as ex, images as im, link
    from metavsr.models.codec.resize import upscale
    from metavsr.models.metrics.edge_use import edge_contrast, near_edge_error
    from metavsr.models.receivers.tiny.receiver import load_embedded
    model = load_embedded(args.weights) if args.weights else load_embedded()
    setting = ex.EdgeSetting(args.density, True, 2)
    print(f"receiver {model.name}, JPEG q{args.quality}, edges {setting.label}")
    print(f"{'image':>10} {'ch':>3} | {'PSNR po -> e':>14} | {'err near':>8} | {'near err cut':>12} | "
          f"{'contrast po -> e':>16} | {'drawn po -> e':>13} | {'inverted e':>10} | {'LR polarity':>11}")
    print("-" * 121)
    totals = {}
    for name, hr in im.eval_images().items():
        edges = ex.send_edges(hr, setting).received
        for regime in args.regimes:
            lr = link.send_base(hr, args.quality, regime).received
            po = link.receive(model, lr, None, ex.OPTIONS)[0]
            we = link.receive(model, lr, {"edges": edges}, ex.OPTIONS)[0]
            p0, p1 = (link.measure(x, hr, ["psnr"])["psnr"] for x in (po, we))
            n0, n1 = (near_edge_error(x, hr, edges[0]) for x in (po, we))
            c0, c1 = (edge_contrast(x, hr, edges[0]) for x in (po, we))
            shown = 1 - edge_contrast(upscale(lr, link.SCALE, "bicubic")[0], hr, edges[0], sigma=3.0)["wrong_polarity"]
            cut = 1 - n1["mse_near"] / n0["mse_near"]
            row = (p0, p1, n0["share"], cut, c0["median"], c1["median"], c0["reproduced"], c1["reproduced"], c1["wrong_polarity"], shown)
            totals.setdefault(regime, []).append(row)
            print(f"{name:>10} {regime:>3} | {p0:6.2f} -> {p1:5.2f} | {n0['share']:7.0%} | {cut:11.0%} | "
                  f"{c0['median']:6.2f} -> {c1['median']:5.2f} | {c0['reproduced']:4.0%} -> {c1['reproduced']:4.0%} | "
                  f"{c1['wrong_polarity']:10.0%} | {shown:11.0%}")
    print("-" * 121)
    for regime, rows in totals.items():
        m = np.mean(rows, axis=0)
        print(f"{'mean':>10} {regime:>3} | {m[0]:6.2f} -> {m[1]:5.2f} | {m[2]:7.0%} | {m[3]:11.0%} | "
              f"{m[4]:6.2f} -> {m[5]:5.2f} | {m[6]:4.0%} -> {m[7]:4.0%} | {m[8]:10.0%} | {m[9]:11.0%}")


if __name__ == "__main__":
    main()
