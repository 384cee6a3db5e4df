"""Fine-tune STAR's ControlNet and LIEM gates with the v-loss plus the Dynamic-Frequency loss.

    python train/train_star.py --checkpoint ComfyUI/models/STAR/light_deg.pt \
        --vae ComfyUI/models/diffusers/stable-video-diffusion-vae --data clips/ --out star_ft.safetensors \
        --steps 2000 --frames 8 --crop 144 --df-mode magnitude
    python train/train_star.py --tiny --data clips/ --out /tmp/star_tiny.safetensors --steps 5   # CPU smoke run

What is trained is what STAR trains (``video_super_resolution/scripts/train_sr.py``): every parameter of
the ControlNet (``VideoControlNet``) and every LIEM gate (``local1`` / ``local2``) of the U-Net; the
rest of the U-Net, the VAE and the text are frozen. A step: a random crop of ``--frames`` frames of a
clip (HR), its x4 downscale (``--down``) upsampled back bilinearly (the receiver's input), both VAE-
encoded (the LR latent is the ControlNet hint), t ~ U{0..999}, x_t = sqrt(abar) x0 + sqrt(1 - abar) eps,
loss = MSE(v_pred, v) + b(t) DF(decode(x0_pred), HR) with STAR's weights (``models/losses.py``; here
the decoded prediction carries its gradient through the VAE decoder, where STAR decodes it under
no_grad). Text: ``--text`` (a "positive" embeddings file) or the zero embedding STAR's captions are
dropped to half the time. Data as train/train_metasr.py reads it (.mp4/.mkv/.mov/.avi, .npy, images).
The result is a safetensors checkpoint (config in its metadata) that MetaVSR Load STAR reads.
"""
import argparse
import glob
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "train")]
from _pack import load_pack  # noqa: E402

load_pack("metavsr")
from metavsr.models import losses, sampling as S  # noqa: E402
from metavsr.models.codec.resize import downscale  # noqa: E402
from metavsr.models.receivers import star  # noqa: E402
from metavsr.models.receivers.star.receiver import pad_to, valid_latent  # noqa: E402
from train_metasr import IMAGE_EXT, VIDEO_EXT, random_crop, read_clip  # noqa: E402


def trainable(model) -> list:
    """STAR's trained set: the ControlNet and the LIEM gates (names with 'local')."""
    return [p for n, p in model.named_parameters() if n.startswith("VideoControlNet.") or ".local" in n]


def encode(vae, video: torch.Tensor, generator) -> torch.Tensor:
    """[T,3,H,W] -1..1 -> [1,4,T,H/8,W/8] scaled latent (posterior sample, no grad)."""
    with torch.no_grad():
        d = vae.encode(video).latent_dist
        z = d.mean + d.std * torch.randn(d.mean.shape, generator=generator).to(d.mean)
    return (z * vae.config.scaling_factor).permute(1, 0, 2, 3)[None]


def step_loss(model, vae, hr: torch.Tensor, text: torch.Tensor, abar: torch.Tensor, rng, generator,
              down: str = "bicubic", df_mode: str = "magnitude", df_weight: float = 0.01):
    """One sample ``hr`` [T,H,W,3] 0..1 -> (loss, {"v": ..., "df": ..., "t": ...}); differentiable."""
    lr = torch.from_numpy(downscale(hr.numpy(), 4, down)).clamp(0, 1)
    t_, h, w, _ = hr.shape
    gt = hr.permute(0, 3, 1, 2) * 2 - 1                                  # [T,3,H,W]
    up = F.interpolate(lr.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False) * 2 - 1
    x0, hint = encode(vae, gt, generator), encode(vae, up, generator)
    lh, lw = x0.shape[-2:]
    ph, pw = valid_latent(lh, lw)
    pad = lambda z: pad_to(z.flatten(1, 2), ph, pw, centre=False)[0].view(1, 4, t_, ph, pw)  # noqa: E731
    t = int(rng.integers(0, 1000))
    a = float(abar[t])
    eps = torch.randn(x0.shape, generator=generator)
    xt = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps
    v_target = math.sqrt(a) * eps - math.sqrt(1 - a) * x0
    v = model(pad(xt), torch.tensor([t]), text, pad(hint))[..., :lh, :lw]
    loss_v = F.mse_loss(v.float(), v_target.float())
    x0_pred = math.sqrt(a) * xt - math.sqrt(1 - a) * v
    frames = vae.decode(x0_pred[0].permute(1, 0, 2, 3) / vae.config.scaling_factor, num_frames=t_).sample
    df = losses.df_loss(frames.permute(1, 0, 2, 3)[None], gt.permute(1, 0, 2, 3)[None], torch.tensor([t]),
                        mode=df_mode, weight=df_weight)
    return loss_v + df, {"v": float(loss_v.detach()), "df": float(df.detach()), "t": t}


def clips_in(folder: str) -> list:
    files = sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                   if p.lower().endswith(VIDEO_EXT + IMAGE_EXT + (".npy",)))
    if not files:
        raise SystemExit(f"--data {folder!r}: no clips (.mp4/.mkv/.mov/.avi/.webm, .npy) or images found")
    return files


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="STAR checkpoint (.pt / .safetensors) to start from")
    ap.add_argument("--vae", help="SVD VAE folder (AutoencoderKLTemporalDecoder)")
    ap.add_argument("--tiny", action="store_true", help="random tiny STAR and VAE (tests/star_fixtures.py): CPU smoke")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--text", help="embeddings file with 'positive' [1, L, 1024]; default: the zero embedding")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--crop", type=int, default=144, help="HR crop side, a multiple of 8")
    ap.add_argument("--down", default="bicubic", choices=["bicubic", "area", "patchwise"])
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--df-mode", default="magnitude", choices=list(losses.MODES))
    ap.add_argument("--df-weight", type=float, default=0.01)
    ap.add_argument("--grad-checkpoint", action="store_true")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=10)
    a = ap.parse_args(argv)
    if a.crop % 8:
        raise SystemExit(f"--crop {a.crop}: must be a multiple of 8 (the VAE's factor)")
    dt = torch.float32 if a.dtype == "fp32" else torch.bfloat16
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if a.tiny:
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        import star_fixtures
        model, vae = star_fixtures.build(a.seed), star_fixtures.build_vae(a.seed)
        cfg = star.STARConfig(**star_fixtures.TINY)
    else:
        if not a.checkpoint or not a.vae:
            raise SystemExit("give --checkpoint and --vae (or --tiny for a smoke run)")
        try:
            model, _ = star.load_unet(a.checkpoint, dt, "cpu")
            vae = star.load_vae(a.vae, dt, "cpu")
        except star.STARModelError as e:
            raise SystemExit(str(e)) from None
        cfg = model.config
    model, vae = model.to(dev, dt), vae.to(dev, dt).eval().requires_grad_(False)
    model.requires_grad_(False)
    params = trainable(model)
    for p in params:
        p.requires_grad_(True)
    model.train()
    model.grad_checkpoint = a.grad_checkpoint
    text = star.load_text(a.text)[0] if a.text else torch.zeros(1, 77, 1024)
    text = text.to(dev, dt)
    opt = torch.optim.AdamW(params, lr=a.lr)
    abar = S.logsnr_cosine_interp()
    files = clips_in(a.data)
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    print(f"training {sum(p.numel() for p in params) / 1e6:.2f} M of {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
          f"parameters on {dev}; {len(files)} clips")
    for step in range(1, a.steps + 1):
        clip = read_clip(files[int(rng.integers(len(files)))])
        hr = torch.from_numpy(random_crop(clip, a.frames, a.crop, rng)).float()
        loss, parts = step_loss(model, vae, hr, text, abar, rng, gen, a.down, a.df_mode, a.df_weight)
        if not math.isfinite(float(loss.detach())):
            raise SystemExit(f"step {step}: the loss is not finite ({parts}); lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % a.log_every == 0 or step == 1 or step == a.steps:
            print(f"step {step}: loss {float(loss.detach()):.5f} (v {parts['v']:.5f}, b(t) DF {parts['df']:.5f}, t {parts['t']})",
                  flush=True)
    star.save_safetensors(model, cfg, a.out, dtype=None if dt == torch.float32 else dt)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
