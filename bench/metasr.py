"""Seconds per frame and peak GPU memory of the CogVideoX one-step SR (MetaSR / DOVE) pipeline.

    python bench/metasr.py --model ComfyUI/models/diffusers/DOVE          # a real folder
    python bench/metasr.py --random 2b                                    # CogVideoX-2B-shaped random weights

Random weights give the same speed and memory as trained ones (no value changes the work done).
Cases are ``FRAMESxWIDTHxHEIGHT[:K]`` of the LR input, K = number of metadata maps (default 0).
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _pack import load_pack  # noqa: E402

load_pack("metavsr")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import cogvideox_fixtures as configs  # noqa: E402  (random-weight folders of the published shapes)
from metavsr.models.receivers.cogvideox import load  # noqa: E402
from metavsr.models.receivers.cogvideox.pipeline import DEFAULT_OPTIONS, MetaSRPipeline  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def random_pipeline(preset, dtype, device, offload):
    transformer, vae, scheduler = configs.build_random(preset, device=device, dtype=dtype)
    cfg = transformer.config
    emb = torch.zeros(1, cfg.max_text_seq_length, cfg.text_embed_dim, dtype=dtype)
    return MetaSRPipeline(transformer, vae, scheduler, emb, device=device, dtype=dtype,
                          offload=offload, name=f"random-{preset}")


def run_case(pipe, frames, w, h, k, device, options):
    lr = torch.rand(frames, h, w, 3)
    maps = [torch.rand(frames, 4 * h, 4 * w, 1) for _ in range(k)]
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = pipe(lr, maps, options=options)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else float("nan")
    assert out.shape == (frames, 4 * h, 4 * w, 3)
    return dt, peak


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="diffusers folder (CogVideoX / DOVE / MetaSR)")
    src.add_argument("--random", choices=sorted(configs.PRESETS), help="random weights of a preset's shapes")
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--offload", default="none", choices=["none", "model", "sequential"])
    ap.add_argument("--cases", nargs="+", default=["33x320x180", "33x320x180:2", "17x160x96", "9x320x180"])
    ap.add_argument("--tile", type=int, default=None, help="DiT tile in output pixels (0 = off)")
    ap.add_argument("--chunk", type=int, default=None, help="DiT chunk in output frames (0 = off)")
    ap.add_argument("--no-vae-tiling", action="store_true")
    ap.add_argument("--warmup", default="9x64x64", help="a small case run first and not reported")
    args = ap.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = DTYPES[args.dtype]
    if args.model:
        pipe = load(args.model, dtype=dtype, device=device, offload=args.offload)
    else:
        pipe = random_pipeline(args.random, dtype, device, args.offload)
    options = DEFAULT_OPTIONS.replace(vae_tiling=not args.no_vae_tiling)
    if args.tile is not None:
        options = options.replace(tile=args.tile, tile_overlap=min(options.tile_overlap, max(args.tile - 16, 0)))
    if args.chunk is not None:
        options = options.replace(chunk=args.chunk, chunk_overlap=min(options.chunk_overlap, max(args.chunk - 1, 0)))
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"# {pipe.name} on {name}, {args.dtype}, offload={args.offload}, tile={options.tile}/{options.tile_overlap}px, "
          f"chunk={options.chunk}/{options.chunk_overlap}f, vae_tiling={options.vae_tiling}", flush=True)
    if args.warmup:
        f, w, h = map(int, args.warmup.split("x"))
        run_case(pipe, f, w, h, 0, device, options)
    print("| LR input | output | frames | metadata maps | DiT windows | seconds | s/frame | peak GiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for case in args.cases:
        spec, _, k = case.partition(":")
        f, w, h = map(int, spec.split("x"))
        k = int(k or 0)
        dt, peak = run_case(pipe, f, w, h, k, device, options)
        print(f"| {w}x{h} | {4 * w}x{4 * h} | {f} | {k} | {pipe.count_windows(f, h, w, options)} | {dt:.2f} | "
              f"{dt / f:.3f} | {peak:.2f} |", flush=True)


if __name__ == "__main__":
    main()
