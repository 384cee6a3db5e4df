"""Fine-tune a CogVideoX / DOVE folder into a MetaSR receiver (two stages, metadata tokens).

    python train/train_metasr.py --model models/diffusers/DOVE --data clips/ --out models/diffusers/MetaSR-edges \
        --stage 1 --steps 5000 --metadata edges
    python train/train_metasr.py --model models/diffusers/MetaSR-edges --data clips/ --out ... --stage 2 \
        --steps 2000 --perceptual lpips --lambda-per 1.0 --lambda-frame 1.0

Data: a folder of HR clips (.mp4/.mkv/.mov/.avi read with PyAV, .npy uint8 [T,H,W,3]) and images
(.png/.jpg, used as 1-frame clips as DOVE mixes images and videos). Each step takes a random crop of
``--frames`` (8N+1) frames at ``--crop`` pixels (a multiple of 64); the LR input is the HR crop
downscaled ×4 (``--down``, the sender's resize); edge metadata is the sender's Canny on the HR crop.
Metadata dropout (``--meta-dropout``) teaches one model every subset of maps. The output folder is a
complete diffusers folder (transformer + the frozen VAE, scheduler and prompt embedding) with a
``metasr.json`` naming its metadata kinds, loadable by the MetaVSR CogVideoX loader node.
"""
import argparse
import glob
import os
import shutil
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _pack import load_pack  # noqa: E402

load_pack("metavsr")
from metavsr.models import atomic  # noqa: E402
from metavsr.models.codec.resize import downscale  # noqa: E402
from metavsr.models.receivers.cogvideox import load, training  # noqa: E402

VIDEO_EXT = (".mp4", ".mkv", ".mov", ".avi", ".webm")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp")


def read_clip(path: str) -> np.ndarray:
    """Any supported file -> [T,H,W,3] uint8."""
    low = path.lower()
    if low.endswith(".npy"):
        return np.load(path)
    if low.endswith(IMAGE_EXT):
        from PIL import Image
        return np.asarray(Image.open(path).convert("RGB"))[None]
    import av
    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def random_crop(clip: np.ndarray, frames: int, crop: int, rng: np.random.Generator) -> np.ndarray:
    """[T,H,W,3] -> [frames, crop, crop, 3] float 0..1 (images and short clips repeat the last frame,
    as the pipeline pads them)."""
    t, h, w, _ = clip.shape
    if h < crop or w < crop:
        raise ValueError(f"clip {w}x{h} is smaller than --crop {crop}")
    t0 = int(rng.integers(0, max(t - frames, 0) + 1))
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    c = clip[t0:t0 + frames, y:y + crop, x:x + crop]
    if len(c) < frames:
        c = np.concatenate([c, np.repeat(c[-1:], frames - len(c), 0)])
    return c.astype(np.float32) / 255.0


def metadata_maps(hr: np.ndarray, kinds, canny=(100, 200)) -> list:
    """HR crop [T,H,W,3] 0..1 -> list of [T,H,W,3] float maps in ``kinds`` order."""
    maps = []
    for kind in kinds:
        if kind == "edges":
            from metavsr.models.metadata.canny import canny_edges
            m = canny_edges(hr, *canny).astype(np.float32)
        elif kind == "depth":
            try:
                from metavsr.models.metadata import depth as depth_mod
            except ImportError:
                raise SystemExit("depth metadata needs models/metadata/depth.py (not available)") from None
            m = np.asarray(depth_mod.estimate(hr), np.float32)
        else:
            raise SystemExit(f"unknown metadata kind {kind!r}; use edges, depth")
        maps.append(torch.from_numpy(np.repeat(m[..., None], 3, -1)))
    return maps


def perceptual_fn(name: str):
    if name == "none":
        return None
    if name == "lpips":
        from metavsr.models.metrics.lpips import lpips
        return lambda a, b: _with_grad(lpips, a, b)
    if name == "dists":
        from metavsr.models.metrics.dists import dists
        return lambda a, b: _with_grad(dists, a, b)
    raise SystemExit(f"--perceptual {name!r}: use none, lpips or dists")


def _with_grad(metric, a, b):
    # the metrics are inference functions decorated with no_grad; training needs their gradient
    fn = getattr(metric, "__wrapped__", metric)
    return fn(a, b)


def save(pipe, src: str, out: str, kinds):
    os.makedirs(out, exist_ok=True)
    pipe.transformer.save_pretrained(os.path.join(out, "transformer"))
    for sub in ("vae", "scheduler", "text_encoder", "tokenizer"):
        if os.path.isdir(os.path.join(src, sub)) and os.path.abspath(src) != os.path.abspath(out):
            shutil.copytree(os.path.join(src, sub), os.path.join(out, sub), dirs_exist_ok=True)
    for f in glob.glob(os.path.join(src, "*.json")) + glob.glob(os.path.join(src, "*.safetensors")):
        if os.path.abspath(os.path.dirname(f)) != os.path.abspath(out):
            shutil.copy(f, out)
    atomic.write_json(os.path.join(out, "metasr.json"), {"metadata_kinds": list(kinds)})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="initial diffusers folder (CogVideoX, DOVE or a stage-1 output)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stage", type=int, choices=(1, 2), required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--frames", type=int, default=25, help="clip length, 8N+1")
    ap.add_argument("--crop", type=int, default=320, help="HR crop, a multiple of 64")
    ap.add_argument("--down", default="area", choices=("bicubic", "area", "patchwise"))
    ap.add_argument("--metadata", default="edges", help="comma list of kinds (edges, depth) or 'none'")
    ap.add_argument("--meta-dropout", type=float, default=0.3)
    ap.add_argument("--perceptual", default="lpips", choices=("none", "lpips", "dists"),
                    help="LPIPS-Alex ships with the pack; DISTS needs the VGG16 file (see the README)")
    ap.add_argument("--lambda-per", type=float, default=1.0)
    ap.add_argument("--lambda-frame", type=float, default=1.0)
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--grad-checkpointing", action="store_true")
    args = ap.parse_args(argv)

    if (args.frames - 1) % 8 or args.crop % 64:
        raise SystemExit("--frames must be 8N+1 and --crop a multiple of 64 (the VAE/patch grid)")
    kinds = [] if args.metadata == "none" else [k.strip() for k in args.metadata.split(",") if k.strip()]
    files = sorted(f for f in glob.glob(os.path.join(args.data, "**", "*"), recursive=True)
                   if f.lower().endswith(VIDEO_EXT + IMAGE_EXT + (".npy",)))
    if not files:
        raise SystemExit(f"no clips or images in {args.data}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    pipe = load(args.model, dtype=args.dtype, device=device)
    tf = pipe.transformer
    tf.train().requires_grad_(True)
    if args.grad_checkpointing:
        tf.gradient_checkpointing = True
    opt = torch.optim.AdamW([p for p in tf.parameters() if p.requires_grad], lr=args.lr, weight_decay=1e-4)
    perceptual = perceptual_fn(args.perceptual) if args.stage == 2 else None
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        clip = read_clip(files[int(rng.integers(len(files)))])
        hr = random_crop(clip, args.frames, args.crop, rng)
        lr = torch.from_numpy(np.clip(downscale(hr, 4, args.down), 0, 1))
        maps = training.drop_metadata(metadata_maps(hr, kinds), args.meta_dropout, gen)
        loss = training.step_losses(pipe, lr, torch.from_numpy(hr), maps, args.stage, gen, perceptual,
                                    args.lambda_per, args.lambda_frame)
        if not torch.isfinite(loss):
            raise SystemExit(f"step {step}: loss is {loss.item()}; lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tf.parameters(), 1.0)
        opt.step()
        print(f"step {step} stage {args.stage} maps {len(maps)} loss {loss.item():.6f}", flush=True)
        if step % args.save_every == 0 or step == args.steps:
            tf.eval()
            save(pipe, args.model, args.out, kinds)
            tf.train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
