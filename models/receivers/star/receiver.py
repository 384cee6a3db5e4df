"""STAR as a one-shot receiver: LR frames -> x4 video, the authors' sampler without their canvas and cuts.

Per call (``VideoToVideo_sr.test`` reorganised to run in bounded memory):

1. the LR frames are upsampled x4 (bilinear, as STAR) and padded to a multiple of 8 (replicate; STAR
   instead pads every input onto a white 720 x 1280 canvas: ``canvas=True`` does that too);
2. the SVD VAE encodes them ``encode_frames`` at a time (seeded posterior sample) -> the LR latent,
   which is both the SDEdit source and the ControlNet hint;
3. SDEdit: noise to ``noise_level - 1`` (899) and DPM-Solver++(2M) SDE over STAR's "fast" (or
   "normal") timesteps, CFG ``guidance`` (7.5) with rescale ``rescale`` (0.2) between the positive and
   negative text (``models/sampling.py``; parity with the authors in tests/test_star.py);
   the U-Net runs on windows of ``chunk`` frames x ``tile`` pixels that overlap and cross-fade (STAR
   hard-cuts 32-frame chunks at the middle of a 16-frame overlap and never tiles); each window is
   padded in latent space to what the U-Net's down/up path needs (height 2 mod 8, width 0 mod 8);
4. the VAE decodes ``decode_frames`` (3, as STAR) latent frames at a time; crop; colour fix against the
   LR frames (AdaIN, STAR's default; wavelet; none).

Memory: offload ``none`` (all on the device), ``model`` (the U-Net and the VAE take turns on the
device), ``sequential`` (also the U-Net stage by stage). Progress: one unit per encoded frame, per
sampler step and per decoded batch, with a preview of the first frame's current x0 (an RGB
projection of the latent, no VAE) at each step.
"""
import dataclasses
import math
import threading
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ... import sampling as S
from ...ops import colour, windows
from .. import offload as offloading
from ..base import ReceiverInputError, RunOptions, check_inputs, report
from .unet import STARUNet, latent_size_ok

SCALE = 4
NEGATIVE = ("painting, oil painting, illustration, drawing, art, sketch, oil painting, cartoon, CG Style, "
            "3D render, unreal engine, blurring, dirty, messy, worst quality, low quality, frames, "
            "watermark, signature, jpeg artifacts, deformed, lowres, over-smooth")
POSITIVE_SUFFIX = ("Cinematic, High Contrast, highly detailed, taken using a Canon EOS R camera, hyper "
                   "detailed photo - realistic maximum detail, 32k, Color Grading, ultra HD, extreme "
                   "meticulous detailing, skin pore detailing, hyper sharpness, perfect without deformations.")
DEFAULT_PROMPT = "a good video"
# SD / SVD 4-channel latent -> RGB (ComfyUI's latent_formats.SD15), for step previews without the VAE
LATENT_RGB = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721),
              (-0.2120, -0.2616, -0.7177))
MODES = ("fast", "normal")
COLOUR_FIXES = tuple(colour.FIXES)
OFFLOADS = offloading.MODES


class STARInputError(ReceiverInputError):
    """A STAR setting or input that cannot run; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class STARSettings:
    """Sampler and memory choices of one configured STAR (the weights are shared)."""
    steps: int = 15                 # "normal" mode; "fast" always runs STAR's 15-step grid
    mode: str = "fast"
    guidance: float = 7.5
    rescale: float = 0.2
    noise_level: int = 900          # SDEdit start: t = noise_level - 1
    colour_fix: str = "adain"
    chunk: int = 32                 # frames per U-Net window (0: the whole clip)
    chunk_overlap: int = 16
    tile: int = 0                   # output pixels per U-Net window side (0: the whole frame)
    tile_overlap: int = 128
    encode_frames: int = 1
    decode_frames: int = 3
    vae_tile: int = 0               # output pixels per VAE tile side (0: whole frames)
    vae_tile_overlap: int = 64
    canvas: bool = False            # STAR's white 720 x 1280 canvas

    def __post_init__(self):
        def bad(name, why):
            raise STARInputError(f"{name}: {getattr(self, name)!r} {why}.")
        if self.mode not in MODES:
            bad("mode", f"is not one of {', '.join(MODES)}")
        if self.colour_fix not in COLOUR_FIXES:
            bad("colour_fix", f"is not one of {', '.join(COLOUR_FIXES)}")
        if not (isinstance(self.steps, int) and 1 <= self.steps <= 200):
            bad("steps", "must be a whole number in 1..200")
        if not 2 <= self.noise_level <= 1000:
            bad("noise_level", "must be in 2..1000 (900 is STAR's)")
        if not (math.isfinite(self.guidance) and self.guidance >= 0):
            bad("guidance", "must be a finite number >= 0")
        if not 0 <= self.rescale <= 1:
            bad("rescale", "must be in 0..1")
        for size, lap in (("chunk", "chunk_overlap"), ("tile", "tile_overlap")):
            if getattr(self, size) < 0 or getattr(self, lap) < 0:
                bad(size, "and its overlap must be >= 0")
            if getattr(self, size) and getattr(self, lap) >= getattr(self, size):
                bad(lap, f"must be smaller than {size} ({getattr(self, size)})")
        if self.tile and self.tile < 64:
            bad("tile", "must be 0 (whole frame) or at least 64 output pixels")
        if self.vae_tile and (self.vae_tile < 128 or self.vae_tile_overlap >= self.vae_tile or self.vae_tile_overlap < 0):
            bad("vae_tile", "must be 0 (whole frames) or at least 128 output pixels, more than vae_tile_overlap")
        if self.encode_frames < 1 or self.decode_frames < 1:
            bad("decode_frames", "and encode_frames must be at least 1")


def pad_to(x: torch.Tensor, h: int, w: int, centre: bool, value: Optional[float] = None) -> Tuple[torch.Tensor, tuple]:
    """[N,C,H,W] -> [N,C,h,w] padded (replicate, or ``value``); returns the (left, top) offsets too."""
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    top, left = (ph // 2, pw // 2) if centre else (0, 0)
    pads = (left, pw - left, top, ph - top)
    if not any(pads):
        return x, (0, 0)
    y = F.pad(x, pads, mode="constant", value=value) if value is not None else F.pad(x, pads, mode="replicate")
    return y, (left, top)


def valid_latent(h: int, w: int) -> Tuple[int, int]:
    """The smallest latent size >= (h, w) that STAR's U-Net passes unchanged."""
    hh = max(h, 2)
    while not latent_size_ok(hh, 8):
        hh += 1
    return hh, -(-w // 8) * 8


def latent_rgb(z: torch.Tensor) -> torch.Tensor:
    """[4,h,w] scaled latent -> [h,w,3] 0..1 rough RGB (a preview)."""
    m = torch.tensor(LATENT_RGB, dtype=torch.float32, device=z.device)
    return ((torch.einsum("chw,cr->hwr", z.float(), m) + 1) / 2).clamp(0, 1).cpu()


class STAR:
    """A loaded STAR (U-Net + ControlNet, SVD VAE, text): ``upscale(lr) -> hr``, a one-shot receiver."""
    scale = SCALE
    metadata_kinds = ()

    def __init__(self, unet: STARUNet, vae, positive: Optional[torch.Tensor], negative: Optional[torch.Tensor], *,
                 device="cpu", dtype=torch.float16, offload: str = "none", offload_device="cpu",
                 settings: STARSettings = STARSettings(), name: str = "star"):
        if offload not in OFFLOADS:
            raise STARInputError(f"offload: {offload!r} is not one of {', '.join(OFFLOADS)}.")
        self.unet, self.vae = unet, vae
        self.positive = None if positive is None else positive.float()
        self.negative = None if negative is None else negative.float()
        self.device, self.dtype = torch.device(device), dtype
        self.offload, self.offload_device = offload, torch.device(offload_device)
        self.settings, self.name = settings, name
        self.abar = S.logsnr_cosine_interp()
        self._lock = threading.RLock()
        self._hooks = []
        self._place()

    def configured(self, positive=None, negative=..., **settings) -> "STAR":
        """A copy sharing the weights with other text and/or settings (what a prompt node returns)."""
        other = object.__new__(STAR)
        other.__dict__.update(self.__dict__)
        if positive is not None:
            other.positive = positive.float()
        if negative is not ...:
            other.negative = None if negative is None else negative.float()
        if settings:
            other.settings = dataclasses.replace(self.settings, **settings)
        return other

    # ---- memory --------------------------------------------------------------------------------
    def _place(self):
        for h in self._hooks:
            h.remove()
        home = self.device if self.offload == "none" else self.offload_device
        self.unet.to(home)
        self.vae.to(home)
        self._hooks = (offloading.stage_hooks(self._stages(), self.device, self.offload_device)
                       if self.offload == "sequential" else [])

    def _stages(self):
        for net in (self.unet, self.unet.VideoControlNet):
            yield from net.input_blocks
            yield net.middle_block
        yield from self.unet.output_blocks

    def _on_device(self, model):
        if model is self.unet and self.offload == "sequential":
            cn = self.unet.VideoControlNet     # what the stage hooks do not move
            moved = [self.unet.time_embed, self.unet.out, cn.time_embed, cn.zero_convs, cn.middle_block_out,
                     cn.input_hint_block]
        else:
            moved = [model]
        return offloading.on_device(moved, self.device, self.offload_device, self.offload != "none")

    # ---- stages --------------------------------------------------------------------------------
    def _vae_tiles(self, h: int, w: int, factor: int):
        """Tiles over an ``h x w`` grid for the VAE, given in that grid's units (``factor`` = output
        pixels per unit), and the same scaled to output pixels; one tile when tiling is off."""
        s = self.settings
        tile = s.vae_tile // factor if s.vae_tile else 0
        lap = min(s.vae_tile_overlap // factor, max(tile - 1, 0))
        return windows.plan(1, h, w, 0, 0, tile, tile, lap, unit_hw=1 if factor == 8 else 8)

    def _canvas(self, h: int, w: int) -> Tuple[int, int]:
        """The padded size of a ``h x w`` output: STAR's 720 x 1280 canvas, or the next multiple of 8."""
        return (720, 1280) if self.settings.canvas else (-(-h // 8) * 8, -(-w // 8) * 8)

    def _input(self, frames: torch.Tensor) -> Tuple[torch.Tensor, tuple]:
        """LR [n,h,w,3] 0..1 -> the VAE's input [n,3,H',W'] -1..1 (bilinear x4 as STAR, padded) and
        the (left, top) offset of the frame in it."""
        n, h, w, _ = frames.shape
        up = F.interpolate(frames.permute(0, 3, 1, 2), size=(h * SCALE, w * SCALE), mode="bilinear",
                           align_corners=False) * 2 - 1
        ch, cw = self._canvas(h * SCALE, w * SCALE)
        return pad_to(up, ch, cw, centre=self.settings.canvas, value=1.0 if self.settings.canvas else None)

    def _encode(self, frames: torch.Tensor, gen: torch.Generator, progress, done) -> torch.Tensor:
        """LR [T,h,w,3] 0..1 -> [1,4,T,H'/8,W'/8] scaled latent (float32), upsampled and encoded
        ``encode_frames`` at a time (the x4 video is never held whole). Tiles (if any) blend the
        posterior's mean and std; the sample is drawn once from the blended posterior."""
        sf = self.vae.config.scaling_factor
        n_all, h, w, _ = frames.shape
        H, W = self._canvas(h * SCALE, w * SCALE)
        boxes, overlaps = self._vae_tiles(H, W, 1)
        small = [(t0, t1, h0 // 8, h1 // 8, w0 // 8, w1 // 8) for t0, t1, h0, h1, w0, w1 in boxes]
        out = []
        step = self.settings.encode_frames
        for i in range(0, n_all, step):
            part = self._input(frames[i:i + step])[0].to(self.device, self.dtype)
            stats = torch.zeros(part.shape[0], 8, 1, H // 8, W // 8, device=self.device, dtype=torch.float32)

            def enc(box):
                _, _, h0, h1, w0, w1 = box
                d = self.vae.encode(part[..., h0 * 8:h1 * 8, w0 * 8:w1 * 8]).latent_dist
                return torch.cat([d.mean.float(), d.std.float()], dim=1)[:, :, None]
            windows.blend(enc, small, (1, H // 8, W // 8), tuple(o // 8 for o in overlaps), stats, (2, 3, 4))
            mean, std = stats[:, :4, 0], stats[:, 4:, 0]
            noise = torch.randn(mean.shape, generator=gen, dtype=torch.float32).to(mean.device)
            out.append((mean + std * noise) * sf)
            report(progress, done[0] + min(i + step, n_all), done[1])
        return torch.cat(out).permute(1, 0, 2, 3)[None]

    def _decode(self, z: torch.Tensor, lr: torch.Tensor, progress, done) -> torch.Tensor:
        """[1,4,T,h,w] -> [T,4h_lr,4w_lr,3] 0..1 float32 on the CPU: decoded ``decode_frames`` frames at a
        time (as STAR; in cross-faded spatial tiles with ``vae_tile``), each batch cropped out of its
        padding and colour-fixed against its LR frames ``lr`` [T,h_lr,w_lr,3] (both fixes work frame by
        frame) straight into the output."""
        sf = self.vae.config.scaling_factor
        frames = z[0].permute(1, 0, 2, 3)
        _, _, h, w = frames.shape
        boxes, overlaps = self._vae_tiles(h, w, 8)
        big, laps = windows.scaled(boxes, overlaps, 8)
        t, lh, lw, _ = lr.shape
        H, W = lh * SCALE, lw * SCALE
        ch, cw = self._canvas(H, W)
        top, left = ((ch - H) // 2, (cw - W) // 2) if self.settings.canvas else (0, 0)
        fix = colour.FIXES[self.settings.colour_fix]
        result = torch.empty(t, H, W, 3, dtype=torch.float32)
        step = self.settings.decode_frames
        for i in range(0, frames.shape[0], step):
            part = frames[i:i + step].to(self.device, self.dtype) / sf
            video = torch.zeros(part.shape[0], 3, 1, 8 * h, 8 * w, device=self.device, dtype=torch.float32)

            def dec(box):
                _, _, H0, H1, W0, W1 = box
                sub = part[..., H0 // 8:H1 // 8, W0 // 8:W1 // 8]
                return self.vae.decode(sub, num_frames=sub.shape[0]).sample.float()[:, :, None]
            windows.blend(dec, big, (1, 8 * h, 8 * w), laps, video, (2, 3, 4))
            rgb = ((video[:, :, 0, top:top + H, left:left + W] + 1) / 2).clamp(0, 1).cpu()
            result[i:i + step] = fix(rgb, lr[i:i + step].permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            report(progress, done[0] + i // step + 1, done[1], result[min(i + step, t) - 1])
        return result

    def _model(self, hint: torch.Tensor):
        """v(x, t) of the guided U-Net on a latent window ``x`` [1,4,f,h,w] at frames/rows/columns
        ``box`` of ``hint``, padded to a size the U-Net passes."""
        s = self.settings
        pos = self.positive.to(self.device, self.dtype)
        neg = None if self.negative is None else self.negative.to(self.device, self.dtype)

        def run(x, t, box):
            t0, t1, h0, h1, w0, w1 = box
            hh, ww = valid_latent(h1 - h0, w1 - w0)
            xs = pad_to(x.flatten(1, 2), hh, ww, centre=False)[0].view(1, 4, -1, hh, ww).to(self.dtype)
            hs = pad_to(hint[:, :, t0:t1, h0:h1, w0:w1].flatten(1, 2), hh, ww, centre=False)[0]
            hs = hs.view(1, 4, -1, hh, ww).to(self.dtype)
            tt = t.to(self.device)

            def net(text):
                return self.unet(xs, tt, text, hs).float()[..., :h1 - h0, :w1 - w0]
            if neg is None or s.guidance == 1.0:
                return net(pos)
            return S.cfg(lambda *_: net(pos), lambda *_: net(neg), s.guidance, s.rescale)(xs, tt)
        return run

    def _windows(self, f: int, h: int, w: int):
        s = self.settings
        tile = s.tile // (SCALE * 2) if s.tile else 0        # output px -> latent (x4 SR, /8 VAE)
        lap = s.tile_overlap // (SCALE * 2)
        return windows.plan(f, h, w, s.chunk, s.chunk_overlap, tile, tile, min(lap, max(tile - 1, 0)),
                            unit_t=1, unit_hw=1)

    def sample(self, z: torch.Tensor, gen: torch.Generator, progress=None, done=(0, 1)) -> torch.Tensor:
        """SDEdit + DPM-Solver++(2M) SDE from the LR latent ``z`` [1,4,F,h,w] (float32) -> clean latent."""
        s = self.settings
        _, c, f, h, w = z.shape
        hint = z.to(self.device)
        boxes, overlaps = self._windows(f, h, w)
        run = self._model(hint)

        def v(x, t):
            out = torch.zeros(1, c, f, h, w, device=self.device, dtype=torch.float32)

            def one(box):
                t0, t1, h0, h1, w0, w1 = box
                return run(x[:, :, t0:t1, h0:h1, w0:w1], t, box)
            return windows.blend(one, boxes, (f, h, w), overlaps, out, (2, 3, 4))

        den = S.v_prediction(v, self.abar, round_t=True)
        t_start = s.noise_level - 1
        noise0 = torch.randn(z.shape, generator=gen, dtype=torch.float32).to(self.device)
        # STAR's start: its SDEdit latent where k-diffusion expects unit noise (see models/sampling.py)
        x = S.add_noise(hint, noise0, t_start, self.abar) * math.sqrt(1 - float(self.abar[t_start]))
        ts = S.star_timesteps(s.steps, t_start, 0, s.mode)

        def cb(i, n, x_i, x0):
            report(progress, done[0] + i + 1, done[1], latent_rgb(x0[0, :, 0]))
        return S.sample_dpmpp_2m_sde(den, x, ts, self.abar, generator=gen, callback=cb)

    def steps_for(self) -> int:
        return len(S.star_timesteps(self.settings.steps, self.settings.noise_level - 1, 0, self.settings.mode))

    # ---- the call ------------------------------------------------------------------------------
    @torch.no_grad()
    def upscale(self, lr: torch.Tensor, metadata: Optional[Dict[str, torch.Tensor]] = None,
                options: RunOptions = RunOptions(), progress=None) -> torch.Tensor:
        """lr [T,H,W,3] float 0..1 -> [T,4H,4W,3] float32 0..1 on the CPU (pixel-only: STAR takes no
        metadata). ``options.seed`` seeds the VAE sample, the SDEdit noise and the SDE noise."""
        frames, _ = check_inputs(self, lr, metadata)
        if self.positive is None:
            raise STARInputError("positive: STAR needs a text embedding; connect MetaVSR STAR Prompt (with CLIP "
                                 "Text Encode outputs) between the loader and this node.")
        s = self.settings
        t, h, w, _ = frames.shape
        H, W = h * SCALE, w * SCALE
        if s.canvas and (H > 720 or W > 1280):
            raise STARInputError(f"canvas: the output {W}x{H} is larger than STAR's 1280x720 canvas; turn "
                                 f"canvas off (frames are then padded only as far as needed).")
        gen = torch.Generator("cpu").manual_seed(int(options.seed))
        n_enc = -(-t // s.encode_frames)
        n_dec = -(-t // s.decode_frames)
        total = n_enc + self.steps_for() + n_dec
        with self._lock:
            with self._on_device(self.vae):
                z = self._encode(frames, gen, progress, (0, total))
            with self._on_device(self.unet):
                z0 = self.sample(z, gen, progress, (n_enc, total))
            del z
            with self._on_device(self.vae):
                return self._decode(z0, frames, progress, (n_enc + self.steps_for(), total))

    def describe(self) -> str:
        s, n = self.settings, self.steps_for()
        return (f"{self.name}: x4, {s.mode} sampler ({n} step{'s' * (n != 1)} from t={s.noise_level - 1}), CFG "
                f"{s.guidance} rescale {s.rescale}, colour fix {s.colour_fix}, {self.dtype}, offload {self.offload}")

