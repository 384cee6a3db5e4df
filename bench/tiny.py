"""Speed of the embedded receivers on this machine's CPU: the still one (target: a 512x512 output in
under 1 s on 2 cores) and the streaming one (target: at least 5 frames/s at 640x360 output).

    python bench/tiny.py [--threads 2] [--repeats 3] [--frames 8]

Still: one row per square output size, median seconds with and without the edge map. Streaming: one
row per output size, seconds per frame over a clip of --frames frames after the first (each frame
then runs the DIS flow both ways, the warp and the network), with and without edges, and frames/s.
The frames are a pan over a scikit-image photo, so the flow has real work to do.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402


def _still(args, torch):
    from metavsr.models.receivers.tiny.receiver import DEFAULT_WEIGHTS, load_embedded
    path = args.weights or DEFAULT_WEIGHTS
    model = load_embedded(path)
    params = sum(p.numel() for p in model.net.parameters())
    print(f"still receiver {os.path.basename(path)}: {params / 1e6:.2f} M parameters, "
          f"{os.path.getsize(path) / 1e6:.1f} MB, "
          f"torch {torch.__version__}, {args.threads} thread(s)")
    print(f"{'output':>11} | {'pixel-only s':>12} | {'with edges s':>12} | {'MP/s':>5}")
    print("-" * 52)
    for size in args.sizes:
        lr = torch.rand(1, size // 4, size // 4, 3)
        edges = {"edges": (torch.rand(1, size, size, 1) > 0.95).float()}
        model.upscale(lr)  # warm-up (allocator, oneDNN kernels)
        t_po, t_e = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            model.upscale(lr)
            t_po.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.upscale(lr, edges)
            t_e.append(time.perf_counter() - t)
        a, b = statistics.median(t_po), statistics.median(t_e)
        print(f"{size:>5}x{size:<5} | {a:12.3f} | {b:12.3f} | {size * size / 1e6 / max(a, b):5.2f}")


def _stream(args, torch):
    import numpy as np
    from metavsr.models.orchestrator.mixed_set import _photo, pan_clip
    from metavsr.models.receivers.base import run_stream
    from metavsr.models.receivers.tiny_stream.receiver import DEFAULT_WEIGHTS, load_stream
    path = args.stream_weights or DEFAULT_WEIGHTS
    model = load_stream(path)
    params = sum(p.numel() for p in model.net.parameters())
    print(f"\nstreaming receiver: {params / 1e6:.2f} M parameters, {os.path.getsize(path) / 1e6:.1f} MB")
    print(f"{'output':>11} | {'pixel-only s/frame':>18} | {'with edges s/frame':>18} | {'fps':>5}")
    print("-" * 64)
    photo = _photo("astronaut")
    for w, h in args.stream_sizes:
        clip = pan_clip(photo, max(w, h) // 4, args.frames + 1, 1.5)[:, : h // 4, : w // 4]
        lr = torch.from_numpy(np.ascontiguousarray(clip))
        edges = {"edges": (torch.rand(len(lr), h, w) > 0.95).float()}
        run_stream(model, lr[:2])  # warm-up
        per = {}
        for key, meta in (("po", None), ("e", edges)):
            runs = []
            for _ in range(args.repeats):
                _, state = run_stream(model, lr[:1], None if meta is None else {"edges": meta["edges"][:1]})
                t = time.perf_counter()
                run_stream(model, lr[1:], None if meta is None else {"edges": meta["edges"][1:]}, state=state)
                runs.append((time.perf_counter() - t) / (len(lr) - 1))
            per[key] = statistics.median(runs)
        print(f"{w:>5}x{h:<5} | {per['po']:18.3f} | {per['e']:18.3f} | {1 / max(per.values()):5.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--stream-sizes", type=lambda s: tuple(int(v) for v in s.split("x")), nargs="+",
                    default=[(640, 360), (1280, 720)], help="streaming output sizes, WxH")
    ap.add_argument("--weights", default=None, help="still weights (default: the shipped file)")
    ap.add_argument("--stream-weights", default=None, help="streaming weights (default: the shipped file)")
    ap.add_argument("--skip-still", action="store_true")
    args = ap.parse_args()
    load_pack("metavsr")
    import torch
    torch.set_num_threads(args.threads)
    if not args.skip_still:
        _still(args, torch)
    _stream(args, torch)


if __name__ == "__main__":
    main()
