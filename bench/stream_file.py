"""Memory and speed of a video file streamed through the embedded receiver (models/video_file.py).

    python bench/stream_file.py [--frames 60 600] [--size 160x90] [--threads 2] [--chunk 16 --overlap 4]

For each frame count a clip of a smooth moving random pattern is written with PyAV to /tmp, then a
fresh process (so its peak memory is its own) super-resolves it x4 on the CPU into an H.264 MP4
with ``upscale_file``. One row per clip: seconds, s/frame, the process's resident memory after
loading (before the run), its highest resident memory during the run (VmRSS sampled every 20 ms)
and its lifetime peak (ru_maxrss). Target: peak under 2 GB and the same for 60 and 600 frames.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _pack import load_pack  # noqa: E402


def make_clip(path: str, frames: int, w: int, h: int, fps: int = 30, seed: int = 0) -> str:
    """A smooth random pattern drifting across the frame, coded losslessly enough (x264 crf 12)."""
    import av
    import numpy as np
    rng = np.random.default_rng(seed)
    # a few random low-frequency waves per channel, each moving with its own velocity
    k = rng.normal(0, 0.08, (3, 4, 2))
    v = rng.normal(0, 1.5, (3, 4, 2))
    ph = rng.random((3, 4)) * 6.3
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c = av.open(path, "w")
    s = c.add_stream("libx264", rate=fps)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    s.options = {"crf": "12", "preset": "veryfast"}
    for i in range(frames):
        img = np.zeros((h, w, 3), np.float32)
        for ch in range(3):
            for j in range(4):
                img[..., ch] += np.sin(k[ch, j, 0] * (x - v[ch, j, 0] * i) + k[ch, j, 1] * (y - v[ch, j, 1] * i)
                                       + ph[ch, j])
        img = (0.5 + 0.12 * img).clip(0, 1)
        f = av.VideoFrame.from_ndarray((img * 255 + 0.5).astype(np.uint8), format="rgb24")
        f.pts = i
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode(None):
        c.mux(p)
    c.close()
    return path


def _vmrss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def child(args) -> None:
    """Run one clip in this (fresh) process and print a JSON line."""
    load_pack("metavsr")
    import torch
    from metavsr.models import video_file
    from metavsr.models.receivers.base import Configured, RunOptions
    from metavsr.models.receivers.tiny.receiver import load_embedded

    torch.set_num_threads(args.threads)
    model = Configured(load_embedded(), RunOptions(tile=192 * 4))  # the loader node's default tile
    model.upscale(torch.rand(1, 16, 16, 3))  # warm-up (allocator, oneDNN kernels)
    base = _vmrss_mb()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _vmrss_mb())
            stop.wait(0.02)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        info = video_file.upscale_file(model, args.child, args.out, codec=args.codec, crf=args.crf,
                                       chunk=args.chunk, overlap=args.overlap, preset=args.preset)
    finally:
        stop.set()
        t.join()
    peak[0] = max(peak[0], _vmrss_mb())
    print(json.dumps({"frames": info["frames"], "seconds": info["seconds"], "s_per_frame": info["s_per_frame"],
                      "base_mb": base, "peak_mb": peak[0],
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "size": f"{info['output']['width']}x{info['output']['height']}",
                      "bytes": info["output"]["bytes"]}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[60, 600])
    ap.add_argument("--size", default="160x90", help="LR clip size WxH (the output is x4)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--overlap", type=int, default=4)
    ap.add_argument("--codec", default="h264")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    w, h = (int(v) for v in args.size.lower().split("x"))
    print(f"embedded receiver x4 on the CPU, {args.threads} thread(s), {w}x{h} -> {4 * w}x{4 * h}, "
          f"{args.codec} crf {args.crf} preset {args.preset}, chunk {args.chunk} overlap {args.overlap}")
    print(f"{'frames':>6} | {'seconds':>8} | {'s/frame':>7} | {'RSS before MB':>13} | {'peak RSS MB':>11} | "
          f"{'ru_maxrss MB':>12} | {'output MB':>9}")
    print("-" * 86)
    for n in args.frames:
        clip = make_clip(f"/tmp/metavsr_bench_stream_{w}x{h}_{n}.mp4", n, w, h)
        out = f"/tmp/metavsr_bench_stream_{w}x{h}_{n}_x4.mp4"
        cmd = [sys.executable, os.path.abspath(__file__), "--child", clip, "--out", out,
               "--threads", str(args.threads), "--chunk", str(args.chunk), "--overlap", str(args.overlap),
               "--codec", args.codec, "--crf", str(args.crf), "--preset", args.preset]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"{n} frames failed:\n{res.stderr[-3000:]}")
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"{r['frames']:>6} | {r['seconds']:8.1f} | {r['s_per_frame']:7.3f} | {r['base_mb']:13.0f} | "
              f"{r['peak_mb']:11.0f} | {r['ru_maxrss_mb']:12.0f} | {r['bytes'] / 1e6:9.2f}", flush=True)


if __name__ == "__main__":
    main()
