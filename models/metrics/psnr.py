"""PSNR per frame, and the BT.601 luma conversion shared with SSIM.

Conventions (the BasicSR / MATLAB ones used by SR papers):
- ``space="rgb"``: MSE over H, W and the 3 channels of the 0..1 values; peak 1.
- ``space="y"``: Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in 0..1, Y in 16..235, as
  MATLAB's ``rgb2ycbcr``); peak 255. Values are not rounded to 8 bit first.
- ``crop_border``: pixels dropped on every side before measuring (SR papers crop the scale factor).
Identical frames give +inf (as scikit-image), never NaN.
"""
import torch

from .common import check_pair

_Y = (65.481, 128.553, 24.966)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """[B,H,W,3] float 0..1 -> [B,H,W,1] BT.601 luma in 16..235 (float, not rounded)."""
    w = torch.tensor(_Y, dtype=x.dtype, device=x.device)
    return (16.0 + (x * w).sum(dim=-1, keepdim=True))


def prepare(x, y, space: str, crop_border: int, name: str):
    """Shared by PSNR and SSIM: checks, border crop, colour space. Returns (x, y, data_range)."""
    x, y = check_pair(x, y, name, 1 + 2 * max(int(crop_border), 0))
    if crop_border < 0:
        raise ValueError(f"{name}: crop_border must be >= 0, got {crop_border}")
    if crop_border:
        c = int(crop_border)
        x, y = x[:, c:-c, c:-c], y[:, c:-c, c:-c]
    space = space.lower()
    if space == "rgb":
        return x.double(), y.double(), 1.0
    if space == "y":
        if x.shape[-1] != 3:
            raise ValueError(f"{name}: space='y' needs RGB input, got C={x.shape[-1]}")
        return rgb_to_y(x.double()), rgb_to_y(y.double()), 255.0
    raise ValueError(f"{name}: space must be 'rgb' or 'y', got {space!r}")


def psnr(x: torch.Tensor, y: torch.Tensor, space: str = "rgb", crop_border: int = 0) -> torch.Tensor:
    """PSNR in dB per frame. x, y: [B,H,W,C] float 0..1; returns [B] float32 (+inf where equal)."""
    x, y, peak = prepare(x, y, space, crop_border, "psnr")
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(peak ** 2 / mse)).float()
