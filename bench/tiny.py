"""Speed of the embedded receiver on this machine's CPU (target: a 512x512 output in < 2 s on 2 cores).

    python bench/tiny.py [--threads 2] [--repeats 3]

Prints one row per output size: median seconds with and without the edge map, and the tile count.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    args = ap.parse_args()
    load_pack("metavsr")
    import torch
    from metavsr.models.receivers.tiny.receiver import DEFAULT_WEIGHTS, load_embedded

    torch.set_num_threads(args.threads)
    model = load_embedded()
    params = sum(p.numel() for p in model.net.parameters())
    print(f"embedded receiver: {params / 1e6:.2f} M parameters, {os.path.getsize(DEFAULT_WEIGHTS) / 1e6:.1f} MB, "
          f"torch {torch.__version__}, {args.threads} thread(s), tile {model.tile} LR px")
    print(f"{'output':>11} | {'pixel-only s':>12} | {'with edges s':>12} | {'tiles':>5} | {'MP/s':>5}")
    print("-" * 60)
    for size in args.sizes:
        lr = torch.rand(1, size // 4, size // 4, 3)
        edges = {"edges": (torch.rand(1, size, size, 1) > 0.95).float()}
        model.upscale(lr)  # warm-up (allocator, oneDNN kernels)
        tiles = []
        t_po, t_e = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            model.upscale(lr, progress=lambda d, n: tiles.append(n))
            t_po.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.upscale(lr, edges)
            t_e.append(time.perf_counter() - t)
        a, b = statistics.median(t_po), statistics.median(t_e)
        print(f"{size:>5}x{size:<5} | {a:12.3f} | {b:12.3f} | {tiles[-1]:5d} | {size * size / 1e6 / max(a, b):5.2f}")


if __name__ == "__main__":
    main()
