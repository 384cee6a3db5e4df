"""MetaSR's two-stage fine-tuning (after DOVE): losses and one optimisation step (MetaSR Eq. 2-6).

Stage 1 (latent): z_sr = sqrt(ᾱ_t) z_lr - sqrt(1-ᾱ_t) v_θ(z_lr, c, t), loss ‖z_sr - z_hr‖² / ‖z_hr‖²,
VAE frozen, only the DiT learns (Eq. 2-3). Stage 2 (pixel): x_sr = D(z_sr), loss
‖x_sr - x_hr‖² + λ1 L_per + λ2 L_frame (Eq. 4-6). Metadata tokens take part in both stages; each map
is dropped with probability ``p`` per sample so one model serves 0...K transmitted maps.
"""
from typing import Callable, List, Optional

import torch

from ...sampling import sample_one_step, v_prediction
from . import tokens


def latent_loss(z_sr: torch.Tensor, z_hr: torch.Tensor) -> torch.Tensor:
    """Eq. 3, per sample then averaged: ``Σ(z_sr - z_hr)² / Σ z_hr²`` over all but the batch axis."""
    dims = tuple(range(1, z_hr.ndim))
    return (((z_sr - z_hr) ** 2).sum(dims) / (z_hr ** 2).sum(dims).clamp_min(1e-12)).mean()


def frame_loss(x_sr: torch.Tensor, x_hr: torch.Tensor) -> torch.Tensor:
    """Eq. 6 for ``[T,H,W,C]`` clips: mean over the n-1 frame pairs of the L1 distance between
    frame differences, each L1 taken as a per-pixel mean so the weight does not depend on size."""
    if x_sr.shape[0] < 2:
        return x_sr.new_zeros(())
    return ((x_sr[1:] - x_sr[:-1]) - (x_hr[1:] - x_hr[:-1])).abs().mean()


def pixel_loss(x_sr: torch.Tensor, x_hr: torch.Tensor, perceptual: Optional[Callable] = None,
               lambda_per: float = 0.0, lambda_frame: float = 0.0) -> torch.Tensor:
    """Eq. 4/5 on ``[T,H,W,3]`` 0..1 clips: MSE + λ1·perceptual (mean over frames) + λ2·Eq. 6."""
    loss = ((x_sr - x_hr) ** 2).mean()
    if lambda_per and perceptual is not None:
        loss = loss + lambda_per * perceptual(x_sr, x_hr).mean()
    if lambda_frame:
        loss = loss + lambda_frame * frame_loss(x_sr, x_hr)
    return loss


def drop_metadata(maps: List[torch.Tensor], p: float, generator: torch.Generator) -> List[torch.Tensor]:
    """Keep each map with probability 1 - p (metadata dropout), order preserved."""
    keep = torch.rand(len(maps), generator=generator) >= p
    return [m for m, k in zip(maps, keep) if k]


def sr_latent(pipe, z_lr: torch.Tensor, metas: List[torch.Tensor], timestep: int = 399) -> torch.Tensor:
    """Eq. 2 on whole ``[1,F,C,h,w]`` latents (F already even for 2-frame patches), with gradients."""
    tf = pipe.transformer
    _, f, _, h, w = z_lr.shape
    pos = tokens.Positions(tf, f, h, w, z_lr.device).window((0, f, 0, h, 0, w))
    text = pipe.prompt_embedding.to(z_lr.device, z_lr.dtype)
    denoiser = v_prediction(lambda x, t: tokens.forward(tf, x, metas, text, t, pos), pipe.scheduler.alphas_cumprod)
    return sample_one_step(denoiser, z_lr, timestep)  # the inference path's own one step


def _latents(pipe, video: torch.Tensor, generator) -> torch.Tensor:
    """``[1,3,T,H,W]`` in [-1,1] -> ``[1,F,C,h,w]`` with DOVE's first-frame repeat for 2-frame patches."""
    with torch.no_grad():
        z = pipe.encode(video, generator)
    pt = pipe.transformer.config.patch_size_t
    n = z.shape[2] % pt if pt else 0
    if n:
        z = torch.cat([z[:, :, :1].repeat(1, 1, n, 1, 1), z], dim=2)
    return z.permute(0, 2, 1, 3, 4), n


def step_losses(pipe, lr: torch.Tensor, hr: torch.Tensor, maps: List[torch.Tensor], stage: int,
                generator: torch.Generator, perceptual: Optional[Callable] = None,
                lambda_per: float = 0.0, lambda_frame: float = 0.0, timestep: int = 399) -> torch.Tensor:
    """Loss of one training clip.

    lr:   [T,H,W,3] 0..1, hr: [T,4H,4W,3] 0..1 with T = 8N+1 and H, W multiples of 16
    maps: metadata maps [T,4H,4W,3] 0..1 (after dropout)
    stage 1: Eq. 3 on latents; stage 2: Eq. 5 on decoded pixels (gradients flow through the frozen VAE
    decoder into the DiT).
    """
    z_lr, n = _latents(pipe, pipe._upscaled(lr), generator)
    metas = [_latents(pipe, pipe._maps(m), generator)[0] for m in maps]
    z_sr = sr_latent(pipe, z_lr, metas, timestep)
    if stage == 1:
        hr_in = (hr.permute(3, 0, 1, 2)[None].to(pipe.device, torch.float32) * 2 - 1).to(pipe.dtype)
        z_hr, _ = _latents(pipe, hr_in, generator)
        return latent_loss(z_sr.float(), z_hr.float())
    x_sr = pipe.decode(z_sr[:, n:], clamp=False)[0].permute(1, 2, 3, 0).float()  # [T,H,W,3]
    return pixel_loss(x_sr, hr.to(x_sr.device), perceptual, lambda_per, lambda_frame)
