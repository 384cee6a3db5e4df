"""One-step CogVideoX video super-resolution with metadata tokens (MetaSR; DOVE-compatible).

The computation follows DOVE's released inference: frames padded to 8N+1 (last frame repeated), LR
padded right/bottom to multiples of 16 (zeros), ×4 bilinear upscale, [-1, 1], VAE encode
``latent_dist.sample() × scaling_factor``, the first latent frame repeated to an even count for
2-frame temporal patches, one DiT call at t = 399 on the un-noised latent, the clean latent from the
v-prediction (``CogVideoXDPMScheduler.get_velocity``), decode, ``x·0.5 + 0.5``, padding removed.
Metadata maps (MetaSR) go through the same padding, VAE and patch embedding and join as extra tokens.
Large inputs run as overlapping latent windows blended with feathered weights; the VAE tiles with
diffusers' own blended tiling.
"""
import threading
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from ...ops import windows
from ...sampling import sample_one_step, v_prediction
from ..base import Progress, ReceiverInputError, RunOptions, check_inputs, check_map, report, run_segments
from .. import offload as offloading
from . import tokens

SCALE = 4
MAX_OUTPUT_SIDE = 8192  # output frames beyond 8K would not fit a workstation's host memory per segment


class MetaSRInputError(ReceiverInputError):
    """Bad frames or metadata handed to the pipeline; the message names the input and the fix."""


def check_size(lr: torch.Tensor):
    """Refuse outputs above :data:`MAX_OUTPUT_SIDE` a side (the rest is ``base.check_inputs``)."""
    if isinstance(lr, torch.Tensor) and lr.ndim == 4 and max(lr.shape[1:3]) * SCALE > MAX_OUTPUT_SIDE:
        raise MetaSRInputError(f"frames: {lr.shape[2]}x{lr.shape[1]} would give a {lr.shape[2] * SCALE}x"
                               f"{lr.shape[1] * SCALE} output, above {MAX_OUTPUT_SIDE} px a side; crop the video "
                               f"into parts first.")


def check_list(frames, metadata) -> tuple:
    """The list form's inputs: frames ``[T,H,W,3]`` and K maps ``[T (or 1),4H,4W,C]``, C = 1 or 3
    -> ``(frames, [T,4H,4W,3] maps)``, checked by the receivers' one input check."""
    check_size(frames)

    class _Any:  # the list form carries no kinds; every map is checked alike
        name, scale, metadata_kinds = "the pipeline", SCALE, ()
    frames, _ = check_inputs(_Any, frames, None)
    if isinstance(metadata, torch.Tensor):
        raise MetaSRInputError("metadata: pass a list of maps ([map] for a single one), not a bare tensor.")
    t, h, w, _ = frames.shape
    maps = [check_map(f"metadata[{i}]", m, t, h * SCALE, w * SCALE, (1, 3)) for i, m in enumerate(metadata or [])]
    return frames, [m.expand(t, h * SCALE, w * SCALE, 3) for m in maps]


def padding(t: int, h: int, w: int):
    """DOVE's padding of an LR video: (extra frames to 8N+1, extra rows, extra columns to ×16)."""
    return (-(t - 1)) % 8, (-h) % 16, (-w) % 16


def pad_video(x: torch.Tensor, pad_t: int, pad_h: int, pad_w: int) -> torch.Tensor:
    """``[T,H,W,C]`` -> padded: last frame repeated ``pad_t`` times, zeros right/bottom."""
    if pad_t:
        x = torch.cat([x, x[-1:].expand(pad_t, *x.shape[1:])], dim=0)
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    return x


def vae_tile(size: int, tile: int, overlap: float, min_last: int = 32) -> int:
    """A VAE tile length near ``tile`` that diffusers' CogVideoX tiler handles for an axis of ``size``.

    diffusers starts tiles every ``int(tile·(1-overlap))`` pixels and crops the latent tiles at that
    stride, so the stride must be a multiple of 8 (the latent grid) and the last tile, which takes the
    remainder, must be large enough for the encoder's three 2× downsamplings. Grows the tile in steps
    of 8 until both hold; returns ``size`` (no tiling on this axis) if none does.
    """
    if size <= tile:
        return tile
    for t in range(max(tile, 16) // 8 * 8, size, 8):
        stride = int(t * (1 - overlap))
        if stride <= 0 or stride % 8:
            continue
        last_start = stride * ((size - 1) // stride)
        if min(t, size - last_start) >= min_last:
            return t
    return size


# what the loader node offers by default (a 24 GB GPU at 720p output with the 2B model)
DEFAULT_OPTIONS = RunOptions(tile=720, tile_overlap=128, chunk=49, chunk_overlap=16, segment=121,
                             segment_overlap=8, timestep=399, vae_tiling=True)


class MetaSRPipeline:
    """A loaded CogVideoX-family one-step SR model: a one-shot receiver (``models/receivers/base.py``).

    Per-call :class:`RunOptions`: ``tile`` / ``tile_overlap`` — DiT window and overlap in output
    pixels (0 = whole frame), ``chunk`` / ``chunk_overlap`` — DiT window and overlap in output frames
    (0 = whole video), ``vae_tiling`` — diffusers' blended VAE tiling, ``segment`` /
    ``segment_overlap`` — frames per full run on long videos (0 = whole video; segments cross-fade in
    pixels), ``timestep`` (399), ``seed`` (VAE posterior sample). The models are shared between calls;
    a lock serialises runs, because VAE tiling is a setting of the shared VAE.
    """
    scale = SCALE

    def __init__(self, transformer, vae, scheduler, prompt_embedding, *, device, dtype,
                 offload: str = "none", name: str = "cogvideox", metadata_kinds: Sequence[str] = (),
                 offload_device="cpu"):
        self.transformer, self.vae, self.scheduler = transformer, vae, scheduler
        self.prompt_embedding = prompt_embedding  # [1, L, text_dim]
        self.device, self.dtype = torch.device(device), dtype
        self.offload_device = torch.device(offload_device)
        self.name = name
        self.metadata_kinds = tuple(metadata_kinds)
        self.vae_tile = (vae.tile_sample_min_height, vae.tile_sample_min_width)  # pixels, before fitting
        self.offload = offload
        self._lock = threading.RLock()
        self._hooks = []
        self.set_offload(offload)

    # ---- memory modes -------------------------------------------------------------------------
    def set_offload(self, mode: str):
        """'none': all on the device; 'model': each model moves to the device for its stage;
        'sequential': also the DiT one block at a time (slowest, least memory)."""
        if mode not in ("none", "model", "sequential"):
            raise MetaSRInputError(f"offload: {mode!r} is not one of none, model, sequential.")
        for h in self._hooks:
            h.remove()
        self.offload = mode
        home = self.device if mode == "none" else self.offload_device
        self.transformer.to(home)
        self.vae.to(home)
        self._hooks = (offloading.stage_hooks(self.transformer.transformer_blocks, self.device, self.offload_device)
                       if mode == "sequential" else [])

    def _on_device(self, model):
        if model is self.transformer and self.offload == "sequential":
            moved = [mod for name, mod in model.named_children() if name != "transformer_blocks"]
        else:
            moved = [model]
        return offloading.on_device(moved, self.device, self.offload_device, self.offload != "none")

    # ---- stages -----------------------------------------------------------------------------
    def encode(self, hr: torch.Tensor, generator=None) -> torch.Tensor:
        """``[1,3,T,H,W]`` in [-1,1] on the device -> ``[1,C,F,h,w]`` scaled latent."""
        dist = self.vae.encode(hr).latent_dist
        if generator is None:
            return dist.sample() * self.vae.config.scaling_factor
        noise = torch.randn(dist.mean.shape, generator=generator, dtype=dist.mean.dtype,
                            device=generator.device).to(dist.mean.device)
        return (dist.mean + dist.std * noise) * self.vae.config.scaling_factor

    def decode(self, latent: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """``[1,F,C,h,w]`` scaled latent -> ``[1,3,T,H,W]`` in 0..1 (as CogVideoXPipeline.decode_latents);
        training decodes unclamped so the loss still has a gradient outside 0..1."""
        latent = latent.permute(0, 2, 1, 3, 4)
        latent = 1 / self.vae.config.scaling_factor * latent
        video = self.vae.decode(latent).sample
        video = video * 0.5 + 0.5
        return video.clamp(0.0, 1.0) if clamp else video

    def _upscaled(self, x: torch.Tensor) -> torch.Tensor:
        """LR ``[T,H,W,3]`` (padded) -> ``[1,3,T,4H,4W]`` in [-1,1], bilinear as DOVE, frame by frame."""
        t, h, w, _ = x.shape
        out = torch.empty(1, 3, t, h * SCALE, w * SCALE, device=self.device, dtype=self.dtype)
        for i in range(t):
            f = x[i].permute(2, 0, 1)[None].to(self.device, torch.float32)
            f = F.interpolate(f, size=(h * SCALE, w * SCALE), mode="bilinear", align_corners=False)
            out[0, :, i] = (f[0] * 2.0 - 1.0).to(self.dtype)
        return out

    def _maps(self, m: torch.Tensor) -> torch.Tensor:
        """HR map ``[T,H,W,3]`` (padded) 0..1 -> ``[1,3,T,H,W]`` in [-1,1] on the device."""
        return (m.permute(3, 0, 1, 2)[None].to(self.device, torch.float32) * 2.0 - 1.0).to(self.dtype)

    def _plan(self, f: int, h: int, w: int, options: RunOptions):
        """DiT windows over a latent ``[F, h, w]``: user sizes are in output pixels / frames, latent
        windows are multiples of the patch."""
        vs = 2 ** (len(self.vae.config.block_out_channels) - 1)
        tcr = self.vae.config.temporal_compression_ratio
        tile = options.tile // vs if options.tile else 0
        chunk = (options.chunk - 1) // tcr + 1 if options.chunk else 0
        return windows.plan(f, h, w, chunk, options.chunk_overlap // tcr, tile, tile, options.tile_overlap // vs,
                            unit_t=self.transformer.config.patch_size_t or 1,
                            unit_hw=self.transformer.config.patch_size)

    def denoise(self, latent: torch.Tensor, metadata: List[torch.Tensor], text: torch.Tensor,
                options: RunOptions = DEFAULT_OPTIONS, progress: Optional[Progress] = None) -> torch.Tensor:
        """One-step restoration of ``[1,F,C,h,w]`` (F even for 2-frame patches) by overlapping DiT
        windows; returns the clean latent ``[1,F,C,h,w]``. ``progress(i, n)`` per window."""
        _, f, c, h, w = latent.shape
        boxes, overlaps = self._plan(f, h, w, options)
        positions = tokens.Positions(self.transformer, f, h, w, self.device)

        def window(box):
            t0, t1, h0, h1, w0, w1 = box
            metas = [m[:, t0:t1, :, h0:h1, w0:w1] for m in metadata]
            model = lambda x, t: tokens.forward(self.transformer, x, metas, text, t, positions.window(box))  # noqa: E731
            denoiser = v_prediction(model, self.scheduler.alphas_cumprod)
            return sample_one_step(denoiser, latent[:, t0:t1, :, h0:h1, w0:w1], options.timestep)

        out = torch.zeros(1, f, c, h, w, device=self.device, dtype=torch.float32)
        return windows.blend(window, boxes, (f, h, w), overlaps, out, (1, 3, 4), progress).to(latent.dtype)

    def count_windows(self, t: int, h: int, w: int, options: RunOptions = DEFAULT_OPTIONS) -> int:
        """Number of DiT windows for an LR video of ``t`` frames at ``h``×``w``."""
        pt_, ph, pw = padding(t, h, w)
        vs = 2 ** (len(self.vae.config.block_out_channels) - 1)
        pt = self.transformer.config.patch_size_t or 1
        f = (t + pt_ - 1) // self.vae.config.temporal_compression_ratio + 1
        f += f % pt
        return len(self._plan(f, (h + ph) * SCALE // vs, (w + pw) * SCALE // vs, options)[0])

    # ---- the call -----------------------------------------------------------------------------
    @torch.no_grad()
    def upscale(self, lr: torch.Tensor, metadata: Optional[Dict[str, torch.Tensor]] = None,
                options: RunOptions = DEFAULT_OPTIONS, progress: Optional[Progress] = None) -> torch.Tensor:
        """Super-resolve ×4.

        lr:       [T,H,W,3] float 0..1
        metadata: {kind: [T (or 1),4H,4W,1]} at the output size, kinds from ``metadata_kinds``; None or
                  {} runs pixel-only (exactly DOVE's computation)
        options:  see the class doc; ``segment`` splits long videos into cross-faded full runs
        progress: ``(done, total, preview)``, per VAE stage and per DiT window
        returns   [T,4H,4W,3] float32 0..1 on the CPU
        """
        check_size(lr)
        frames, maps = check_inputs(self, lr, metadata)
        # every map enters as an RGB video through the same VAE (MetaSR), in the order of the kinds
        ordered = [maps[k].expand(*maps[k].shape[:3], 3) for k in self.metadata_kinds if k in maps]
        with self._lock:
            return run_segments(lambda x, ms, p: self._run(x, ms, options, p), frames, ordered, SCALE,
                                options.segment, options.segment_overlap, progress)

    def __call__(self, frames: torch.Tensor, metadata: Optional[List[torch.Tensor]] = None,
                 progress: Optional[Progress] = None, options: RunOptions = DEFAULT_OPTIONS) -> torch.Tensor:
        """The list form used by training and the DOVE parity test: ``metadata`` is a list of K maps
        ``[T (or 1),4H,4W,C]`` (C = 1 or 3) in token order."""
        frames, maps = check_list(frames, metadata)
        with self._lock:
            return run_segments(lambda x, ms, p: self._run(x, ms, options, p), frames, maps, SCALE,
                                options.segment, options.segment_overlap, progress)

    def _run(self, frames, maps, options, progress):
        t, h, w, _ = frames.shape
        pad_t, pad_h, pad_w = padding(t, h, w)
        total = 2 + self.count_windows(t, h, w, options)
        if options.vae_tiling:
            hp, wp = (h + pad_h) * SCALE, (w + pad_w) * SCALE
            fh, fw = self.vae.tile_overlap_factor_height, self.vae.tile_overlap_factor_width
            self.vae.enable_tiling(vae_tile(hp, self.vae_tile[0], fh), vae_tile(wp, self.vae_tile[1], fw))
        else:
            self.vae.disable_tiling()
        self.vae.enable_slicing()
        gen = torch.Generator("cpu").manual_seed(int(options.seed))

        with self._on_device(self.vae):
            latent = self.encode(self._upscaled(pad_video(frames, pad_t, pad_h, pad_w)), gen)
            metas = [self.encode(self._maps(pad_video(m, pad_t, pad_h * SCALE, pad_w * SCALE)), gen)
                     for m in maps]
        report(progress, 1, total)

        pt = self.transformer.config.patch_size_t
        ncopy = latent.shape[2] % pt if pt else 0
        # 2-frame patches need an even latent count: DOVE prepends copies of the first frame
        if ncopy:
            latent = torch.cat([latent[:, :, :1].repeat(1, 1, ncopy, 1, 1), latent], dim=2)
            metas = [torch.cat([m[:, :, :1].repeat(1, 1, ncopy, 1, 1), m], dim=2) for m in metas]
        latent = latent.permute(0, 2, 1, 3, 4)
        metas = [m.permute(0, 2, 1, 3, 4) for m in metas]
        text = self.prompt_embedding.to(self.device, self.dtype)

        with self._on_device(self.transformer):
            clean = self.denoise(latent, metas, text, options, lambda i, n, *_: report(progress, 1 + i, total))
        del latent, metas
        if ncopy:
            clean = clean[:, ncopy:]

        with self._on_device(self.vae):
            video = self.decode(clean)
        video = video[0, :, :t, :h * SCALE, :w * SCALE].permute(1, 2, 3, 0).float().cpu().contiguous()
        report(progress, total, total, video[-1])
        return video
