"""STAR's Dynamic-Frequency (DF) loss, differentiable, as small pure functions.

STAR (Xie et al. 2025, "STAR: Spatial-Temporal Augmentation with Text-to-Video Models for Real-World
Video Super-Resolution", Sec. 3.3) adds to the v-prediction loss a term on the decoded x0 estimate
X0_hat against the ground truth X0::

    f_l = F(X) * psi,  f_h = F(X) * (1 - psi)            (F: 2-D DFT of each frame, psi: low-pass)
    L_DF = c(t) |f_l(X0_hat) - f_l(X0)|_1 + (1 - c(t)) |f_h(X0_hat) - f_h(X0)|_1,  c(t) = (t / t_max)^alpha
    L = L_v + b(t) L_DF,  b(t) = 1 - t / t_max,  t_max = 999

so noisy steps (large t) are held to the structure (low band) and clean steps to the detail (high
band). Two forms of psi, chosen with ``mode``:

- ``"magnitude"`` (default; the released code, NJU-PCALab/STAR ``video_super_resolution/scripts/
  train_sr.py``, ``fourier_transform``): psi = sigmoid(10 (q - |F|)) with q the 0.8-quantile of all
  |F| of the clip (all its frames and channels). This splits by coefficient *magnitude*, not by
  frequency: "low" is the 80 % of coefficients with the smallest magnitude wherever they sit in the
  spectrum (the DC term and the strong low frequencies of natural images are mostly in "high"). It
  is the default because it is what STAR was trained with. The transition is nearly hard: |F| of an
  unnormalised rfft2 of unit-scale frames is of the order of sqrt(H W), so 10 (q - |F|) is large
  away from q.
- ``"radial"`` (the paper's description): psi = sigmoid(s (r0 - r)) on the rfft2 frequency grid,
  r = sqrt(fy^2 + fx^2) / 0.5 the radius normalised to Nyquist (1 at Nyquist on an axis, sqrt 2 at
  the corner), r0 = ``cutoff`` (default 0.25), s = ``sharpness`` (default 50: psi > 0.999 below
  r0 - 0.14 and < 0.001 above r0 + 0.14). Depends on the frame size only, not on the content.

Differences from the released code, on purpose:

- gradients flow to ``pred``: STAR decodes pred_x0 under ``torch.no_grad`` so its DF term trains
  nothing; here the caller passes a decoded prediction that carries grad (through the VAE decoder),
  and the grad also flows through the quantile cutoff (piecewise linear in |F|).
- deterministic: the authors estimate q from 10000 elements drawn with ``torch.randint`` on the default
  generator once |F| has more than 10000 elements. Here q is exact unless ``max_samples`` is given;
  ``max_samples=10000, generator=g`` with ``g = torch.Generator().manual_seed(s)`` draws the indices
  the authors draw after ``torch.manual_seed(s)`` (same call, same CPU generator state).
- batches: their ``ct`` is a [B] tensor broadcast against batch-wide scalar L1 losses, which only
  makes sense (and only backpropagates, as a scalar) for B = 1, what their 8-GPU, batch-8 run has on
  each GPU. Here a batch is B such samples: each sample's frames are split on their own (own
  quantile), weighted with its own t, and the per-sample losses are averaged -- the loss whose
  gradient DDP averaging gives their run. For B = 1 it is their formula exactly.

Layouts follow the authors: a video is ``[B, C, T, H, W]``; frames are ``[N, C, H, W]``; a band is
``[N, C, H, W // 2 + 1, 2]`` (real, imag of the masked rfft2). float64 inputs are computed in float64,
everything else in float32 (the authors cast to float32; half-precision FFTs are also limited to
power-of-two sizes).

Pure torch; nothing here imports ComfyUI.
"""
import math
from typing import Optional, Tuple, Union

import torch

MODES = ("magnitude", "radial")
# per mode: the authors' 10 on |F|; for the radius (0..sqrt 2) 10 would leave psi(0) at 0.92
DEFAULT_SHARPNESS = {"magnitude": 10.0, "radial": 50.0}
# torch.quantile refuses larger inputs ("quantile() input tensor is too large")
_QUANTILE_LIMIT = 2 ** 24

Timesteps = Union[torch.Tensor, int, float]


# ---------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------

def _check_tensor(fn: str, name: str, x, ndim: int, layout: str, hint: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{fn}: {name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {layout} ({ndim}-D), got shape {tuple(x.shape)}; {hint}")
    if not x.is_floating_point():
        raise ValueError(f"{fn}: {name} must be a real floating-point tensor, got {x.dtype}; "
                         f"convert with {name}.float()")
    if x.numel() == 0:
        raise ValueError(f"{fn}: {name} is empty (shape {tuple(x.shape)}); every axis needs at least one element")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{fn}: {name} has non-finite values (NaN or inf); check what produced it "
                         f"(decoder output, learning rate, mixed precision) before the loss")


def _check_options(fn: str, mode: str, quantile: float, sharpness: Optional[float], cutoff: float,
                   max_samples: Optional[int]) -> float:
    """Validated options; returns the sharpness to use (the mode's default when None)."""
    if mode not in MODES:
        raise ValueError(f"{fn}: mode must be one of {MODES}, got {mode!r}")
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"{fn}: quantile must be in [0, 1], got {quantile!r}")
    if sharpness is None:
        sharpness = DEFAULT_SHARPNESS[mode]
    if not (math.isfinite(sharpness) and sharpness > 0):
        raise ValueError(f"{fn}: sharpness must be a finite number > 0, got {sharpness!r}")
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"{fn}: cutoff must be a finite radius > 0 (1 = Nyquist), got {cutoff!r}")
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, int)
                                    or max_samples < 1):
        raise ValueError(f"{fn}: max_samples must be None (exact quantile) or a whole number >= 1, "
                         f"got {max_samples!r}")
    return float(sharpness)


def _work_dtype(*xs: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


# ---------------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------------

def _quantile(v: torch.Tensor, q: float, limit: int = _QUANTILE_LIMIT) -> torch.Tensor:
    """0-d q-quantile of a 1-D tensor, torch.quantile's "linear" interpolation, for any size.

    Above ``limit`` elements two ``kthvalue`` calls replace torch.quantile, which refuses more than
    2^24 elements (a 720p clip of 32 frames has ~44M rfft2 coefficients).
    """
    n = v.numel()
    if n <= limit:
        return torch.quantile(v, q)
    pos = q * (n - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    below = torch.kthvalue(v, lo + 1).values
    above = torch.kthvalue(v, hi + 1).values if hi != lo else below
    return torch.lerp(below, above, pos - lo)


def magnitude_cutoff(magnitude: torch.Tensor, quantile: float = 0.8, max_samples: Optional[int] = None,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """0-d ``quantile`` of all elements of ``magnitude`` (any shape), as STAR's ``fourier_transform``.

    max_samples: None: exact. An int: when there are more elements than that, the quantile of
        ``max_samples`` elements drawn with replacement, ``torch.randint(0, numel, (max_samples,),
        generator=generator)`` on the generator's device (the CPU default generator when None), exactly
        the authors' draw (theirs is ``max_samples=10000`` on the default generator).
    """
    flat = magnitude.flatten()
    if max_samples is not None and flat.numel() > max_samples:
        device = generator.device if generator is not None else torch.device("cpu")
        idx = torch.randint(0, flat.numel(), (max_samples,), generator=generator, device=device)
        flat = flat[idx.to(flat.device)]
    return _quantile(flat, quantile)


def radial_lowpass(h: int, w: int, cutoff: float = 0.25, sharpness: float = 50.0,
                   dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """[h, w // 2 + 1] smooth low-pass psi on the rfft2 grid of an h x w frame.

    psi = sigmoid(sharpness (cutoff - r)), r = |(fy, fx)| / 0.5 with fy = fftfreq(h), fx = rfftfreq(w)
    in cycles per pixel, so r is 1 at Nyquist along an axis whatever the frame size.
    """
    fy = torch.fft.fftfreq(h, dtype=dtype, device=device)
    fx = torch.fft.rfftfreq(w, dtype=dtype, device=device)
    r = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / 0.5
    return torch.sigmoid(sharpness * (cutoff - r))


# ---------------------------------------------------------------------------------------------------
# Frequency split
# ---------------------------------------------------------------------------------------------------

def _split(x: torch.Tensor, mode: str, quantile: float, sharpness: float, cutoff: float,
           max_samples: Optional[int], generator: Optional[torch.Generator],
           dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    # contiguous like the authors' rearrange copy: the spectrum keeps its input's memory order, and
    # the L1 mean sums in memory order (a transposed layout moved the loss by one float32 ulp)
    fx = torch.fft.rfft2(x.to(dtype).contiguous(), dim=(-2, -1))
    if mode == "magnitude":
        magnitude = torch.abs(fx)
        cut = magnitude_cutoff(magnitude, quantile, max_samples, generator)
        low_mask = torch.sigmoid(sharpness * (cut - magnitude))
    else:
        low_mask = radial_lowpass(x.shape[-2], x.shape[-1], cutoff, sharpness, dtype, x.device)
    # the authors' 1 - low (not a second sigmoid), so low + high is F up to one rounding
    high_mask = 1 - low_mask
    return torch.view_as_real(fx * low_mask), torch.view_as_real(fx * high_mask)


def frequency_split(x: torch.Tensor, mode: str = "magnitude", quantile: float = 0.8,
                    sharpness: Optional[float] = None, cutoff: float = 0.25, max_samples: Optional[int] = None,
                    generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Frames ``x`` [N, C, H, W] -> (low, high), each [N, C, H, W // 2 + 1, 2] (real, imag) of
    rfft2(x) * psi and rfft2(x) * (1 - psi).

    mode "magnitude" (STAR's released ``fourier_transform``; splits by |F|, not by frequency):
        psi = sigmoid(sharpness (q - |F|)), q the ``quantile`` of |F| over all of ``x`` (all frames and
        channels together), exact or from ``max_samples`` draws of ``generator`` (:func:`magnitude_cutoff`);
        sharpness defaults to 10.
    mode "radial" (the paper's low-pass): psi = :func:`radial_lowpass` with ``cutoff`` (radius, 1 =
        Nyquist) and sharpness (default 50); ``quantile``, ``max_samples`` and ``generator`` are unused.
    """
    s = _check_options("frequency_split", mode, quantile, sharpness, cutoff, max_samples)
    _check_tensor("frequency_split", "x", x, 4, "frames [N, C, H, W]",
                  "for a video [B, C, T, H, W] use df_band_losses / df_loss, or x.transpose(1, 2).flatten(0, 1)")
    return _split(x, mode, quantile, s, cutoff, max_samples, generator, _work_dtype(x))


# ---------------------------------------------------------------------------------------------------
# Weights and loss
# ---------------------------------------------------------------------------------------------------

def df_weights(t: Timesteps, t_max: float = 999, alpha: float = 2.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """(c, b) float64 of t's shape: c(t) = (t / t_max)^alpha weighs the low band against the high one,
    b(t) = 1 - t / t_max weighs the DF term against the v-loss (STAR Eq. 2 and 8). ``t`` may be
    fractional; it must lie in [0, t_max]."""
    if not (math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"df_weights: t_max must be a finite number > 0, got {t_max!r}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"df_weights: alpha must be a finite number >= 0, got {alpha!r}")
    if isinstance(t, torch.Tensor) and (t.is_complex() or t.dtype == torch.bool):
        raise ValueError(f"df_weights: t must hold real timesteps, got dtype {t.dtype}")
    u = torch.as_tensor(t).to(torch.float64)
    if not bool(torch.isfinite(u).all()):
        raise ValueError("df_weights: t has non-finite values (NaN or inf); pass the training timesteps")
    if u.numel() and (u.min() < 0 or u.max() > t_max):
        raise ValueError(f"df_weights: t must lie in [0, t_max] = [0, {t_max}], got "
                         f"{u.min().item()}..{u.max().item()}; pass the timesteps the noise was added at "
                         f"(or set t_max to the schedule's last timestep)")
    u = u / t_max
    return u ** alpha, 1 - u


def df_band_losses(pred: torch.Tensor, target: torch.Tensor, mode: str = "magnitude", quantile: float = 0.8,
                   sharpness: Optional[float] = None, cutoff: float = 0.25, max_samples: Optional[int] = None,
                   generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(L_LF, L_HF), each [B]: per sample, the mean absolute difference of the low bands and of the high
    bands of videos ``pred`` and ``target`` [B, C, T, H, W] (STAR Eq. 7 with the authors' mean L1).

    Each sample's T frames are split together (:func:`frequency_split`, one quantile per sample and
    per video, as STAR's ``extract_frequencies`` on a batch of one). With ``max_samples`` the generator
    is drawn from in the authors' order: sample 0's pred, sample 0's target, sample 1's pred, ...
    """
    s = _check_options("df_band_losses", mode, quantile, sharpness, cutoff, max_samples)
    _check_video("df_band_losses", pred, target)
    return _band_losses(pred, target, mode, quantile, s, cutoff, max_samples, generator)


def _band_losses(pred, target, mode, quantile, sharpness, cutoff, max_samples, generator):
    """:func:`df_band_losses` on checked inputs (``sharpness`` resolved): ([B], [B])."""
    dtype = _work_dtype(pred, target)
    lows, highs = [], []
    for p, g in zip(pred, target):
        # [C, T, H, W] -> [T, C, H, W]: the authors' rearrange 'b c t h w -> (b t) c h w' with b = 1
        lp, hp = _split(p.transpose(0, 1), mode, quantile, sharpness, cutoff, max_samples, generator, dtype)
        lg, hg = _split(g.transpose(0, 1), mode, quantile, sharpness, cutoff, max_samples, generator, dtype)
        # F.l1_loss, not mean(abs()): same value, but the authors' reduction kernel, bit for bit
        lows.append(torch.nn.functional.l1_loss(lp, lg))
        highs.append(torch.nn.functional.l1_loss(hp, hg))
    return torch.stack(lows), torch.stack(highs)


def _check_video(fn: str, pred, target) -> None:
    hint = "add a time axis to frames [B, C, H, W] with x.unsqueeze(2)"
    _check_tensor(fn, "pred", pred, 5, "a video [B, C, T, H, W]", hint)
    _check_tensor(fn, "target", target, 5, "a video [B, C, T, H, W]", hint)
    if pred.shape != target.shape:
        raise ValueError(f"{fn}: pred and target must have the same shape [B, C, T, H, W], got pred "
                         f"{tuple(pred.shape)} and target {tuple(target.shape)}; decode the prediction at "
                         f"the ground truth's size (or crop / resize the target to it)")


def _batch_t(t: Timesteps, batch: int) -> Timesteps:
    """t as B timesteps: a number or 0-d tensor applies to every sample, a [B] tensor per sample."""
    if isinstance(t, torch.Tensor):
        if t.ndim == 0:
            return t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"df_loss: t must be a number or a [B] = [{batch}] tensor of timesteps, got "
                             f"shape {tuple(t.shape)}; pass one timestep per sample")
        return t
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise ValueError(f"df_loss: t must be a number or a [B] tensor of timesteps, got {type(t).__name__}")
    return torch.full((batch,), float(t), dtype=torch.float64)


def df_loss(pred: torch.Tensor, target: torch.Tensor, t: Timesteps, mode: str = "magnitude",
            weight: float = 0.01, alpha: float = 2.0, t_max: float = 999, weighted: bool = True,
            reduction: str = "mean", quantile: float = 0.8, sharpness: Optional[float] = None,
            cutoff: float = 0.25, max_samples: Optional[int] = None,
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """STAR's DF term for decoded predictions ``pred`` against ``target``, videos [B, C, T, H, W], at
    training timesteps ``t`` ([B] tensor, or one number for all samples).

    Per sample: loss_t = weight (c(t) L_LF + (1 - c(t)) L_HF) (the authors' ``loss_t``, weight 0.01);
    ``weighted`` (default) multiplies by b(t) = 1 - t / t_max, i.e. returns the authors'
    ``beta * weight_t * loss_t`` with beta = 1 -- add it to the v-loss as is, or scale by your beta.
    reduction "mean": the 0-d mean over the batch (B = 1: the authors' value); "none": [B].
    Grad flows to ``pred`` (and to ``target`` if it has any). See the module doc for the two modes.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"df_loss: reduction must be 'mean' or 'none', got {reduction!r}")
    s = _check_options("df_loss", mode, quantile, sharpness, cutoff, max_samples)
    _check_video("df_loss", pred, target)
    c, b = df_weights(_batch_t(t, pred.shape[0]), t_max, alpha)
    low, high = _band_losses(pred, target, mode, quantile, s, cutoff, max_samples, generator)
    c, b = c.to(low.device, low.dtype), b.to(low.device, low.dtype)
    loss = weight * (c * low + (1 - c) * high)
    if weighted:
        loss = b * loss
    return loss.mean() if reduction == "mean" else loss
