"""Input checks shared by the full-reference metrics."""
import torch

MIN_DEEP_SIZE = 32  # smallest side AlexNet/VGG16 trunks accept (AlexNet's stride-4 conv + two pools)


def check_pair(x, y, name: str = "metric", min_size: int = 1):
    """Validate ``x``, ``y`` as equal-shape ``[B,H,W,C]`` tensors; returns them as float32.

    Raises ValueError naming what is wrong; never clips, so out-of-range inputs are reported, not hidden.
    """
    for n, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name}: {n} must be a torch tensor [B,H,W,C], got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name}: {n} must be [B,H,W,C], got shape {tuple(t.shape)}")
    if x.shape != y.shape:
        raise ValueError(f"{name}: x {tuple(x.shape)} and y {tuple(y.shape)} must have the same shape "
                         f"(resize the output to the reference size first)")
    b, h, w, c = x.shape
    if b == 0 or h < min_size or w < min_size:
        raise ValueError(f"{name}: frames of {w}x{h} (batch {b}) are too small; need at least "
                         f"{min_size}x{min_size} and one frame")
    return x.float(), y.to(x.device).float()
