"""The embedded receiver network: a small residual CNN at LR resolution with edge metadata.

MetaSR feeds metadata as extra tokens that share the positional indices of the aligned image tokens.
This network does the convolutional equivalent: the HR edge map is folded to LR resolution by
pixel-unshuffle (space-to-depth, s*s channels), so every sub-pixel edge position of an LR location
enters the same feature vector as that location's pixels, plus one presence flag that tells the
network whether metadata was transmitted at all (one model, trained with metadata dropout, serves
both cases). The output is a residual over bicubic upscaling, brought to HR by pixel-shuffle.
"""
from dataclasses import asdict, dataclass

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class TinyConfig:
    scale: int = 4
    channels: int = 64
    blocks: int = 8
    edge_channels: int = 1      # metadata maps at HR size (edges now; room for more kinds)
    noise_input: bool = True    # a per-frame channel-noise estimate as one more constant channel

    def to_dict(self):
        return asdict(self)

    @property
    def in_channels(self) -> int:
        # RGB + unshuffled metadata + one presence flag per metadata map
        return 3 + self.edge_channels * (self.scale ** 2 + 1) + int(self.noise_input)

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context one output pixel depends on (3x3 convs: head, 2 per block, tail)."""
        return 2 * self.blocks + 2


def noise_level(lr: torch.Tensor) -> torch.Tensor:
    """Immerkaer's fast noise estimate (CVIU 1996) per frame: ``[N,3,h,w]`` 0..1 -> ``[N]`` sigma.

    sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * M|, M = [[1,-2,1],[-2,4,-2],[1,-2,1]], on luma.
    The network sees the channel only locally (a few dozen LR pixels), where fur and noise look
    alike; this whole-frame statistic tells it how noisy the channel was, so clean inputs are not
    smoothed as if they were noisy. It is computed on the whole frame, so tiling stays exact.
    """
    y = (0.299 * lr[:, 0] + 0.587 * lr[:, 1] + 0.114 * lr[:, 2]).unsqueeze(1)
    m = lr.new_tensor([[1, -2, 1], [-2, 4, -2], [1, -2, 1]]).view(1, 1, 3, 3)
    r = F.conv2d(y, m).abs()
    h, w = y.shape[-2:]
    if h < 3 or w < 3:
        return lr.new_zeros(lr.shape[0])
    return r.sum(dim=(1, 2, 3)) * (math.sqrt(math.pi / 2) / (6 * (w - 2) * (h - 2)))


class _ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class TinySRNet(nn.Module):
    """``forward(lr [N,3,h,w], meta [N,E,sh,sw] | None, present [N,E] | None) -> [N,3,sh,sw]``.

    lr and meta are float 0..1; ``present`` marks which metadata maps were transmitted (a missing
    map must be all zeros). The output is not clipped, so training sees the true error.
    """

    def __init__(self, config: TinyConfig = TinyConfig()):
        super().__init__()
        self.config = config
        c, s = config.channels, config.scale
        self.head = nn.Conv2d(config.in_channels, c, 3, padding=1)
        self.body = nn.Sequential(*[_ResBlock(c) for _ in range(config.blocks)])
        self.tail = nn.Conv2d(c, 3 * s * s, 3, padding=1)

    def forward(self, lr, meta=None, present=None, sigma=None):
        """``sigma`` [N]: the frame's noise estimate (``noise_level`` of the whole frame; computed
        from ``lr`` when not given, which is only right when ``lr`` is the whole frame)."""
        cfg = self.config
        n, _, h, w = lr.shape
        s, e = cfg.scale, cfg.edge_channels
        if meta is None:
            meta = lr.new_zeros(n, e, h * s, w * s)
            present = lr.new_zeros(n, e)
        elif present is None:
            present = lr.new_ones(n, e)
        flags = present.to(lr.dtype).view(n, e, 1, 1).expand(n, e, h, w)
        parts = [lr - 0.5, F.pixel_unshuffle(meta.to(lr.dtype), s), flags]
        if cfg.noise_input:
            if sigma is None:
                sigma = noise_level(lr)
            # scaled so the HN channel (~20/255 before blur) maps to about 1
            parts.append((sigma.to(lr.dtype) * (255.0 / 20.0)).view(n, 1, 1, 1).expand(n, 1, h, w))
        x = torch.cat(parts, dim=1)
        feat = self.head(x)
        feat = feat + self.body(feat)
        base = F.interpolate(lr, scale_factor=s, mode="bicubic", align_corners=False)
        return base + F.pixel_shuffle(self.tail(feat), s)
