"""Tensor <-> numpy conversions at the node boundary (models/ work on numpy frames)."""
import numpy as np
import torch


def to_numpy(img: torch.Tensor) -> np.ndarray:
    """IMAGE/MASK tensor -> float32 numpy (CPU copy)."""
    return img.detach().float().cpu().numpy()


def to_image(frames: np.ndarray) -> torch.Tensor:
    """``[T,H,W,C]`` numpy 0..1 -> IMAGE tensor float32."""
    return torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))


def to_mask(maps: np.ndarray) -> torch.Tensor:
    """``[T,H,W]`` numpy (0/1 or 0..1) -> MASK tensor float32."""
    return torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))
