"""Noise schedules, denoiser wrappers and samplers, as small pure functions (the shape of k-diffusion's
``sampling.py``) for the pack's generative receivers.

Conventions (VP, "alpha" space, as diffusers and I2VGen-XL / STAR):

- a *schedule* is ``alphas_cumprod``: a 1-D float64 tensor ``[N]`` of abar_t indexed by the training
  timestep ``t = 0 .. N-1``; ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``. Working with abar and not
  with k-diffusion's sigma = sqrt((1 - abar) / abar) keeps zero terminal SNR (abar = 0, sigma = inf)
  finite. A fractional ``t`` (STAR's "fast" discretisation) reads the schedule by linear
  interpolation of log sigma between the neighbouring integers, as STAR does (:func:`alpha_cumprod_at`).
- a *denoiser* is a callable ``denoiser(x_t, t) -> x0`` with ``x_t`` any ``[B, ...]`` latent and ``t``
  a ``[B]`` tensor on ``x_t``'s device (int64 for integer timesteps, float64 for fractional ones).
  A *model* is the network's raw callable ``model(x_t, t) -> output`` (v, eps, ...); the wrappers
  :func:`v_prediction` / :func:`eps_prediction` turn a model into a denoiser.
- a *sampler* takes a denoiser, the start latent ``x`` at ``timesteps[0]``, the descending timesteps and
  the schedule, and returns the final x0 estimate. ``callback(i, total, x, x0)`` runs after step ``i``
  with the new latent and that step's x0 (cheap previews). Noise comes from a ``torch.Generator``: one
  float32 draw of ``x``'s shape per stochastic step, on the generator's device, cast to ``x`` -- the
  draws and their order are diffusers' (a seed gives the same noise as the diffusers scheduler, and the
  same noise whatever the working dtype or device).

Receivers compose them::

    # DOVE (CogVideoX, v-prediction): one step at t = 399 from the un-noised LR latent
    abar = rescale_zero_terminal_snr(alphas_cumprod(betas_scaled_linear()))
    x0 = sample_one_step(v_prediction(transformer, abar), lr_latent, 399)
    # Stream-DiffVSR: DDIM, v-prediction, 4 "trailing" steps
    x0 = sample_ddim(v_prediction(unet, abar), noise, timesteps(1000, 4, "trailing"), abar)
    # STAR (I2VGen-XL): SDEdit from t = 899, CFG 7.5 rescaled 0.2, STAR's 14-evaluation "fast" grid
    abar = logsnr_cosine_interp()
    den = chunked_in_time(v_prediction(cfg(cond, uncond, 7.5, 0.2), abar, round_t=True), 32, 16)
    x = add_noise(lr_latent, noise, 899, abar) * (1 - abar[899]).sqrt()  # STAR's start, see below
    x0 = sample_dpmpp_2m_sde(den, x, star_timesteps(), abar, generator=g, callback=cb)

STAR hands its noised latent to a k-diffusion loop that expects unit noise (``x = noise * sigmas[0]``,
then ``x * c_in``), so its effective VP start is x_899 * sqrt(1 - abar_899) (0.99909x); the last line
reproduces that, drop the factor for the textbook SDEdit start.

Pure torch (+ math); nothing here imports diffusers.
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch

from .ops import windows

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, int, torch.Tensor, torch.Tensor], None]

# DPMSolverMultistepScheduler's floor for a zero terminal abar ("FP16 smallest positive subnormal")
ZERO_SNR_FLOOR = 2.0 ** -24


# ---------------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------------

def betas_linear(num_train: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """[num_train] float64 betas, linear in beta (DDPM; diffusers ``beta_schedule="linear"``)."""
    return torch.linspace(beta_start, beta_end, num_train, dtype=torch.float64)


def betas_scaled_linear(num_train: int = 1000, beta_start: float = 0.00085,
                        beta_end: float = 0.012) -> torch.Tensor:
    """[num_train] float64 betas, linear in sqrt(beta) (latent diffusion, CogVideoX; diffusers
    ``"scaled_linear"``)."""
    return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train, dtype=torch.float64) ** 2


def betas_cosine(num_train: int = 1000, max_beta: float = 0.999) -> torch.Tensor:
    """[num_train] float64 betas of the Nichol & Dhariwal cosine abar with s = 0.008, each capped at
    ``max_beta`` (diffusers ``"squaredcos_cap_v2"``): beta_i = 1 - abar((i+1)/N) / abar(i/N)."""
    def abar(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    return torch.tensor([min(1 - abar((i + 1) / num_train) / abar(i / num_train), max_beta)
                         for i in range(num_train)], dtype=torch.float64)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """[N] abar_t = prod_{s<=t} (1 - beta_s), in float64 whatever ``betas`` came in."""
    return torch.cumprod(1 - betas.to(torch.float64), dim=0)


def rescale_zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """[N] -> [N] abar with zero terminal SNR (Lin et al. 2024, "Common Diffusion Noise Schedules and
    Sample Steps are Flawed", Algorithm 1): sqrt(abar) is shifted so its last value is 0 and scaled so
    its first value is unchanged. Same as diffusers' ``rescale_zero_terminal_snr`` (which takes and
    returns betas in DDIM, abar in CogVideoX). The last abar is exactly 0: only v- (or x0-) prediction
    can use it; :func:`sample_dpmpp_2m_sde` floors it like diffusers does."""
    s = alphas_cumprod.to(torch.float64).sqrt()
    s0, sT = s[0].clone(), s[-1].clone()
    s = (s - sT) * (s0 / (s0 - sT))
    return s ** 2


def shift_snr(alphas_cumprod: torch.Tensor, scale: float) -> torch.Tensor:
    """[N] -> [N] abar whose SNR abar / (1 - abar) is divided by ``scale`` (CogVideoX's
    ``snr_shift_scale``, applied before :func:`rescale_zero_terminal_snr`)."""
    a = alphas_cumprod.to(torch.float64)
    return a / (scale + (1 - scale) * a)


def logsnr_cosine_interp(num_train: int = 1000, logsnr_min: float = -15.0, logsnr_max: float = 15.0,
                         scale_min: float = 2.0, scale_max: float = 4.0,
                         zero_terminal_snr: bool = True) -> torch.Tensor:
    """[num_train] float64 abar of I2VGen-XL / STAR's ``logsnr_cosine_interp`` noise schedule.

    Written from STAR's ``video_to_video/diffusion/schedules_sdedit.py`` (NJU-PCALab/STAR), which
    ``STAR``'s inference builds with ``n=1000, scale_min=2, scale_max=4, zero_terminal_snr=True``:

    - u runs from 1 at t = 0 to 0 at t = N-1; the cosine log-SNR is
      ``-2 log tan(a + u (b - a))`` with ``a = atan(exp(-logsnr_min / 2))``,
      ``b = atan(exp(-logsnr_max / 2))`` (logsnr_max at t = 0, logsnr_min at t = N-1);
    - it is shifted by ``-2 log(scale)`` ("shifted cosine", Hoogeboom et al. 2023) for two scales and
      the two are blended: weight u on ``scale_min`` (clean end), 1-u on ``scale_max`` (noisy end);
    - noise std sigma = sqrt(sigmoid(-logsnr)); zero terminal SNR stretches sigma *linearly* so its
      maximum becomes 1 with its minimum fixed (STAR's own post-processing, not Lin et al.'s rescale
      of sqrt(abar)), so abar = 1 - sigma^2 is 0 at the last step.

    STAR computes in float32; this is float64 (max difference to STAR's float32 sigmas ~1e-7).
    """
    u = torch.linspace(1, 0, num_train, dtype=torch.float64)
    a, b = math.atan(math.exp(-0.5 * logsnr_min)), math.atan(math.exp(-0.5 * logsnr_max))
    cosine = -2 * torch.log(torch.tan(a + u * (b - a)))
    logsnr = u * (cosine - 2 * math.log(scale_min)) + (1 - u) * (cosine - 2 * math.log(scale_max))
    sigma = torch.sigmoid(-logsnr).sqrt()
    if zero_terminal_snr and sigma.max() != 1.0:
        lo, hi = sigma.min(), sigma.max()
        sigma = lo + (1 - lo) / (hi - lo) * (sigma - lo)
    return 1 - sigma ** 2


def timesteps(num_train: int, steps: int, spacing: str = "trailing", steps_offset: int = 0,
              convention: str = "ddim") -> torch.Tensor:
    """[steps] int64 descending timesteps exactly as diffusers' ``set_timesteps`` computes them.

    spacing:    "trailing" (starts at num_train-1; Lin et al. Table 2, what zero-SNR schedules need),
                "leading" (+ ``steps_offset``, SD 1.x's 1) or "linspace".
    convention: "ddim" (``DDIMScheduler``) or "dpmsolver" (``DPMSolverMultistepScheduler`` with the
                default ``lambda_min_clipped=-inf``). They agree on "trailing"; for "linspace" and
                "leading" DPMSolver spaces ``steps + 1`` points and drops the last.
    """
    if steps < 1 or steps > num_train:
        raise ValueError(f"timesteps: steps must be in 1..{num_train}, got {steps}")
    if convention not in ("ddim", "dpmsolver"):
        raise ValueError(f"timesteps: convention must be 'ddim' or 'dpmsolver', got {convention!r}")
    n = torch.float64
    if spacing == "trailing":
        # diffusers: round(arange(N, 0, -N/steps)) - 1, numpy's round-half-even like torch's
        t = torch.round(torch.arange(num_train, 0, -num_train / steps, dtype=n)) - 1
    elif spacing == "linspace":
        if convention == "ddim":
            t = torch.round(torch.linspace(0, num_train - 1, steps, dtype=n)).flip(0)
        else:
            t = torch.round(torch.linspace(0, num_train - 1, steps + 1, dtype=n)).flip(0)[:-1]
    elif spacing == "leading":
        if convention == "ddim":
            t = (torch.arange(steps, dtype=n) * (num_train // steps)).flip(0)
        else:
            t = (torch.arange(steps + 1, dtype=n) * (num_train // (steps + 1))).flip(0)[:-1]
        t = t + steps_offset
    else:
        raise ValueError(f"timesteps: spacing must be 'trailing', 'leading' or 'linspace', got {spacing!r}")
    return t.to(torch.int64)


def star_timesteps(steps: int = 15, t_max: int = 899, t_min: int = 0, mode: str = "fast",
                   discard_penultimate: bool = True) -> torch.Tensor:
    """Descending float32 timesteps of STAR's ``GaussianDiffusion.sample_sr`` with
    ``discretization="trailing"`` (STAR's own trailing, not diffusers': it starts at ``t_max``, the
    SDEdit start, and may be fractional).

    mode "fast" (STAR's default, its "15 steps"): 4 steps from t_max down to 500 and 11 from 500 to
        t_min, whatever ``steps`` is; "normal": ``steps`` (+1 when discarding) evenly spaced steps.
    discard_penultimate: STAR does this for ``dpmpp_2m_sde``: one extra timestep is laid out and the
        lowest one dropped, so the solver jumps from the last kept timestep straight to x0.
    Computed in float32 with ``torch.arange`` as STAR does, so the values (e.g. 454.4546) and the
    count (fast: 14 model evaluations) are STAR's. Feed to the samplers with the STAR schedule and a
    ``round_t=True`` wrapper (STAR's model sees the rounded timestep).
    """
    if mode not in ("fast", "normal"):
        raise ValueError(f"star_timesteps: mode must be 'fast' or 'normal', got {mode!r}")
    f = torch.float32
    if mode == "fast":
        t_mid = 500
        t = torch.cat([torch.arange(t_max, t_mid - 1, -((t_max - t_mid + 1) / 4), dtype=f),
                       torch.arange(t_mid, t_min - 1, -((t_mid - t_min + 1) / 11), dtype=f)])
    else:
        n = steps + (1 if discard_penultimate else 0)
        t = torch.arange(t_max, t_min - 1, -((t_max - t_min + 1) / n), dtype=f)
    t = t.clamp(t_min, t_max)
    return t[:-1] if discard_penultimate else t


def alpha_cumprod_at(alphas_cumprod: torch.Tensor, t: Union[torch.Tensor, float, int]) -> torch.Tensor:
    """abar at timestep(s) ``t`` (any shape and device; computed on the CPU) as float64 of ``t``'s shape.

    Integer t indexes the table. Fractional t interpolates log sigma, sigma = sqrt((1-abar)/abar),
    linearly between floor(t) and ceil(t) -- STAR's ``_t_to_sigma`` -- so abar = 0 (sigma = inf) at a
    neighbour gives abar = 0 rather than NaN.
    """
    table = alphas_cumprod.detach().to("cpu", torch.float64)
    t = torch.as_tensor(t).detach().cpu().to(torch.float64)
    if t.numel() and (t.min() < 0 or t.max() > len(table) - 1):
        raise ValueError(f"alpha_cumprod_at: timesteps must lie in 0..{len(table) - 1}, got "
                         f"{t.min().item()}..{t.max().item()}")
    lo = t.floor().long().clamp(0, len(table) - 1)
    hi = t.ceil().long().clamp(0, len(table) - 1)
    w = t - t.floor()
    log_sigma = 0.5 * torch.log((1 - table) / table)
    ls = (1 - w) * log_sigma[lo] + w * log_sigma[hi]
    return torch.where(w == 0, table[lo], torch.sigmoid(-2 * ls))


@dataclass(frozen=True)
class DDIMPlan:
    """What a diffusers ``DDIMScheduler`` config and a step count amount to, for :func:`sample_ddim`.

    alphas_cumprod: [N] float64;  timesteps: [steps] int64 descending;  final_alpha: abar after the
    last step;  step_ratio: N // steps (diffusers' previous-timestep rule);  prediction: the model's
    output ("v_prediction", "epsilon" or "sample").
    """
    alphas_cumprod: torch.Tensor
    timesteps: torch.Tensor
    final_alpha: float
    step_ratio: int
    prediction: str

    def denoiser(self, model: Callable) -> Denoiser:
        """The model's raw output turned into an x0 denoiser for this plan's prediction type."""
        if self.prediction == "v_prediction":
            return v_prediction(model, self.alphas_cumprod)
        if self.prediction == "epsilon":
            return eps_prediction(model, self.alphas_cumprod)
        return lambda x, t: model(x, t)


_BETAS = {"linear": betas_linear, "scaled_linear": betas_scaled_linear, "squaredcos_cap_v2": None}
_DDIM_DEFAULTS = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                      trained_betas=None, clip_sample=True, set_alpha_to_one=True, steps_offset=0,
                      prediction_type="epsilon", thresholding=False, timestep_spacing="leading",
                      rescale_betas_zero_snr=False)


def ddim_from_config(config: dict, steps: int) -> DDIMPlan:
    """A :class:`DDIMPlan` from a ``scheduler_config.json`` dict, with diffusers' defaults for absent
    keys (so a file means here what it means to ``DDIMScheduler.from_config``). ValueError naming the
    key for what the plan cannot reproduce (x0 clipping and thresholding change the update)."""
    c = dict(_DDIM_DEFAULTS)
    c.update({k: v for k, v in config.items() if not k.startswith("_")})
    n = c["num_train_timesteps"]
    if type(n) is not int or not 1 <= n <= 100_000:
        raise ValueError(f"\"num_train_timesteps\" is {n!r}, not a whole number in 1..100000")
    if c["clip_sample"] or c["thresholding"]:
        key = "thresholding" if c["thresholding"] else "clip_sample"
        raise ValueError(f"\"{key}\": true is not supported (x0 clipping); the Stream-DiffVSR / SD x4 "
                         f"schedulers set it false -- set \"{key}\": false")
    if c["prediction_type"] not in ("v_prediction", "epsilon", "sample"):
        raise ValueError(f"\"prediction_type\" is {c['prediction_type']!r}, not v_prediction, epsilon or sample")
    if c["trained_betas"] is not None:
        betas = torch.as_tensor(c["trained_betas"], dtype=torch.float64)
        if betas.shape != (n,) or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(f"\"trained_betas\" must be {n} values in (0, 1)")
    elif c["beta_schedule"] == "squaredcos_cap_v2":
        betas = betas_cosine(n)
    elif c["beta_schedule"] in _BETAS:
        lo, hi = c["beta_start"], c["beta_end"]
        if not all(isinstance(v, (int, float)) and 0 < v < 1 for v in (lo, hi)):
            raise ValueError(f"\"beta_start\" / \"beta_end\" are {lo!r} / {hi!r}, not numbers in (0, 1)")
        betas = _BETAS[c["beta_schedule"]](n, lo, hi)
    else:
        raise ValueError(f"\"beta_schedule\" is {c['beta_schedule']!r}, not one of {sorted(_BETAS)}")
    abar = alphas_cumprod(betas)
    if c["rescale_betas_zero_snr"]:
        abar = rescale_zero_terminal_snr(abar)
    ts = timesteps(n, steps, c["timestep_spacing"], int(c["steps_offset"] or 0))
    final = 1.0 if c["set_alpha_to_one"] else float(abar[0])
    return DDIMPlan(abar, ts, final, n // steps, c["prediction_type"])


# ---------------------------------------------------------------------------------------------------
# Denoiser wrappers
# ---------------------------------------------------------------------------------------------------

def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[B] float64 (CPU) -> [B,1,...,1] in x's dtype and device, broadcastable over x."""
    return values.to(device=x.device, dtype=x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))


def _model_t(t: torch.Tensor, round_t: bool) -> torch.Tensor:
    return t.round().long() if round_t and t.is_floating_point() else t


def v_prediction(model: Callable, alphas_cumprod: torch.Tensor, round_t: bool = False) -> Denoiser:
    """Denoiser of a v-prediction model: x0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v.

    Finite at abar = 0 (x0 = -v), which is why zero-SNR schedules use v. ``round_t``: call the model and
    read abar at round(t) for fractional t, as STAR does (its solver steps between fractional
    timesteps, its network and its v -> x0 conversion see the rounded one).
    """
    def denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = _model_t(torch.as_tensor(t, device=x.device), round_t)
        a = alpha_cumprod_at(alphas_cumprod, t)
        v = model(x, t)
        return _per_sample(a.sqrt(), x) * x - _per_sample((1 - a).sqrt(), x) * v
    return denoiser


def eps_prediction(model: Callable, alphas_cumprod: torch.Tensor, round_t: bool = False) -> Denoiser:
    """Denoiser of an epsilon-prediction model: x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t).

    Undefined at abar = 0 (divides by zero): epsilon models cannot use zero-terminal-SNR timesteps.
    """
    def denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = _model_t(torch.as_tensor(t, device=x.device), round_t)
        a = alpha_cumprod_at(alphas_cumprod, t)
        eps = model(x, t)
        return (x - _per_sample((1 - a).sqrt(), x) * eps) / _per_sample(a.sqrt(), x)
    return denoiser


def cfg(cond: Callable, uncond: Callable, scale: float, rescale: float = 0.0) -> Callable:
    """Classifier-free guidance of two callables ``f(x, t)`` with guidance rescale.

    out = uncond + scale (cond - uncond); with ``rescale`` r > 0 (Lin et al. 2024 Sec. 3.4; diffusers'
    ``rescale_noise_cfg``, STAR's ``guide_rescale``) out is pulled towards the std of ``cond``:
    out <- r * out * std(cond) / std(out) + (1 - r) * out, stds per sample over all other axes.

    The guidance itself is affine and commutes with the v/eps -> x0 conversion, but the rescale does
    not (std of v is not std of x0): wrap the *model outputs*, as diffusers and STAR do, and the
    denoiser wrapper around this, ``v_prediction(cfg(cond, uncond, 7.5, 0.2), abar)``. ``scale == 1``
    skips ``uncond`` (the result is ``cond`` exactly). A sample whose guided output is constant keeps
    it (where diffusers would divide by a zero std).
    """
    if not 0.0 <= rescale <= 1.0:
        raise ValueError(f"cfg: rescale must be in [0, 1], got {rescale}")

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c = cond(x, t)
        if scale == 1.0:
            return c
        u = uncond(x, t)
        out = u + scale * (c - u)
        if rescale > 0:
            dims = list(range(1, out.ndim))
            std_c, std_o = c.std(dim=dims, keepdim=True), out.std(dim=dims, keepdim=True)
            ratio = torch.where(std_o > 0, std_c / std_o, torch.ones_like(std_o))
            out = rescale * (out * ratio) + (1 - rescale) * out
        return out
    return guided


def chunked_in_time(denoiser: Callable, chunk: int, overlap: int, time_dim: int = 2,
                    with_frames: bool = False,
                    progress: Optional[Callable[[int, int], None]] = None) -> Callable:
    """A denoiser that runs ``denoiser`` on overlapping frame chunks and cross-fades the results.

    time_dim:    the frame axis of the latent: 2 for ``[B,C,T,H,W]`` (I2VGen-XL / STAR), 1 for
                 ``[B,T,C,H,W]`` (diffusers' CogVideoX).
    chunk, overlap: frames per chunk and least shared frames (:func:`windows.chunk_weights`); chunk <= 0 or
                 >= T runs the whole clip in one call.
    with_frames: call ``denoiser(x_chunk, t, frames=slice(start, stop))`` so a conditioned model can cut
                 its own conditioning (LR latent, metadata) to the same frames.
    progress:    ``progress(i + 1, n_chunks)`` after each chunk.
    A per-frame denoiser gives exactly the whole-clip result (the weights sum to one). Works on model
    outputs or on x0 alike: the cross-fade is linear, so chunking v and converting equals converting
    and chunking x0. STAR instead hard-cuts each overlap at its middle.
    """
    def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        plan = windows.chunk_weights(x.shape[time_dim], chunk, overlap)
        out = None
        for i, (s, e, w) in enumerate(plan):
            idx = [slice(None)] * x.ndim
            idx[time_dim] = slice(s, e)
            part = x[tuple(idx)]
            y = denoiser(part, t, frames=slice(s, e)) if with_frames else denoiser(part, t)
            if len(plan) == 1:
                out = y
            else:
                if out is None:
                    out = torch.zeros(y.shape[:time_dim] + (x.shape[time_dim],) + y.shape[time_dim + 1:],
                                      dtype=y.dtype, device=y.device)
                shape = [1] * y.ndim
                shape[time_dim] = e - s
                out[tuple(idx)] += y * w.to(device=y.device, dtype=y.dtype).reshape(shape)
            if progress is not None:
                progress(i + 1, len(plan))
        return out
    return run


# ---------------------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------------------

def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: Union[int, float, torch.Tensor],
              alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise (SDEdit start; diffusers' ``add_noise``).
    ``t``: one timestep or a [B] tensor of them."""
    a = alpha_cumprod_at(alphas_cumprod, t).reshape(-1)
    return _per_sample(a.sqrt(), x0) * x0 + _per_sample((1 - a).sqrt(), x0) * noise


def _steps(timesteps) -> list:
    """Descending timesteps as Python numbers (int when integral, so the model gets int64)."""
    ts = torch.as_tensor(timesteps).reshape(-1).tolist()
    return [int(v) if float(v).is_integer() else float(v) for v in ts]


def _t_batch(t, x: torch.Tensor) -> torch.Tensor:
    # [B] timestep for the denoiser; fractional ones in float64 except where the device has none (MPS)
    dtype = torch.int64 if isinstance(t, int) else torch.float32 if x.device.type == "mps" else torch.float64
    return torch.full((x.shape[0],), t, dtype=dtype, device=x.device)


def _abar(alphas_cumprod: torch.Tensor, t) -> float:
    return float(alpha_cumprod_at(alphas_cumprod, t))


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    # the running latent is kept in at least float32 (diffusers upcasts for the update too)
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


def _default_noise(x: torch.Tensor, generator: Optional[torch.Generator]) -> Callable[[int], torch.Tensor]:
    # float32 on the generator's device, as diffusers' randn_tensor: same seed -> same noise
    device = generator.device if generator is not None else x.device

    def draw(i: int) -> torch.Tensor:
        return torch.randn(x.shape, generator=generator, device=device, dtype=torch.float32)
    return draw


def sample_one_step(denoiser: Denoiser, x: torch.Tensor, t: Union[int, float],
                    callback: Optional[Callback] = None) -> torch.Tensor:
    """One denoiser call at timestep ``t``: the x0 estimate (DOVE: ``t = 399`` on the un-noised LR
    latent, x0 = sqrt(abar) x - sqrt(1 - abar) v with :func:`v_prediction`). [B, ...] -> [B, ...]."""
    t = _steps([t])[0]
    x0 = denoiser(x, _t_batch(t, x))
    if callback is not None:
        callback(0, 1, x0, x0)
    return x0


def sample_ddim(denoiser: Denoiser, x: torch.Tensor, timesteps, alphas_cumprod: torch.Tensor,
                eta: float = 0.0, generator: Optional[torch.Generator] = None, final_alpha: float = 1.0,
                callback: Optional[Callback] = None, step_ratio: Optional[int] = None,
                noise_sampler: Optional[Callable[[int], torch.Tensor]] = None) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12 and 16), diffusers' ``DDIMScheduler.step`` as a loop.

    x:           [B, ...] latent at ``timesteps[0]`` (pure noise, or :func:`add_noise` for SDEdit).
    timesteps:   descending; step i goes from timesteps[i] to timesteps[i+1], the last to
                 abar = ``final_alpha`` (1.0: diffusers' ``set_alpha_to_one``).
    eta:         0 deterministic DDIM, 1 DDPM-like; sigma_i = eta sqrt((1-a')/(1-a) (1 - a/a')).
    step_ratio:  step i instead targets timesteps[i] - step_ratio (``final_alpha`` below 0), which is
                 diffusers' rule (num_train // steps). It is the next listed timestep for "trailing" and
                 "leading" when steps divides num_train, and not for "linspace" or other counts.
    noise_sampler: ``noise_sampler(i) -> [B, ...]`` instead of drawing from ``generator``.
    Noise: one draw per step when eta > 0, including the last (whose weight is 0), as diffusers.
    Returns the final latent (x0 at abar = 1), in ``x``'s dtype.
    """
    ts = _steps(timesteps)
    in_dtype, work = x.dtype, _work_dtype(x)
    draw = noise_sampler or _default_noise(x, generator)
    x = x.to(work)
    for i, t in enumerate(ts):
        if step_ratio is not None:
            t_prev = t - step_ratio
            a_prev = _abar(alphas_cumprod, t_prev) if t_prev >= 0 else float(final_alpha)
        else:
            a_prev = _abar(alphas_cumprod, ts[i + 1]) if i + 1 < len(ts) else float(final_alpha)
        a = _abar(alphas_cumprod, t)
        x0 = denoiser(x.to(in_dtype), _t_batch(t, x)).to(work)
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        std = eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - std ** 2, 0.0)) * eps
        if eta > 0:
            x = x + std * draw(i).to(device=x.device, dtype=work)
        if callback is not None:
            callback(i, len(ts), x.to(in_dtype), x0.to(in_dtype))
    return x.to(in_dtype)


def sample_dpmpp_2m_sde(denoiser: Denoiser, x: torch.Tensor, timesteps, alphas_cumprod: torch.Tensor,
                        generator: Optional[torch.Generator] = None, callback: Optional[Callback] = None,
                        eta: float = 1.0, s_noise: float = 1.0, solver_type: str = "midpoint",
                        min_alpha_cumprod: float = ZERO_SNR_FLOOR,
                        noise_sampler: Optional[Callable[[int], torch.Tensor]] = None) -> torch.Tensor:
    """DPM-Solver++(2M) SDE (Lu et al. 2022), in VP form.

    eta = 1 is diffusers' ``DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++",
    solver_order=2)`` (Karras sigmas off, ``final_sigmas_type="zero"``), and k-diffusion's / STAR's
    ``sample_dpmpp_2m_sde`` after x_VE = x_VP / alpha; eta = 0 is the ODE ("dpmsolver++").
    With lambda = log(alpha / sigma), h = lambda' - lambda, rho = e^-h = alpha sigma' / (sigma alpha')::

        x' = sigma'/sigma rho^eta x + alpha' (1 - rho^(1+eta)) x0_i + alpha' c D1
             + sigma' sqrt(1 - rho^(2 eta)) s_noise z,           D1 = (h / h_prev) (x0_i - x0_{i-1})
        c = (1 - rho^(1+eta)) / 2 (midpoint)  or  1 - (1 - rho^(1+eta)) / ((1+eta) h) (heun)

    The first step and the last (to abar = 1, where it returns x0 exactly) are first order, as in
    diffusers. rho is formed from alpha and sigma, not from lambdas, so abar = 0 stays finite; abar
    below ``min_alpha_cumprod`` is raised to it as diffusers does for zero-SNR schedules (its
    ``alphas_cumprod[-1] = 2**-24``); for bit parity give the denoiser wrapper the same floored table
    (unfloored, its first x0 differs by sqrt(2**-24) x = 2.4e-4 x, and is the exact one).
    Noise: one draw per step when eta > 0, including the last (weight 0), as diffusers.
    x: [B, ...] at ``timesteps[0]``; returns the final x0 in ``x``'s dtype.
    """
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"sample_dpmpp_2m_sde: solver_type must be 'midpoint' or 'heun', "
                         f"got {solver_type!r}")
    ts = _steps(timesteps)
    in_dtype, work = x.dtype, _work_dtype(x)
    draw = noise_sampler or _default_noise(x, generator)
    x = x.to(work)
    abar = [max(_abar(alphas_cumprod, t), min_alpha_cumprod) for t in ts] + [1.0]
    old_x0, h_prev = None, None
    for i, t in enumerate(ts):
        x0 = denoiser(x.to(in_dtype), _t_batch(t, x)).to(work)
        a_s, a_t = abar[i], abar[i + 1]
        alpha_s, sigma_s = math.sqrt(a_s), math.sqrt(1 - a_s)
        alpha_t, sigma_t = math.sqrt(a_t), math.sqrt(1 - a_t)
        rho = alpha_s * sigma_t / (sigma_s * alpha_t)             # e^-h, 0 at either end
        h = -math.log(rho) if rho > 0 else math.inf
        gain = alpha_t * (1 - rho ** (1 + eta))
        x_new = (sigma_t / sigma_s * rho ** eta) * x + gain * x0
        last = i + 1 == len(ts)
        if old_x0 is not None and not last:
            d1 = (h / h_prev) * (x0 - old_x0)                     # 0 after a step from abar = 0
            if solver_type == "midpoint":
                x_new = x_new + 0.5 * gain * d1
            else:
                x_new = x_new + alpha_t * ((1 - rho ** (1 + eta)) / (-(1 + eta) * h) + 1) * d1
        if eta > 0:
            z = draw(i).to(device=x.device, dtype=work)
            x_new = x_new + (sigma_t * math.sqrt(max(1 - rho ** (2 * eta), 0.0)) * s_noise) * z
        x, old_x0, h_prev = x_new, x0, h
        if callback is not None:
            callback(i, len(ts), x.to(in_dtype), x0.to(in_dtype))
    return x.to(in_dtype)


__all__ = [
    "ZERO_SNR_FLOOR", "betas_linear", "betas_scaled_linear", "betas_cosine", "alphas_cumprod",
    "rescale_zero_terminal_snr", "shift_snr", "logsnr_cosine_interp", "timesteps", "star_timesteps",
    "alpha_cumprod_at", "v_prediction", "eps_prediction", "cfg", "chunked_in_time",
    "add_noise", "sample_one_step", "sample_ddim", "sample_dpmpp_2m_sde",
]
