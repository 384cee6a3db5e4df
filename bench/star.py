"""STAR sampler: seconds per sampling step and peak memory against frames and size, ours and (with
--authors) the authors' U-Net + sampler on the same random weights in the same run.

    python bench/star.py [--config released|tiny] [--lr 426x240] [--frames 32 72] [--steps 2]
                         [--device cuda] [--dtype fp16] [--chunk 32 --chunk-overlap 16] [--tile 0]
                         [--offload none] [--authors DIR [--stubs DIR]]

Each row runs in a fresh subprocess (peak host RSS is that run's): random weights of the chosen shapes
(``released``: ``ControlledV2VUNet()``'s, 2.04 B parameters; ``tiny``: tests/star_fixtures.py), a random
LR latent of the x4 output's size / 8 as SDEdit source and hint, random [1, 77, 1024] text, CFG 7.5
(two U-Net evaluations a step) on STAR's "normal" grid with ``--steps`` steps. The VAE is not part of
it (a few % of STAR's time). ``--authors DIR``: a checkout of NJU-PCALab/STAR (its
``video_to_video/modules/unet_v2v.py`` and ``video_to_video/diffusion``), timed with their
``sample_sr`` (32-frame hard-cut chunks, no tiles, the input padded onto its canvas: 720 x 1280 for
smaller outputs) on the same weights; ``--stubs DIR`` goes on
sys.path first for machines without xformers / torchsde / fairscale (stand-ins; nothing of theirs
is part of this repository).
"""
import argparse
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.dirname(os.path.abspath(__file__))]
from _rows import child, resolve_device, run_child  # noqa: E402


def _weights(args):
    import torch
    import star_fixtures as SF
    from metavsr.models.receivers.star.unet import STARConfig, STARUNet
    cfg = STARConfig() if args.config == "released" else STARConfig(**SF.TINY)
    with torch.device("meta"):
        model = STARUNet(cfg)
    model = model.to_empty(device="cpu")
    SF.randomize_(model, torch.Generator().manual_seed(0))
    return model.eval().requires_grad_(False), cfg


def _one(args) -> dict:
    from _pack import load_pack
    load_pack("metavsr")
    import torch
    from torch import nn
    from metavsr.models.receivers.star.receiver import STAR, STARSettings
    torch.set_num_threads(args.threads)
    dt = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    dev = torch.device(args.device)
    unet, cfg = _weights(args)
    unet = unet.to(dt)
    w, h = map(int, args.lr.split("x"))
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 4, args.n, h * 4 // 8, w * 4 // 8, generator=g)
    pos, neg = torch.randn(1, 77, 1024, generator=g), torch.randn(1, 77, 1024, generator=g)
    settings = STARSettings(mode="normal", steps=args.steps, chunk=args.chunk, chunk_overlap=args.chunk_overlap,
                            tile=args.tile, tile_overlap=args.tile_overlap)
    if args.who == "authors":
        return _authors(args, unet, cfg, z, pos, neg, dt, dev)
    star = STAR(unet, nn.Identity(), pos, neg, device=dev, dtype=dt, offload=args.offload, settings=settings)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
    steps = []
    last = [time.perf_counter()]

    def cb(i, n, *_):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        steps.append(now - last[0])
        last[0] = now
    with torch.no_grad(), star._on_device(star.unet):
        t0 = time.perf_counter()
        last[0] = t0
        star.sample(z, torch.Generator().manual_seed(1), progress=lambda *a: cb(*a) if len(a) >= 3 and a[2] is not None else None,
                    done=(0, star.steps_for()))
    total = time.perf_counter() - t0
    return {"who": "ours", "frames": args.n, "steps": len(steps), "s_per_step": total / max(len(steps), 1),
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "device": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else 0,
            "params": sum(p.numel() for p in unet.parameters())}


def _their_chunks(length: int, window: int = 32, overlap: int = 16) -> list:
    """The frame windows STAR's inference uses for clips over 32 frames (its make_chunks with
    max_chunk_len 32: stride 16; the last window runs to the end once it would reach 1.25 windows)."""
    out, i = [], 0
    while i < length:
        if i + window * 1.25 >= length:
            return out + [(i, length)]
        out.append((i, i + window))
        i += window - overlap
    return out


def _their_canvas(h: int, w: int) -> tuple:
    """The canvas STAR's inference pads an h x w output onto (its pad_to_fit): 720 x 1280 when smaller,
    else the next size its U-Net passes (height 16 mod 64, width 0 mod 64)."""
    ch = 720 if h <= 720 else (h + 48) // 64 * 64 + 64 - 48
    cw = 1280 if w <= 1280 else w // 64 * 64 + 64
    return ch, cw


def _authors(args, unet, cfg, z, pos, neg, dt, dev):
    import inspect
    import torch
    sys.path[:0] = [p for p in (args.stubs, args.authors, os.path.join(args.authors, "video_to_video", "modules"))
                    if p]
    import unet_v2v as R
    from video_to_video.diffusion import solvers_sdedit
    from video_to_video.diffusion.diffusion_sdedit import GaussianDiffusion
    from video_to_video.diffusion.schedules_sdedit import noise_schedule
    if args.config != "released":   # their class takes no sizes: set its defaults (the tiny hint width too)
        for cls in (R.Vid2VidSDUNet, R.VideoControlNet):
            names = list(inspect.signature(cls.__init__).parameters)[1:]
            d = list(cls.__init__.__defaults__)
            off = len(names) - len(d)
            for k in ("dim", "num_heads", "head_dim", "context_dim"):
                d[names.index(k) - off] = getattr(cfg, k)
            cls.__init__.__defaults__ = tuple(d)
    with torch.device("meta"):
        ref = R.ControlledV2VUNet()
    ref.load_state_dict(unet.state_dict(), strict=True, assign=True)
    ref = ref.to(dev, dt).eval()

    class Draws:    # their BrownianTree noise (torchsde), replaced by plain draws
        def __init__(self, x, *a, **k):
            self.shape = x.shape

        def __call__(self, s, s1):
            return torch.randn(self.shape, device=dev)
    solvers_sdedit.BrownianTreeNoiseSampler = Draws
    diffusion = GaussianDiffusion(sigmas=noise_schedule("logsnr_cosine_interp", n=1000, zero_terminal_snr=True,
                                                        scale_min=2.0, scale_max=4.0))
    ch, cw = _their_canvas(z.shape[-2] * 8, z.shape[-1] * 8)
    b, c, f, h, w = z.shape
    z = torch.nn.functional.pad(z.flatten(1, 2), (0, cw // 8 - w, 0, ch // 8 - h), mode="replicate")
    z = z.view(b, c, f, ch // 8, cw // 8).to(dev, dt)
    kwargs = [{"y": pos.to(dev, dt)}, {"y": neg.to(dev, dt)}, {"hint": z}]
    f = z.shape[2]
    chunks = _their_chunks(f) if f > 32 else None
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    with torch.no_grad(), torch.autocast(dev.type, enabled=dev.type == "cuda"):
        diffusion.sample_sr(noise=diffusion.diffuse(z, torch.LongTensor([899]).to(dev)), model=ref,
                            model_kwargs=kwargs, guide_scale=7.5, guide_rescale=0.2, solver="dpmpp_2m_sde",
                            solver_mode="normal", steps=args.steps, t_max=899, t_min=0, discretization="trailing",
                            chunk_inds=chunks)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    n = args.steps   # their normal grid runs `steps` model steps (the penultimate dropped)
    return {"who": "authors", "frames": args.n, "steps": n, "s_per_step": total / n,
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "device": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else 0,
            "params": sum(p.numel() for p in unet.parameters())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="released", choices=["released", "tiny"])
    ap.add_argument("--lr", default="426x240", help="LR frame size WxH (output x4)")
    ap.add_argument("--frames", type=int, nargs="+", default=[32, 72])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES", "x") != "" else "cpu")
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--chunk-overlap", type=int, default=16)
    ap.add_argument("--tile", type=int, default=0)
    ap.add_argument("--tile-overlap", type=int, default=128)
    ap.add_argument("--offload", default="none", choices=["none", "model", "sequential"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--authors", default="", help="a checkout of NJU-PCALab/STAR, run beside ours")
    ap.add_argument("--stubs", default="", help="stand-ins for xformers / torchsde / fairscale / timm")
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--who", default="ours", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.authors and args.steps < 2:
        raise SystemExit("--steps: the authors' sampler needs at least 2 steps (with one, its DPM++ loop reads "
                         "an unset variable)")
    if child(args, _one):
        return
    import torch
    resolve_device(args)
    w, h = map(int, args.lr.split("x"))
    print(f"STAR sampler, {args.config} shapes, {w}x{h} -> {4 * w}x{4 * h}, {args.device} {args.dtype}, CFG 7.5, "
          f"chunk {args.chunk}/{args.chunk_overlap}, tile {args.tile}, offload {args.offload}, torch {torch.__version__}")
    print(f"{'who':>7} | {'frames':>6} | {'steps':>5} | {'s/step':>8} | {'peak RSS MiB':>12} | {'peak device MiB':>15}")
    print("-" * 70)
    for n in args.frames:
        for who in (("ours", "authors") if args.authors else ("ours",)):
            r = run_child(__file__, args, n=n, who=who)
            print(f"{who:>7} | {n:>6} | {r['steps']:>5} | {r['s_per_step']:8.2f} | {r['rss'] / 2**20:12.0f} | "
                  f"{r['device'] / 2**20:15.0f}")


if __name__ == "__main__":
    main()
