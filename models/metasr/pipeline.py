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
import contextlib
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from . import tokens, windows

SCALE = 4
MAX_OUTPUT_SIDE = 8192  # output frames beyond 8K would not fit a workstation's host memory per segment


class MetaSRInputError(ValueError):
    """Bad frames or metadata handed to the pipeline; the message names the input and the fix."""


def check_frames(frames) -> torch.Tensor:
    """``[T,H,W,3]`` float 0..1 -> float32 tensor, or :class:`MetaSRInputError`."""
    if not isinstance(frames, torch.Tensor):
        raise MetaSRInputError(f"frames: expected a [T,H,W,3] tensor, got {type(frames).__name__}.")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise MetaSRInputError(f"frames: expected [T,H,W,3] (RGB), got shape {tuple(frames.shape)}.")
    if min(frames.shape[:3]) == 0:
        raise MetaSRInputError(f"frames: empty video {tuple(frames.shape)}.")
    if max(frames.shape[1:3]) * SCALE > MAX_OUTPUT_SIDE:
        raise MetaSRInputError(f"frames: {frames.shape[2]}x{frames.shape[1]} would give a "
                               f"{frames.shape[2] * SCALE}x{frames.shape[1] * SCALE} output, above "
                               f"{MAX_OUTPUT_SIDE} px a side; crop the video into parts first.")
    frames = frames.float()
    if not torch.isfinite(frames).all():
        raise MetaSRInputError("frames: contain NaN or Inf.")
    if float(frames.min()) < 0 or float(frames.max()) > 1:
        raise MetaSRInputError("frames: values must lie in 0..1 (float IMAGE convention).")
    return frames


def check_metadata(metadata, t: int, hr_h: int, hr_w: int) -> List[torch.Tensor]:
    """List of ``[T or 1, sH, sW, C]`` maps (C = 1 or 3) in 0..1 -> list of ``[T, sH, sW, 3]``."""
    if metadata is None:
        return []
    if isinstance(metadata, torch.Tensor):
        raise MetaSRInputError("metadata: pass a list of maps ([map] for a single one), not a bare tensor.")
    out = []
    for i, m in enumerate(metadata):
        name = f"metadata[{i}]"
        if not isinstance(m, torch.Tensor) or m.ndim != 4:
            raise MetaSRInputError(f"{name}: expected a [T,H,W,C] tensor, got "
                                   f"{tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__}.")
        if m.shape[-1] not in (1, 3):
            raise MetaSRInputError(f"{name}: expected 1 or 3 channels, got {m.shape[-1]}.")
        if tuple(m.shape[1:3]) != (hr_h, hr_w):
            raise MetaSRInputError(f"{name}: is {m.shape[2]}x{m.shape[1]} but the output is {hr_w}x{hr_h}; "
                                   f"metadata maps are given at the output (HR) size.")
        if m.shape[0] not in (1, t):
            raise MetaSRInputError(f"{name}: has {m.shape[0]} frames, the video {t}; give one map per "
                                   f"frame or one for all.")
        m = m.float()
        if not torch.isfinite(m).all() or float(m.min()) < 0 or float(m.max()) > 1:
            raise MetaSRInputError(f"{name}: values must be finite and lie in 0..1.")
        out.append(m.expand(t, hr_h, hr_w, 3))
    return out


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


class MetaSRPipeline:
    """A loaded CogVideoX-family one-step SR model; also a ``METAVSR_SR_MODEL`` (see
    ``models/receiver.py``).

    Settings (attributes, changeable between calls): ``tile`` / ``tile_overlap`` — DiT window and
    overlap in output pixels (0 = whole frame), ``chunk`` / ``chunk_overlap`` — DiT window and
    overlap in output frames (0 = whole video), ``vae_tiling`` — diffusers' blended VAE tiling,
    ``segment`` / ``segment_overlap`` — frames per full run on long videos (0 = whole video; segments
    cross-fade in pixels), ``timestep`` (399), ``seed`` (VAE posterior sample).
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
        self.tile, self.tile_overlap = 720, 128
        self.chunk, self.chunk_overlap = 49, 16
        # segments bound device memory on long videos (the VAE holds a whole segment)
        self.segment, self.segment_overlap = 121, 8
        self.vae_tiling = True
        self.vae_tile = (vae.tile_sample_min_height, vae.tile_sample_min_width)  # pixels, before fitting
        self.timestep, self.seed = 399, 0
        self.offload = offload
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
        self._hooks = []
        self.offload = mode
        home = self.device if mode == "none" else self.offload_device
        self.transformer.to(home)
        self.vae.to(home)
        if mode == "sequential":
            dev, off = self.device, self.offload_device
            for block in self.transformer.transformer_blocks:
                self._hooks.append(block.register_forward_pre_hook(lambda m, a: m.to(dev) and None))
                self._hooks.append(block.register_forward_hook(lambda m, a, o: m.to(off) and None))

    @contextlib.contextmanager
    def _on_device(self, model):
        if self.offload == "none":
            yield
            return
        if model is self.transformer and self.offload == "sequential":
            moved = [mod for name, mod in model.named_children() if name != "transformer_blocks"]
        else:
            moved = [model]
        for m in moved:
            m.to(self.device)
        try:
            yield
        finally:
            for m in moved:
                m.to(self.offload_device)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

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

    def denoise(self, latent: torch.Tensor, metadata: List[torch.Tensor], text: torch.Tensor,
                progress: Optional[Callable] = None, done: int = 0, total: int = 1) -> torch.Tensor:
        """One-step restoration of ``[1,F,C,h,w]`` (F even for 2-frame patches) by overlapping DiT
        windows; returns the clean latent ``[1,F,C,h,w]``."""
        tf = self.transformer
        _, f, c, h, w = latent.shape
        pt = tf.config.patch_size_t or 1
        p = tf.config.patch_size
        vs = 2 ** (len(self.vae.config.block_out_channels) - 1)
        tcr = self.vae.config.temporal_compression_ratio
        # user sizes are in output pixels / frames; latent windows are multiples of the patch
        tile = self.tile // vs if self.tile else 0
        tile_ov = self.tile_overlap // vs
        chunk = (self.chunk - 1) // tcr + 1 if self.chunk else 0
        chunk_ov = self.chunk_overlap // tcr
        boxes, overlaps = windows.plan(f, h, w, chunk, chunk_ov, tile, tile, tile_ov, unit_t=pt, unit_hw=p)
        positions = tokens.Positions(tf, f, h, w, self.device)
        timestep = torch.full((1,), self.timestep, dtype=torch.long, device=self.device)
        if len(boxes) == 1:
            out = self._window(latent, metadata, text, timestep, positions, boxes[0])
            if progress is not None:
                progress(done + 1, total)
            return out
        acc = torch.zeros(1, f, c, h, w, device=self.device, dtype=torch.float32)
        wsum = torch.zeros(f, 1, h, w, device=self.device, dtype=torch.float32)
        for i, box in enumerate(boxes):
            t0, t1, h0, h1, w0, w1 = box
            z = self._window(latent, metadata, text, timestep, positions, box)
            wt = windows.weight(box, (f, h, w), overlaps).to(self.device)[:, None]  # [t,1,h,w]
            acc[:, t0:t1, :, h0:h1, w0:w1] += z.float() * wt
            wsum[t0:t1, :, h0:h1, w0:w1] += wt
            if progress is not None:
                progress(done + i + 1, total)
        return (acc / wsum).to(latent.dtype)

    def _window(self, latent, metadata, text, timestep, positions, box):
        t0, t1, h0, h1, w0, w1 = box
        x = latent[:, t0:t1, :, h0:h1, w0:w1]
        ms = [m[:, t0:t1, :, h0:h1, w0:w1] for m in metadata]
        v = tokens.forward(self.transformer, x, ms, text, timestep, positions.window(box))
        return self.scheduler.get_velocity(v, x, timestep)

    def count_windows(self, t: int, h: int, w: int) -> int:
        """Number of DiT windows for an LR video of ``t`` frames at ``h``×``w``."""
        pt_, ph, pw = padding(t, h, w)
        vs = 2 ** (len(self.vae.config.block_out_channels) - 1)
        tcr = self.vae.config.temporal_compression_ratio
        pt = self.transformer.config.patch_size_t or 1
        f = (t + pt_ - 1) // tcr + 1
        f += f % pt
        tile = self.tile // vs if self.tile else 0
        chunk = (self.chunk - 1) // tcr + 1 if self.chunk else 0
        boxes, _ = windows.plan(f, (h + ph) * SCALE // vs, (w + pw) * SCALE // vs, chunk,
                                self.chunk_overlap // tcr, tile, tile, self.tile_overlap // vs,
                                unit_t=pt, unit_hw=self.transformer.config.patch_size)
        return len(boxes)

    # ---- the call -----------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, frames: torch.Tensor, metadata: Optional[List[torch.Tensor]] = None,
                 progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
        """Super-resolve ×4.

        frames:   [T,H,W,3] float 0..1
        metadata: list of K maps [T (or 1),4H,4W,C] float 0..1, C = 1 or 3 (edges, depth, ...), at
                  the output size; None or [] runs pixel-only (exactly DOVE's computation)
        progress: ``(done, total)`` callback, called per VAE stage and per DiT window
        returns   [T,4H,4W,3] float32 0..1 on the CPU
        """
        frames = check_frames(frames)
        t, h, w, _ = frames.shape
        maps = check_metadata(metadata, t, h * SCALE, w * SCALE)
        if self.segment and t > self.segment:
            return self._segments(frames, maps, progress)
        return self._run(frames, maps, progress)

    def _segments(self, frames, maps, progress):
        """Long videos: overlapping segments of ``segment`` frames, each a full pipeline run (so device
        memory does not grow with the video), cross-faded over ``segment_overlap`` frames."""
        t, h, w, _ = frames.shape
        size = self.segment
        overlap = max(1, min(self.segment_overlap, size - 1))
        starts = windows.starts(t, size, overlap)
        out = torch.zeros(t, h * SCALE, w * SCALE, 3)
        wsum = torch.zeros(t, 1, 1, 1)
        per = 2 + self.count_windows(size, h, w)
        for i, s in enumerate(starts):
            def sub(done, total, i=i):
                if progress is not None:
                    progress(i * per + min(done, per), per * len(starts))
            y = self._run(frames[s:s + size], [m[s:s + size] for m in maps], sub)
            wt = windows.ramp(size, overlap, s == 0, s + size == t)[:, None, None, None]
            out[s:s + size] += y * wt
            wsum[s:s + size] += wt
        return out / wsum

    def _run(self, frames, maps, progress):
        t, h, w, _ = frames.shape
        pad_t, pad_h, pad_w = padding(t, h, w)
        total = 2 + self.count_windows(t, h, w)
        if self.vae_tiling:
            hp, wp = (h + pad_h) * SCALE, (w + pad_w) * SCALE
            fh, fw = self.vae.tile_overlap_factor_height, self.vae.tile_overlap_factor_width
            self.vae.enable_tiling(vae_tile(hp, self.vae_tile[0], fh), vae_tile(wp, self.vae_tile[1], fw))
        else:
            self.vae.disable_tiling()
        self.vae.enable_slicing()
        gen = torch.Generator("cpu").manual_seed(int(self.seed))

        with self._on_device(self.vae):
            latent = self.encode(self._upscaled(pad_video(frames, pad_t, pad_h, pad_w)), gen)
            metas = [self.encode(self._maps(pad_video(m, pad_t, pad_h * SCALE, pad_w * SCALE)), gen)
                     for m in maps]
        if progress is not None:
            progress(1, total)

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
            clean = self.denoise(latent, metas, text, progress, 1, total)
        del latent, metas
        if ncopy:
            clean = clean[:, ncopy:]

        with self._on_device(self.vae):
            video = self.decode(clean)
        if progress is not None:
            progress(total, total)
        video = video[0, :, :t, :h * SCALE, :w * SCALE]
        return video.permute(1, 2, 3, 0).float().cpu().contiguous()

    # ---- METAVSR_SR_MODEL ---------------------------------------------------------------------
    def upscale(self, lr: torch.Tensor, metadata: Optional[Dict[str, torch.Tensor]] = None,
                progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
        """Receiver interface: ``metadata`` maps kinds (from ``metadata_kinds``) to ``[T,4H,4W,1]``."""
        maps = []
        for kind, m in (metadata or {}).items():
            if kind not in self.metadata_kinds:
                raise MetaSRInputError(f"{kind}: {self.name!r} was not trained with {kind} metadata "
                                       f"(it takes: {', '.join(self.metadata_kinds) or 'none'}).")
            maps.append(m)
        return self(lr, maps, progress)
