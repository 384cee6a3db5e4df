"""models/sampling.py against independent references only:

- diffusers (installed; imported here and never by the module): DDIMScheduler, DPMSolverMultistepScheduler
  (``sde-dpmsolver++`` and ``dpmsolver++``), CogVideoXDPMScheduler (DOVE's one step), their
  ``set_timesteps``, ``rescale_zero_terminal_snr``, ``rescale_noise_cfg``, ``add_noise``;
- NJU-PCALab/STAR (``video_to_video/diffusion``, commit 69b8bc5): numbers its own code printed (schedule,
  timesteps, sigmas, a whole CFG + dpmpp_2m_sde run on inputs from an exact integer generator), recorded
  below because STAR is not installable here (torchsde, CUDA-only model code);
- exact identities (chunked == whole clip for a per-frame denoiser, weights summing to one).

Everything runs in float64 on tiny latents, so most tolerances are 1e-12; looser ones say why.
"""
import math

import pytest
import torch

from metavsr.models import sampling as S
from metavsr.models.ops import windows

diffusers = pytest.importorskip("diffusers")
from diffusers import (CogVideoXDPMScheduler, DDIMScheduler,  # noqa: E402
                       DPMSolverMultistepScheduler)
from diffusers.schedulers import scheduling_ddim, scheduling_ddim_cogvideox  # noqa: E402

try:  # the same function as the SD pipelines' (which need transformers to import)
    from diffusers.guiders.guider_utils import rescale_noise_cfg
except ImportError:  # older diffusers
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

# diffusers' own set_timesteps trips numpy 2's copy-keyword deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

F64 = torch.float64
SHAPE = (2, 4, 3, 4, 4)  # [B,C,T,H,W]


class TinyModel:
    """A fixed random map on the whole latent (tanh of a dense linear map, plus t-dependent terms),
    standing in for a v- or eps-predicting network. Takes t as diffusers (0-dim) or we ([B]) pass it."""

    def __init__(self, shape=SHAPE, seed=0):
        d = math.prod(shape[1:])
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(d, d, generator=g, dtype=F64) / math.sqrt(d)
        self.b = torch.randn(shape[1:], generator=g, dtype=F64)

    def __call__(self, x, t):
        tt = torch.as_tensor(t, dtype=x.dtype).reshape(-1, *[1] * (x.ndim - 1)) / 1000
        h = (x.flatten(1) @ self.w.to(x.dtype)).reshape(x.shape)
        return torch.tanh(h) * (0.5 + tt) + 0.3 * x * (1 - tt) + self.b.to(x.dtype) * tt


def _latent(seed=1, dtype=F64):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _wrap(pred, model, table):
    return (S.v_prediction if pred == "v_prediction" else S.eps_prediction)(model, table)


# ---------------------------------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,fn", [("linear", S.betas_linear), ("scaled_linear", S.betas_scaled_linear),
                                     ("squaredcos_cap_v2", S.betas_cosine)])
def test_betas_and_alphas_cumprod_match_diffusers(name, fn):
    kw = {"beta_start": 0.00085, "beta_end": 0.012} if name == "scaled_linear" else {}
    ref = DDIMScheduler(beta_schedule=name, **kw)
    betas = fn(1000)
    # diffusers computes in float32: torch.linspace (and the square) in float32 for the linear ones, a
    # few ulps (measured 1.1e-7 / 2.2e-7 relative); float64 Python math rounded once for the cosine ...
    assert ((betas - ref.betas.double()).abs() / betas).max() < 5e-7
    if name == "squaredcos_cap_v2":
        assert torch.equal(betas.float(), ref.betas)
    # ... and its float32 cumprod drifts over 1000 products (measured up to 1.3e-5 relative, cosine)
    abar = S.alphas_cumprod(betas)
    assert ((abar - ref.alphas_cumprod.double()).abs() / abar).max() < 3e-5
    # same products of the same float32 betas in float64: exact
    assert (S.alphas_cumprod(ref.betas) - torch.cumprod(1 - ref.betas.double(), 0)).abs().max() == 0


def test_rescale_zero_terminal_snr_matches_diffusers():
    betas = S.betas_scaled_linear(1000)
    abar = S.alphas_cumprod(betas)
    ours = S.rescale_zero_terminal_snr(abar)
    ddim = torch.cumprod(1 - scheduling_ddim.rescale_zero_terminal_snr(betas.clone()), 0)  # betas API
    cog = scheduling_ddim_cogvideox.rescale_zero_terminal_snr(abar.clone())               # abar API
    assert (ours - ddim).abs().max() < 1e-12
    assert (ours - cog).abs().max() < 1e-15
    assert ours[-1] == 0 and abs(float(ours[0] - abar[0])) < 1e-15


def test_cogvideox_schedule_and_dpmsolver_floor_match_diffusers():
    ref = CogVideoXDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                snr_shift_scale=3.0, rescale_betas_zero_snr=True)
    ours = S.rescale_zero_terminal_snr(S.shift_snr(S.alphas_cumprod(S.betas_scaled_linear(1000)), 3.0))
    assert ref.alphas_cumprod.dtype == F64  # CogVideoX's scaled_linear is built in float64
    assert (ours - ref.alphas_cumprod).abs().max() < 1e-15
    dpm = DPMSolverMultistepScheduler(beta_schedule="scaled_linear", rescale_betas_zero_snr=True)
    assert float(dpm.alphas_cumprod[-1]) == S.ZERO_SNR_FLOOR


STEP_COUNTS = [1, 2, 3, 4, 7, 10, 15, 25, 50, 333]


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("convention,cls", [("ddim", DDIMScheduler),
                                            ("dpmsolver", DPMSolverMultistepScheduler)])
def test_timesteps_match_diffusers(spacing, convention, cls):
    for offset in ([0, 1] if spacing == "leading" else [0]):
        ref = cls(timestep_spacing=spacing, steps_offset=offset)
        for n in STEP_COUNTS:
            ref.set_timesteps(n)
            ours = S.timesteps(1000, n, spacing, steps_offset=offset, convention=convention)
            assert ours.dtype == torch.int64
            assert ours.tolist() == ref.timesteps.tolist(), (spacing, convention, offset, n)


# STAR's sigma = sqrt(1 - abar) (GaussianDiffusion.sigmas), from its noise_schedule('logsnr_cosine_interp',
# n=1000, zero_terminal_snr=True, scale_min=2, scale_max=4) run with torch's default dtype set to float64
STAR_SIGMA = {0: 0.0011061680635373059, 1: 0.004251608404884343, 10: 0.032743221193423926,
              100: 0.3226202206075105, 250: 0.7025405833183411, 500: 0.9430096718706814,
              750: 0.9925480892302437, 899: 0.999093619708387, 990: 0.9999931761417796,
              998: 0.9999998683368159, 999: 1.0}

# STAR's sample_sr(solver='dpmpp_2m_sde', discretization='trailing', t_max=899, t_min=0): the timesteps
# it lays out (before dropping the penultimate sigma) and the VE sigmas it keeps, its schedule built in
# float64 (built in float32, as STAR runs, the sigmas near t = 899 carry its float32 cancellation in
# 1 - sigma^2: 2e-5 relative) and then read by its float32 _t_to_sigma
STAR_T = {
    ("fast", 15): [899.0, 799.0, 699.0, 599.0, 500.0, 454.454559, 408.909088, 363.363647, 317.818176,
                   272.272736, 226.72728, 181.181824, 135.636368, 90.0909119, 44.5454559],
    ("normal", 15): [899.0, 842.75, 786.5, 730.25, 674.0, 617.75, 561.5, 505.25, 449.0, 392.75, 336.5,
                     280.25, 224.0, 167.75, 111.5, 55.25],
    ("normal", 7): [899.0, 786.5, 674.0, 561.5, 449.0, 336.5, 224.0, 111.5],
}
STAR_VE_SIGMAS = {
    ("fast", 15): [23.4711494, 10.692131, 6.36431503, 4.16477585, 2.83385825, 2.3784163, 1.99024117,
                   1.65495038, 1.36193919, 1.10319149, 0.872514486, 0.665024698, 0.476792961, 0.304603904],
    ("normal", 15): [23.4711494, 14.2903433, 9.93284035, 7.37723398, 5.69116831, 4.49170065, 3.59239912,
                     2.89151597, 2.32870913, 1.86584425, 1.47757363, 1.14632738, 0.859481871, 0.607666969,
                     0.383725226],
    ("normal", 7): [23.4711494, 9.93284035, 5.69116831, 3.59239912, 2.32870913, 1.47757363, 0.859481871],
}


def test_logsnr_cosine_interp_matches_star():
    abar = S.logsnr_cosine_interp()
    assert abar.dtype == F64 and abar.shape == (1000,)
    for t, sigma in STAR_SIGMA.items():
        assert abs(math.sqrt(1 - float(abar[t])) - sigma) < 1e-12, t
    assert abar[-1] == 0 and bool((abar[1:] < abar[:-1]).all())


@pytest.mark.parametrize("mode,steps", list(STAR_T))
def test_star_timesteps_and_fractional_sigmas_match_star(mode, steps):
    ts = S.star_timesteps(steps, 899, 0, mode)
    assert [float("%.9g" % v) for v in ts.tolist()] == STAR_T[(mode, steps)][:-1]  # penultimate dropped
    abar = S.alpha_cumprod_at(S.logsnr_cosine_interp(), ts)
    ve = ((1 - abar) / abar).sqrt()
    ref = torch.tensor(STAR_VE_SIGMAS[(mode, steps)], dtype=F64)
    # STAR interpolates log sigma in float32 (and 9 digits were kept): relative 1e-6
    assert ((ve - ref).abs() / ref).max() < 1e-6


def _lcg(n, seed):
    """n values in [-1, 1) from a 31-bit LCG: the same numbers on every platform (STAR recorded them)."""
    s, out = seed, []
    for _ in range(n):
        s = (1103515245 * s + 12345) % 2 ** 31
        out.append(s / 2 ** 30 - 1)
    return torch.tensor(out, dtype=F64)


# STAR's GaussianDiffusion.sample_sr(noise=diffuse(lr, 899, noise0), guide_scale=7.5, guide_rescale=0.2,
# solver='dpmpp_2m_sde', solver_mode='fast', steps=15, t_max=899, discretization='trailing') on the inputs
# of test_star_end_to_end, its BrownianTree noise sampler replaced by the same draws (flattened output)
STAR_OUT = [-0.935638661353391, 2.32127460356692, 1.99354992458819, -0.368976514212201, 1.2398259781743,
            2.85097227486721, 1.14721599228523, 2.6908227987807, 0.405736542285535, 0.811178098101603,
            -0.0407540823440186, 2.08340547627644, -0.116393624823366, 0.313423616074508,
            -1.80932768410687, 0.540005991850501, 2.30636072605806, -1.27425178978659, -1.17144426397465,
            -2.22966187465258, -0.818205564748752, -1.59499542493574, -2.7008873412104, 0.219918657109166,
            3.54234121495072, 0.259522000016483, -2.02314771772156, -1.53373985411935, 1.25853702912645,
            3.03148061837267, 1.62034054756274, 2.51998666409346]
# the same with STAR's float32 _t_to_sigma redone in float64 (nothing else changed)
STAR_OUT_F64_SIGMAS = [
    -0.935638705514862, 2.32127478118941, 1.99354992638941, -0.368976644736118, 1.2398260295847,
    2.85097219393335, 1.14721603631025, 2.6908228628633, 0.405736468163154, 0.811178120254527,
    -0.0407541444053538, 2.08340574973503, -0.116393612613232, 0.313423589496507, -1.8093275916711,
    0.540006032020848, 2.30636083265194, -1.27425172038117, -1.17144430340335, -2.2296619977132,
    -0.81820562074849, -1.59499550288516, -2.70088741313053, 0.219918653391869, 3.54234120159652,
    0.259521956274793, -2.02314776799368, -1.53373980959484, 1.25853703227688, 3.0314807327552,
    1.62034068133069, 2.51998674043726]


def test_star_end_to_end_matches_star():
    """STAR = dpmpp_2m_sde(v_prediction(cfg(cond, uncond, 7.5, 0.2), round_t), star_timesteps()),
    started from the SDEdit latent at t = 899 times sqrt(1 - abar_899): STAR feeds its noised latent
    where k-diffusion expects unit noise (``x = noise * sigmas[0]``, then ``x * c_in``)."""
    shape = (1, 2, 4, 2, 2)
    w = _lcg(8, 1).reshape(2, 4) * 0.8
    y_c, y_u, lr, noise0 = (_lcg(32, k).reshape(shape) * 1.7 for k in (2, 3, 4, 5))
    draws = [_lcg(32, 100 + i).reshape(shape) * 1.7 for i in range(14)]
    seen = []

    def net(x, t, y):
        seen.append(t.tolist())
        tt = torch.as_tensor(t, dtype=F64).reshape(-1, 1, 1, 1, 1)
        h = torch.einsum("oc,bcthw->bothw", w[:, :2], x) + torch.einsum("oc,bcthw->bothw", w[:, 2:], y)
        return torch.tanh(h) * (0.5 + tt / 2000) + 0.1 * x

    abar = S.logsnr_cosine_interp()
    den = S.v_prediction(S.cfg(lambda x, t: net(x, t, y_c), lambda x, t: net(x, t, y_u), 7.5, 0.2),
                         abar, round_t=True)
    x = S.add_noise(lr, noise0, 899, abar) * math.sqrt(1 - float(abar[899]))
    out = S.sample_dpmpp_2m_sde(den, x, S.star_timesteps(), abar, noise_sampler=lambda i: draws[i])
    assert [s[0] for s in seen[::2]] == [899, 799, 699, 599, 500, 454, 409, 363, 318, 272, 227, 181, 136, 90]
    out = out.flatten()
    # STAR's own float32 sigmas: ~3e-7 away; with them in float64, the recorded 15 digits
    assert (out - torch.tensor(STAR_OUT, dtype=F64)).abs().max() < 1e-6
    assert (out - torch.tensor(STAR_OUT_F64_SIGMAS, dtype=F64)).abs().max() < 1e-12


def test_alpha_cumprod_at_interpolates_log_sigma():
    table = S.logsnr_cosine_interp()
    ints = torch.tensor([0, 17, 899, 999])
    assert torch.equal(S.alpha_cumprod_at(table, ints), table[ints])
    a = S.alpha_cumprod_at(table, torch.tensor([998.5, 10.25]))
    assert a[0] == 0  # next to abar = 0 (sigma = inf): 0, not NaN
    ls = 0.5 * torch.log((1 - table) / table)
    assert abs(float(0.5 * torch.log((1 - a[1]) / a[1])) - float(0.75 * ls[10] + 0.25 * ls[11])) < 1e-12


# ---------------------------------------------------------------------------------------------------
# one step, add_noise
# ---------------------------------------------------------------------------------------------------

def test_add_noise_matches_diffusers():
    ref = DDIMScheduler(beta_schedule="scaled_linear", rescale_betas_zero_snr=True)
    table = ref.alphas_cumprod.double()
    x0, noise = _latent(1), _latent(2)
    t = torch.tensor([899, 999])
    assert (S.add_noise(x0, noise, t, table) - ref.add_noise(x0, noise, t)).abs().max() < 1e-15
    one = S.add_noise(x0, noise, 399, table)
    assert (one - ref.add_noise(x0, noise, torch.tensor([399]))).abs().max() < 1e-15


def test_one_step_matches_cogvideox_get_velocity_as_dove():
    """DOVE: x0 = scheduler.get_velocity(model_output, latents, t) at t = 399 from the un-noised latent
    (get_velocity(sample, noise, t) = sqrt(abar) noise - sqrt(1 - abar) sample, with the arguments
    swapped this is the v -> x0 conversion)."""
    ref = CogVideoXDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                snr_shift_scale=1.0, rescale_betas_zero_snr=True,
                                prediction_type="v_prediction", timestep_spacing="trailing")
    table = ref.alphas_cumprod.double()  # the same table, so this compares the formula
    model, z = TinyModel(), _latent(3)
    t = torch.full((SHAPE[0],), 399, dtype=torch.long)
    want = ref.get_velocity(model(z, t), z, t)
    seen = []
    got = S.sample_one_step(S.v_prediction(model, table), z, 399,
                            callback=lambda i, n, x, x0: seen.append((i, n)))
    assert (got - want).abs().max() < 1e-15
    assert seen == [(0, 1)]


# ---------------------------------------------------------------------------------------------------
# DDIM
# ---------------------------------------------------------------------------------------------------

def _ddim_ref(pred, spacing, steps, zero_snr, offset=0, dtype=F64):
    ref = DDIMScheduler(beta_schedule="scaled_linear", prediction_type=pred, timestep_spacing=spacing,
                        rescale_betas_zero_snr=zero_snr, steps_offset=offset, clip_sample=False,
                        set_alpha_to_one=True)
    ref.set_timesteps(steps)
    # diffusers stores the table in float32; hand it the same values in float64 so the comparison
    # measures the step, not float32 square roots of the table
    table = ref.alphas_cumprod.double()
    ref.alphas_cumprod, ref.final_alpha_cumprod = table, torch.tensor(1.0, dtype=F64)
    return ref, table


DDIM_CASES = [  # (prediction, spacing, steps, zero terminal SNR, steps_offset)
    ("v_prediction", "trailing", 4, True, 0),   # Stream-DiffVSR
    ("v_prediction", "trailing", 10, True, 0),
    ("epsilon", "leading", 10, False, 1),       # SD 1.x
    ("epsilon", "trailing", 5, False, 0),
    ("v_prediction", "leading", 8, False, 1),
]


@pytest.mark.parametrize("eta", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("pred,spacing,steps,zero_snr,offset", DDIM_CASES)
def test_ddim_matches_diffusers(pred, spacing, steps, zero_snr, offset, eta):
    ref, table = _ddim_ref(pred, spacing, steps, zero_snr, offset)
    model, x_start = TinyModel(), _latent(4)
    g = torch.Generator().manual_seed(7)
    noises = [torch.randn(SHAPE, generator=g, dtype=F64) for _ in range(steps)]
    x = x_start.clone()
    for i, t in enumerate(ref.timesteps):
        x = ref.step(model(x, t), t, x, eta=eta, variance_noise=noises[i] if eta > 0 else None).prev_sample
    seen = []
    ts = S.timesteps(1000, steps, spacing, steps_offset=offset)
    assert ts.tolist() == ref.timesteps.tolist()
    ours = S.sample_ddim(_wrap(pred, model, table), x_start, ts, table, eta=eta,
                         noise_sampler=lambda i: noises[i], callback=lambda i, n, xi, x0: seen.append((i, n)))
    if not torch.isfinite(x).all():
        # diffusers takes (1 - a_prev - sigma^2)^(1/2); at the zero-SNR step with eta 1 that is 0 up to
        # rounding and may come out negative (NaN). Ours must stay finite; there is nothing to compare.
        assert torch.isfinite(ours).all()
        pytest.skip(f"diffusers {diffusers.__version__} returns NaN here (square root of a rounding-negative 0)")
    # derived eps = (x - sqrt(a) x0) / sqrt(1 - a) instead of diffusers' direct one: float64 rounding
    assert (ours - x).abs().max() < 1e-12
    assert seen == [(i, steps) for i in range(steps)]


def test_ddim_same_generator_draws_as_diffusers_float32():
    """Same seed, same noise: one float32 draw per step, as DDIMScheduler with a float32 model.
    (4 steps: with a count that does not divide 1000, e.g. 6, DDIMScheduler's t - 1000 // 6 rule leaves
    the trailing grid, see the step_ratio test.)"""
    ref, table = _ddim_ref("v_prediction", "trailing", 4, False)  # zero SNR: see the NaN note above
    model, x_start = TinyModel(), _latent(5, torch.float32)
    g = torch.Generator().manual_seed(11)
    x = x_start.clone()
    for t in ref.timesteps:
        x = ref.step(model(x, t), t, x, eta=1.0, generator=g).prev_sample
    ours = S.sample_ddim(S.v_prediction(model, table), x_start, S.timesteps(1000, 4, "trailing"), table,
                         eta=1.0, generator=torch.Generator().manual_seed(11))
    assert ours.dtype == torch.float32
    assert (ours - x).abs().max() < 1e-5  # float32 arithmetic on both sides


def test_ddim_step_ratio_is_diffusers_rule_for_linspace():
    """DDIMScheduler steps t -> t - num_train // steps, which is not the next listed timestep for
    "linspace"; ``step_ratio`` reproduces it."""
    ref, table = _ddim_ref("epsilon", "linspace", 7, False)
    model, x_start = TinyModel(), _latent(6)
    x = x_start.clone()
    for t in ref.timesteps:
        x = ref.step(model(x, t), t, x).prev_sample
    ts = S.timesteps(1000, 7, "linspace")
    ours = S.sample_ddim(S.eps_prediction(model, table), x_start, ts, table, step_ratio=1000 // 7)
    assert (ours - x).abs().max() < 1e-12
    listed = S.sample_ddim(S.eps_prediction(model, table), x_start, ts, table)
    assert (listed - x).abs().max() > 1e-3  # the natural rule is a different sampler here


# ---------------------------------------------------------------------------------------------------
# DPM-Solver++(2M) SDE
# ---------------------------------------------------------------------------------------------------

def _dpm_ref(pred, spacing, steps, zero_snr, algorithm="sde-dpmsolver++", solver_type="midpoint"):
    ref = DPMSolverMultistepScheduler(beta_schedule="scaled_linear", prediction_type=pred,
                                      algorithm_type=algorithm, solver_order=2, solver_type=solver_type,
                                      timestep_spacing=spacing, rescale_betas_zero_snr=zero_snr,
                                      use_karras_sigmas=False, final_sigmas_type="zero")
    ref.set_timesteps(steps)
    table = ref.alphas_cumprod.double()  # with diffusers' 2**-24 floor when zero_snr
    # its sigmas are float32 numpy; the same values from the same table in float64
    a = table[ref.timesteps]
    ref.sigmas = torch.cat([((1 - a) / a).sqrt(), torch.zeros(1, dtype=F64)])
    return ref, table


DPM_CASES = [  # (prediction, spacing, steps, zero terminal SNR, solver type)
    ("v_prediction", "trailing", 15, True, "midpoint"),
    ("v_prediction", "trailing", 5, True, "midpoint"),
    ("v_prediction", "trailing", 15, True, "heun"),
    ("epsilon", "leading", 12, False, "midpoint"),
    ("epsilon", "linspace", 7, False, "heun"),
]


@pytest.mark.parametrize("pred,spacing,steps,zero_snr,solver_type", DPM_CASES)
def test_dpmpp_2m_sde_matches_diffusers(pred, spacing, steps, zero_snr, solver_type):
    ref, table = _dpm_ref(pred, spacing, steps, zero_snr, solver_type=solver_type)
    model, x_start = TinyModel(), _latent(8)
    g = torch.Generator().manual_seed(3)
    x = x_start.clone()
    for t in ref.timesteps:
        x = ref.step(model(x, t), t, x, generator=g).prev_sample
    ts = S.timesteps(1000, steps, spacing, convention="dpmsolver")
    assert ts.tolist() == ref.timesteps.tolist()
    seen = []
    ours = S.sample_dpmpp_2m_sde(_wrap(pred, model, table), x_start, ts, table, solver_type=solver_type,
                                 generator=torch.Generator().manual_seed(3),
                                 callback=lambda i, n, xi, x0: seen.append(i))
    # DPMSolverMultistepScheduler.step rounds the running sample to float32 at every step ("upcast",
    # a downcast for float64): ~6e-8 of |x| per step, so 1e-6 of max |x| and not 1e-12
    assert (ours - x).abs().max() < 1e-6 * x.abs().max()
    assert seen == list(range(steps))


@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
def test_dpmpp_2m_ode_matches_diffusers(solver_type):
    """eta = 0 is the deterministic DPM-Solver++(2M) ("dpmsolver++"), drawing no noise."""
    ref, table = _dpm_ref("v_prediction", "trailing", 10, True, algorithm="dpmsolver++",
                          solver_type=solver_type)
    model, x_start = TinyModel(), _latent(9)
    x = x_start.clone()
    for t in ref.timesteps:
        x = ref.step(model(x, t), t, x).prev_sample
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    ours = S.sample_dpmpp_2m_sde(S.v_prediction(model, table), x_start, S.timesteps(1000, 10, "trailing"),
                                 table, eta=0.0, solver_type=solver_type, generator=g)
    assert (ours - x).abs().max() < 1e-6 * x.abs().max()  # float32 rounding of the sample, as above
    assert torch.equal(g.get_state(), state)


def test_zero_terminal_snr_stays_finite_without_floor():
    """abar = 0 at the first step (trailing from t = 999) with no floor at all: finite, and within the
    floor's own effect of the floored run."""
    table = S.rescale_zero_terminal_snr(S.alphas_cumprod(S.betas_scaled_linear()))
    assert table[-1] == 0
    model, x_start = TinyModel(), _latent(10)
    den = S.v_prediction(model, table)
    ts = S.timesteps(1000, 8, "trailing")
    raw = S.sample_dpmpp_2m_sde(den, x_start, ts, table, generator=torch.Generator().manual_seed(1),
                                min_alpha_cumprod=0.0)
    floored = S.sample_dpmpp_2m_sde(den, x_start, ts, table, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(raw).all() and torch.isfinite(floored).all()
    assert (raw - floored).abs().max() < 0.05
    ddim = S.sample_ddim(den, x_start, ts, table, eta=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(ddim).all()


# ---------------------------------------------------------------------------------------------------
# guidance, chunking
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale,rescale", [(7.5, 0.2), (5.0, 0.7), (3.0, 0.0), (7.5, 1.0)])
def test_cfg_matches_rescale_noise_cfg(scale, rescale):
    cond_m, uncond_m = TinyModel(seed=1), TinyModel(seed=2)
    x, t = _latent(12), torch.tensor([500, 500])
    c, u = cond_m(x, t), uncond_m(x, t)
    want = u + scale * (c - u)
    if rescale > 0:
        want = rescale_noise_cfg(want, c, guidance_rescale=rescale)
    got = S.cfg(cond_m, uncond_m, scale, rescale)(x, t)
    assert (got - want).abs().max() < 1e-13


def test_cfg_scale_one_is_cond_alone():
    def uncond(x, t):
        raise AssertionError("uncond must not run at scale 1")
    model, x, t = TinyModel(), _latent(13), torch.tensor([10, 10])
    assert torch.equal(S.cfg(model, uncond, 1.0, 0.5)(x, t), model(x, t))


CHUNK_CASES = [(16, 5, 2), (13, 4, 1), (9, 8, 6), (20, 8, 6), (7, 0, 0), (7, 10, 3), (11, 3, 0)]


@pytest.mark.parametrize("length,chunk,overlap", CHUNK_CASES)
def test_chunk_weights_sum_to_one(length, chunk, overlap):
    plan = windows.chunk_weights(length, chunk, overlap)
    total = torch.zeros(length, dtype=F64)
    for s, e, w in plan:
        assert 0 <= s < e <= length and w.shape == (e - s,) and bool((w > 0).all())
        assert e - s == (length if chunk <= 0 or chunk >= length else chunk)
        total[s:e] += w
    assert (total - 1).abs().max() < 1e-15
    for (s0, e0, _), (s1, _, _) in zip(plan, plan[1:]):
        assert e0 - s1 >= overlap  # neighbours share at least the asked overlap


@pytest.mark.parametrize("time_dim", [2, 1])
@pytest.mark.parametrize("length,chunk,overlap", CHUNK_CASES)
def test_chunked_in_time_equals_whole_clip_for_per_frame_denoiser(time_dim, length, chunk, overlap):
    g = torch.Generator().manual_seed(0)
    c = 3
    w = torch.randn(c, c, generator=g, dtype=F64)
    shape = [2, c, length, 5, 6] if time_dim == 2 else [2, length, c, 5, 6]
    x = torch.randn(shape, generator=g, dtype=F64)
    cdim = 1 if time_dim == 2 else 2

    def per_frame(xc, t):  # channel mixing, a spatial roll and a nonlinearity, frame by frame
        mixed = torch.tensordot(xc.movedim(cdim, -1), w, dims=1).movedim(-1, cdim)
        return torch.tanh(mixed + 0.5 * xc.roll(1, dims=-1)) * (1 + t.reshape(-1, 1, 1, 1, 1) / 1000)

    t = torch.tensor([300, 300])
    sizes, ticks = [], []

    def spy(xc, tt):
        sizes.append(xc.shape[time_dim])
        return per_frame(xc, tt)
    got = S.chunked_in_time(spy, chunk, overlap, time_dim=time_dim,
                            progress=lambda i, n: ticks.append((i, n)))(x, t)
    assert (got - per_frame(x, t)).abs().max() < 1e-14
    n = len(windows.chunk_weights(length, chunk, overlap))
    assert max(sizes) <= (chunk if 0 < chunk < length else length) and len(sizes) == n
    assert ticks == [(i + 1, n) for i in range(n)]


def test_chunked_in_time_passes_frames_and_cross_fades():
    """with_frames hands the window to the denoiser; a denoiser answering its window's start shows the
    blend: flat inside a window, a linear ramp across each overlap, never a jump."""
    x = torch.zeros(1, 1, 12, 1, 1, dtype=F64)
    got_frames = []

    def by_window(xc, t, frames):
        got_frames.append((frames.start, frames.stop))
        assert xc.shape[2] == frames.stop - frames.start
        return torch.full_like(xc, float(frames.start))
    out = S.chunked_in_time(by_window, 6, 3, with_frames=True)(x, torch.tensor([0])).flatten()
    plan = windows.chunk_weights(12, 6, 3)
    assert got_frames == [(s, e) for s, e, _ in plan]
    steps = out[1:] - out[:-1]
    assert bool((steps >= 0).all()) and float(steps.max()) < max(s for s, _, _ in plan) / 2


def test_half_precision_latents_keep_their_dtype():
    """bf16 latents: the running sample is kept in float32 (as diffusers upcasts), the denoiser sees and
    the caller gets bf16, and the noise is the float32 draws of the same seed."""
    table = S.rescale_zero_terminal_snr(S.alphas_cumprod(S.betas_scaled_linear()))
    model, x = TinyModel(), _latent(14, torch.float32)
    seen = []

    def den(xt, t):
        seen.append(xt.dtype)
        return S.v_prediction(model, table)(xt, t)
    ts = S.timesteps(1000, 6, "trailing")
    full = S.sample_dpmpp_2m_sde(den, x, ts, table, generator=torch.Generator().manual_seed(2))
    half = S.sample_dpmpp_2m_sde(den, x.bfloat16(), ts, table, generator=torch.Generator().manual_seed(2))
    assert half.dtype == torch.bfloat16 and set(seen) == {torch.float32, torch.bfloat16}
    assert (half.float() - full).abs().max() < 0.02 * full.abs().max()  # bf16 inputs: ~3 digits (0.7 %)
