"""The embedded receiver network: a small residual CNN at LR resolution with edge metadata.

MetaSR feeds metadata as extra tokens that share the positional indices of the aligned image tokens.
This network does the convolutional equivalent: the HR edge map is folded to LR resolution by
pixel-unshuffle (space-to-depth, s*s channels), so every sub-pixel edge position of an LR location
enters the same feature vector as that location's pixels, plus one presence flag that tells the
network whether metadata was transmitted at all (one model, trained with metadata dropout, serves
both cases). The output is a residual over bicubic upscaling, brought to HR by pixel-shuffle.

The streaming variant (``prev_input``, ``models/receivers/tiny_stream``) is the same network with
the previous HR output as one more input, FRVSR's idea (Sajjadi et al., CVPR 2018) and
Stream-DiffVSR's guidance without the diffusion: warped onto the current frame by optical flow, as
its residual over the current bicubic upscale, folded to LR resolution like the edges, with the
validity mask of the flow's forward-backward check (also folded) and a presence flag (0 on the
first frame, after a cut, or when temporal guidance is off).
"""
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops.noise import noise_level  # noqa: F401  (re-exported: receivers import it from here)


@dataclass(frozen=True)
class TinyConfig:
    scale: int = 4
    channels: int = 64
    blocks: int = 8
    edge_channels: int = 1      # metadata maps at HR size (edges now; room for more kinds)
    noise_input: bool = True    # a per-frame channel-noise estimate as one more constant channel
    prev_input: bool = False    # streaming: the warped previous HR output, its validity, a flag
    edge_blocks: int = 0        # residual blocks of the edge branch (0 = none), run only with metadata
    edge_proximity: int = 0     # the branch also sees each map's proximity out to this many HR pixels

    def to_dict(self):
        return asdict(self)

    @property
    def in_channels(self) -> int:
        # RGB + unshuffled metadata + one presence flag per metadata map (+ noise) (+ previous output:
        # unshuffled RGB residual, unshuffled validity, flag); new inputs go last, so a streaming
        # network can start from a still one with zero weights on them
        s2 = self.scale ** 2
        return (3 + self.edge_channels * (s2 + 1) + int(self.noise_input)
                + (4 * s2 + 1 if self.prev_input else 0))

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context one output pixel depends on (3x3 convs: head, 2 per block, tail;
        the edge branch adds its own head, blocks and tail)."""
        branch = 2 * self.edge_blocks + 2 + -(-self.edge_proximity // self.scale) if self.edge_blocks else 0
        return 2 * self.blocks + 2 + branch


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
        if config.edge_blocks:
            # capacity that only the metadata pays for: a second residual stack on the trunk's
            # features and the unshuffled maps again, whose correction is added where a map was sent;
            # its tail starts at zero, so a branch added to trained weights changes nothing at first
            m = config.edge_channels * s * s * (2 if config.edge_proximity else 1)
            self.edge_head = nn.Conv2d(c + m, c, 3, padding=1)
            self.edge_body = nn.Sequential(*[_ResBlock(c) for _ in range(config.edge_blocks)])
            self.edge_tail = nn.Conv2d(c, 3 * s * s, 3, padding=1)
            nn.init.zeros_(self.edge_tail.weight)
            nn.init.zeros_(self.edge_tail.bias)

    def forward(self, lr, meta=None, present=None, sigma=None, prev=None, valid=None, prev_present=None):
        """``sigma`` [N]: the frame's noise estimate (``noise_level`` of the whole frame; computed
        from ``lr`` when not given, which is only right when ``lr`` is the whole frame).
        ``prev`` [N,3,sh,sw]: the previous output warped onto this frame, ``valid`` [N,1,sh,sw] 0..1
        where the warp is trusted (``prev_input`` networks; None = no previous frame);
        ``prev_present`` [N] 0/1 drops it per sample (training's previous-frame dropout)."""
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
        base = F.interpolate(lr, scale_factor=s, mode="bicubic", align_corners=False)
        if cfg.prev_input:
            if prev is None:
                parts.append(lr.new_zeros(n, 4 * s * s + 1, h, w))
            else:
                valid = prev.new_ones(n, 1, h * s, w * s) if valid is None else valid.to(lr.dtype)
                flag = lr.new_ones(n) if prev_present is None else prev_present.to(lr.dtype).view(n)
                valid = valid * flag.view(n, 1, 1, 1)
                parts += [F.pixel_unshuffle((prev.to(lr.dtype) - base) * valid, s), F.pixel_unshuffle(valid, s),
                          flag.view(n, 1, 1, 1).expand(n, 1, h, w)]
        elif prev is not None:
            raise ValueError("this network has no previous-frame input (prev_input=False)")
        x = torch.cat(parts, dim=1)
        feat = self.head(x)
        feat = feat + self.body(feat)
        res = self.tail(feat)
        if cfg.edge_blocks and bool(present.any()):
            maps = [feat, parts[1]]
            if cfg.edge_proximity:
                maps.append(F.pixel_unshuffle(proximity(meta.to(lr.dtype), cfg.edge_proximity), s))
            g = self.edge_head(torch.cat(maps, dim=1))
            g = self.edge_tail(g + self.edge_body(g))
            # a sample without any map gets none of the branch (its pixel-only output is the trunk's)
            res = res + g * (present.to(lr.dtype).amax(dim=1) > 0).to(lr.dtype).view(n, 1, 1, 1)
        return base + F.pixel_shuffle(res, s)

    def trunk_parameters(self):
        """The parameters of the pixel path (everything but the edge branch)."""
        return [p for k, p in self.named_parameters() if not k.startswith("edge_")]


def proximity(maps: torch.Tensor, reach: int) -> torch.Tensor:
    """``[N,E,H,W]`` 0/1 -> same shape: 1 on a map's pixels, falling by ``1/reach`` per pixel of
    chessboard distance, 0 from ``reach`` pixels on. A binary map marks a transition with isolated
    dots; the distance to it tells every HR pixel how far the step is, which a few 3x3 convolutions
    at LR resolution cannot work out themselves."""
    out = maps.clone()
    for k in range(1, reach):
        out = out + F.max_pool2d(maps, 2 * k + 1, stride=1, padding=k)
    return out / reach


def streaming_from_still(still: TinySRNet) -> TinySRNet:
    """A ``prev_input`` network that computes exactly what ``still`` does until it learns to use the
    previous frame: the same weights, zeros on the new input channels."""
    cfg = replace(still.config, prev_input=True)
    net = TinySRNet(cfg)
    state = {k: v.clone() for k, v in still.state_dict().items()}
    w = state["head.weight"]
    state["head.weight"] = torch.cat([w, w.new_zeros(w.shape[0], cfg.in_channels - w.shape[1], *w.shape[2:])], 1)
    net.load_state_dict(state)
    return net
