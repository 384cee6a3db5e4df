"""Stream-DiffVSR receiver: speed and memory against the number of frames.

    python bench/stream.py [--config released|tiny] [--lr 320x180] [--frames 10 100 300]
                           [--device cuda] [--dtype fp16] [--folder PATH]

Each frame count runs in a fresh subprocess (so peak host RSS is that run's), with random weights of
the chosen shapes (``released``: the SD x4 upscaler U-Net / ControlNet and the x4 temporal tiny AE;
``tiny``: the test fixture) or a real folder (``--folder``). Prints one row per count: s/frame
(median over frames after the first), fps, first-frame latency, peak host RSS and peak device memory.
Memory that does not grow from 10 to 300 frames is the point of the streaming design.
"""
import argparse
import os
import resource
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _rows import child, resolve_device, run_child  # noqa: E402


def _one(args) -> dict:
    from _pack import load_pack
    load_pack("metavsr")
    import torch
    import stream_fixtures
    from metavsr.models.receivers.stream import load

    torch.set_num_threads(args.threads)
    folder = args.folder
    if not folder:
        folder = stream_fixtures.make_folder(os.path.join(args.tmp, args.config), seed=0, shapes=args.config)
    model = load(folder, dtype=args.dtype, device=args.device)
    w, h = map(int, args.lr.split("x"))
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, h // 4 + 1, w // 4 + 1, generator=g)
    state = model.start()
    times = []
    for i in range(args.n):
        # a smooth frame panning one LR pixel per frame: the flow has something to find
        frame = torch.nn.functional.interpolate(base, size=(h, w + args.n), mode="bicubic",
                                                align_corners=False)[0, :, :, i:i + w]
        frame = frame.permute(1, 2, 0).clamp(0, 1).contiguous()
        t = time.perf_counter()
        hr, state = model.push(state, frame, {})
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"frames": args.n, "first_s": times[0],
            "per_frame_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
            "rss": rss, "device": state["stats"]["peak_device_bytes"], "out": list(hr.shape)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="released", choices=["released", "tiny"])
    ap.add_argument("--folder", default="")
    ap.add_argument("--lr", default="320x180", help="LR frame size WxH")
    ap.add_argument("--frames", type=int, nargs="+", default=[10, 100, 300])
    ap.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES", "x") != "" else "cpu")
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tmp", default="/tmp/metavsr_bench_stream")
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if child(args, _one):
        return
    import torch
    resolve_device(args)
    w, h = map(int, args.lr.split("x"))
    print(f"Stream-DiffVSR, {args.config if not args.folder else args.folder} shapes, {w}x{h} -> {4 * w}x{4 * h}, "
          f"{args.device} {args.dtype}, torch {torch.__version__}, {args.threads} CPU thread(s)")
    print(f"{'frames':>6} | {'s/frame':>8} | {'fps':>6} | {'first s':>8} | {'peak RSS MiB':>12} | {'peak device MiB':>15}")
    print("-" * 70)
    for n in args.frames:
        r = run_child(__file__, args, n=n)
        print(f"{n:>6} | {r['per_frame_s']:8.3f} | {1 / r['per_frame_s']:6.2f} | {r['first_s']:8.3f} | "
              f"{r['rss'] / 2**20:12.0f} | {r['device'] / 2**20:15.0f}")


if __name__ == "__main__":
    main()
