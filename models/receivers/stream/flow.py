"""Optical flow for the causal loop: one consecutive pair at a time, on the LR frames, scaled to HR.

The authors run RAFT on bicubic x4 upscales of *all* frames before the first is super-resolved, which
holds every HR flow at once (their issues 1, 7, 13: out of memory at 720p). Here a flow estimator is a
plain function of the previous and the current LR frame,

    estimator(lr_prev, lr_cur) -> flow      lr_*: [h,w,3] float 0..1;  flow: [h,w,2] float32 (dx, dy)

meaning, for each pixel p of the current frame, that it was at p + flow(p) in the previous one (RAFT's
``model(cur, prev)`` convention, which the authors use). :func:`to_hr` scales it to the output grid
and :func:`warp` moves the previous HR output onto the current frame. Tests inject flows as such a
function.
"""
import os
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ...metrics.temporal import dis_flow, grey_u8

Estimator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
RAFT_FILES = ("raft_large_C_T_SKHT_V2-ff5fadd5.pth", "raft_large_C_T_V2-1bb1363a.pth",
              "raft_small_C_T_V2-01064c6d.pth")  # torchvision's names for its RAFT weights


def dis(lr_prev: torch.Tensor, lr_cur: torch.Tensor) -> torch.Tensor:
    """OpenCV DIS (preset MEDIUM) on BT.601 grey: fast on a CPU, no weights."""
    g = grey_u8(torch.stack([lr_cur, lr_prev]))
    return torch.from_numpy(np.ascontiguousarray(dis_flow(g[0], g[1])))


def zero(lr_prev: torch.Tensor, lr_cur: torch.Tensor) -> torch.Tensor:
    """No motion: the previous output is used where it was (a static camera, or to ablate the flow)."""
    return torch.zeros(*lr_cur.shape[:2], 2)


class RAFTError(ValueError):
    """RAFT weights or torchvision are missing or unusable; the message names the file and the fix."""


def raft(path: str, device="cpu", iterations: int = 12) -> Estimator:
    """RAFT (torchvision's ``raft_large`` / ``raft_small``) from a local weights file; nothing is
    downloaded. Frames are padded to a multiple of 8 (RAFT's stride) by edge replication."""
    try:
        from torchvision.models.optical_flow import raft_large, raft_small
    except Exception as e:
        raise RAFTError(f"RAFT needs torchvision ({type(e).__name__}: {e}); install the torchvision that "
                        f"matches your torch, or use the DIS flow") from None
    if not os.path.isfile(path):
        raise RAFTError(f"RAFT weights not found at {path}; put torchvision's {RAFT_FILES[0]} there (from a "
                        f"machine with internet: torchvision.models.optical_flow.Raft_Large_Weights), or use "
                        f"the DIS flow")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RAFTError(f"{path} is not a readable torch checkpoint ({type(e).__name__}); download it again") \
            from None
    net = None
    for build in (raft_large, raft_small):
        candidate = build(weights=None)
        try:
            candidate.load_state_dict(sd, strict=True)
        except Exception:
            continue
        net = candidate
        break
    if net is None:
        raise RAFTError(f"{path} does not hold torchvision RAFT weights (large or small); use torchvision's "
                        f"{RAFT_FILES[0]}")
    net = net.to(device).eval().requires_grad_(False)

    @torch.no_grad()
    def estimate(lr_prev: torch.Tensor, lr_cur: torch.Tensor) -> torch.Tensor:
        h, w = lr_cur.shape[:2]
        ph, pw = -h % 8, -w % 8
        x = torch.stack([lr_cur, lr_prev]).permute(0, 3, 1, 2).to(device, torch.float32) * 2 - 1
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        flow = net(x[:1], x[1:], num_flow_updates=iterations)[-1]
        return flow[0, :, :h, :w].permute(1, 2, 0).float().cpu()
    return estimate


def to_hr(flow: torch.Tensor, scale: int) -> torch.Tensor:
    """[h,w,2] or [B,h,w,2] LR flow -> [B,sh,sw,2] HR flow (bilinear, values times ``scale``)."""
    f = flow if flow.ndim == 4 else flow[None]
    f = F.interpolate(f.permute(0, 3, 1, 2).float(), scale_factor=scale, mode="bilinear", align_corners=False)
    return (f * scale).permute(0, 2, 3, 1)


def warp(x: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """[B,C,H,W] image moved by ``flow`` [B,H,W,2]: out(p) = x(p + flow(p)), zeros outside.

    As the authors' ``flow_warp``: the grid is normalised by W-1 / H-1 (the align_corners=True
    convention) but sampled with align_corners=False, which shifts the result by up to half a pixel
    toward the centre; kept for parity with the released weights, which were trained with it.
    """
    _, _, h, w = x.shape
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    fx, fy = flow[..., 0].to(x.dtype), flow[..., 1].to(x.dtype)
    grid = torch.stack((2 * (gx + fx) / max(w - 1, 1) - 1, 2 * (gy + fy) / max(h - 1, 1) - 1), dim=-1)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def by_name(name: str, raft_path: Optional[str] = None, device="cpu") -> Estimator:
    """"dis" | "zero" | "raft" (needs ``raft_path``)."""
    if name == "dis":
        return dis
    if name == "zero":
        return zero
    if name == "raft":
        if not raft_path:
            raise RAFTError("flow 'raft' needs a weights file; put torchvision's RAFT weights in "
                            "ComfyUI/models/optical_flow/, or use the DIS flow")
        return raft(raft_path, device)
    raise ValueError(f"flow: {name!r} is not one of dis, zero, raft")
