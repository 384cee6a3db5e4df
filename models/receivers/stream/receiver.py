"""Stream-DiffVSR as a streaming receiver: ``start(options) -> state``, ``push(state, lr_t) -> (hr_t,
state)``, one frame at a time, memory independent of the video's length.

Per frame t (the authors' ``StreamDiffVSRPipeline.__call__`` loop, reorganised to hold one frame):

1. noise z_T ~ N(0, I) of the latent's shape, drawn in frame order from one generator (its state
   travels in ``state``, so chunked runs draw what one run draws);
2. t > 0 (and ``options.temporal``, the default): the previous HR output is warped onto this frame with the flow of the LR pair (ARTG's hint
   for the ControlNet) and encoded into the TPM features for the decoder;
3. 4 DDIM steps (v-prediction, "trailing", from the folder's scheduler config) of the U-Net on
   [z_t, LR in -1..1]; from t = 1 on, the ControlNet on the same input with the warped hint adds
   its residuals; no text guidance (the empty-prompt embedding, computed once);
4. the temporal decoder turns z_0 into the HR frame, fusing the TPM features.

State (plain tensors and numbers; ``run_stream`` copies it, so a state handed in stays valid):
``frame`` index, ``prev_hr`` [1,3,sH,sW] -1..1 (working dtype, on the device), ``prev_lr`` [h,w,3],
``rng`` (the CPU generator's state), ``stats`` (frames, seconds, first-frame seconds, peak memory).
"""
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch

from ... import sampling
from ...ops import windows
from ..base import RunOptions, Streaming, check_frame_size, check_inputs, count_frame, new_stats
from . import flow as flows
from .tae import TemporalTAE


@dataclass(frozen=True)
class StreamSettings:
    """Loader-time choices (the weights are shared; these are per loaded model)."""
    steps: int = 4
    flow: Callable = flows.dis          # estimator(lr_prev, lr_cur) -> [h,w,2]
    conditioning_scale: float = 1.0     # ControlNet residual weight
    edge_hint: bool = False             # experimental: the edge map as a 4th ControlNet hint channel


class StreamDiffVSR(Streaming):
    """A loaded Stream-DiffVSR folder (see ``loading.load``)."""

    def __init__(self, unet, controlnet, vae: TemporalTAE, plan: sampling.DDIMPlan, prompt_embeds: torch.Tensor,
                 device="cpu", dtype=torch.float32, settings: StreamSettings = StreamSettings(),
                 name: str = "stream-diffvsr"):
        self.unet, self.controlnet, self.vae = unet, controlnet, vae
        self.plan, self.settings = plan, settings
        self.device, self.dtype = torch.device(device), dtype
        self.prompt_embeds = prompt_embeds.to(self.device, dtype)
        self.name = name
        self.scale = vae.config.scale
        self.latent_channels = vae.config.latent_channels
        self.metadata_kinds = ("edges",) if settings.edge_hint else ()
        # the models are shared; runs of one loaded model take turns (a device runs one at a time anyway)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ streaming interface
    def start(self, options: RunOptions = RunOptions()) -> dict:
        g = torch.Generator("cpu").manual_seed(int(options.seed))
        return {"frame": 0, "prev_hr": None, "prev_lr": None, "rng": g.get_state(),
                "options": options, "stats": new_stats()}

    def push(self, state: dict, lr_t: torch.Tensor, metadata_t: Optional[Dict[str, torch.Tensor]] = None):
        """lr_t [h,w,3] float 0..1 -> (hr_t [sh,sw,3] float32 0..1 on the CPU, next state)."""
        lr1, maps = check_inputs(self, lr_t[None], {k: v[None] for k, v in (metadata_t or {}).items()})
        lr_t = lr1[0]
        check_frame_size(state["frame"], None if state["prev_lr"] is None else state["prev_lr"].shape[:2],
                         lr_t.shape[:2])
        options = state.get("options") or RunOptions()
        t0 = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        g = torch.Generator("cpu")
        g.set_state(state["rng"])
        h, w = lr_t.shape[:2]
        noise = torch.randn((1, self.latent_channels, h, w), generator=g, dtype=torch.float32)
        hint = None
        if state["prev_hr"] is not None and options.temporal:
            f = flows.to_hr(self.settings.flow(state["prev_lr"], lr_t), self.scale).to(self.device)
            hint = flows.warp(state["prev_hr"].float(), f).to(self.dtype)
        edges = maps.get("edges")
        with self._lock, torch.no_grad():
            hr = self._frame(lr_t, noise, hint, None if edges is None else edges[0], options)
        out = ((hr.float()[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).cpu()
        stats = count_frame(state["stats"], time.perf_counter() - t0, self.device)
        return out, {"frame": state["frame"] + 1, "prev_hr": hr, "prev_lr": lr_t, "rng": g.get_state(),
                     "options": options, "stats": stats}

    # ------------------------------------------------------------------ one frame
    def _frame(self, lr_t, noise, hint, edges, options: RunOptions) -> torch.Tensor:
        """[h,w,3] 0..1, noise [1,C,h,w], hint [1,3,sh,sw] -1..1 or None -> HR [1,3,sh,sw] -1..1 (dtype)."""
        dev, dt, s = self.device, self.dtype, self.scale
        lr = (lr_t.permute(2, 0, 1)[None].to(dev, torch.float32) * 2 - 1)
        if edges is not None and hint is not None:
            hint = torch.cat([hint, edges.permute(2, 0, 1)[None].to(dev, dt) * 2 - 1], dim=1)
        h, w = lr.shape[-2:]
        tile = options.tile // s if options.tile else 0
        if not tile or (h <= tile and w <= tile):
            return self._region(lr, noise.to(dev), hint)
        lap = max(options.tile_overlap // s, 1)
        boxes, overlaps = windows.plan(1, h, w, 0, 0, tile, tile, lap, unit_hw=4)
        boxes_hr, overlaps_hr = windows.scaled(boxes, overlaps, s)
        out = torch.zeros(1, 3, h * s, w * s, device=dev, dtype=torch.float32)

        def run(box_hr):
            _, _, H0, H1, W0, W1 = box_hr
            h0, h1, w0, w1 = H0 // s, H1 // s, W0 // s, W1 // s
            sub_hint = None if hint is None else hint[..., H0:H1, W0:W1]
            return self._region(lr[..., h0:h1, w0:w1], noise[..., h0:h1, w0:w1].to(dev), sub_hint).float()[:, :, None]

        out5 = out[:, :, None]  # [1,3,1,H,W]: blend's frame axis
        windows.blend(run, boxes_hr, (1, h * s, w * s), overlaps_hr, out5, (2, 3, 4))
        return out.to(dt)

    def _region(self, lr: torch.Tensor, noise: torch.Tensor, hint: Optional[torch.Tensor]) -> torch.Tensor:
        dt = self.dtype
        lr = lr.to(dt)
        emb = self.prompt_embeds
        scale = self.settings.conditioning_scale

        def model(x, t):
            inp = torch.cat([x.to(dt), lr], dim=1)
            down = mid = None
            if hint is not None:
                down, mid = self.controlnet(inp, t, encoder_hidden_states=emb, controlnet_cond=hint,
                                            conditioning_scale=scale, return_dict=False)
            return self.unet(inp, t, encoder_hidden_states=emb, down_block_additional_residuals=down,
                             mid_block_additional_residual=mid, return_dict=False)[0]

        p = self.plan
        z0 = sampling.sample_ddim(p.denoiser(model), noise.to(torch.float32), p.timesteps, p.alphas_cumprod,
                                  final_alpha=p.final_alpha, step_ratio=p.step_ratio)
        feats = self.vae.features(hint[:, :3]) if hint is not None else None
        return self.vae.decode(z0.to(dt), feats)

    def describe(self) -> str:
        return (f"{self.name}: x{self.scale}, {len(self.plan.timesteps)} DDIM steps "
                f"{self.plan.timesteps.tolist()}, {self.dtype}, on {self.device}")


def summary(stats: dict) -> str:
    """One line for the UI: frames, s/frame, fps, first-frame latency, peak device memory."""
    n = stats.get("frames", 0)
    if not n:
        return "no frames"
    per = stats["seconds"] / n
    peak = stats.get("peak_device_bytes", 0)
    mem = f", peak device memory {peak / 2**30:.2f} GiB" if peak else ""
    return (f"{n} frames, {per:.3f} s/frame ({1 / per if per else math.inf:.2f} fps), first frame "
            f"{stats['first_frame_s']:.3f} s{mem}")
