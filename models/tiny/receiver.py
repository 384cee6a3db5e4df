"""Inference for the embedded receiver: load the shipped weights, super-resolve in tiles.

``load_embedded()`` returns a :class:`TinyReceiver`, which implements ``models.receiver.SRModel``.
Frames are processed tile by tile with a margin wider than the network's receptive field, so the
output equals a whole-frame pass while memory stays bounded by the tile size.
"""
import json
import os
from typing import Callable, Dict, Optional

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from .net import TinyConfig, TinySRNet, noise_level

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
DEFAULT_WEIGHTS = os.path.join(WEIGHTS_DIR, "tiny_sr_x4.safetensors")


def read_metadata(path: str) -> dict:
    """The JSON fields stored in a safetensors header (config, training recipe)."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    return {k: json.loads(v) for k, v in meta.items()}


def _tiles(n: int, size: int):
    return [(a, min(a + size, n)) for a in range(0, n, size)]


class TinyReceiver:
    """The embedded 4x receiver (``SRModel``): LR frames + optional HR edge map -> HR frames."""

    metadata_kinds = ("edges",)

    def __init__(self, net: TinySRNet, name: str = "MetaVSR embedded x4", device=None,
                 tile: int = 192, info: Optional[dict] = None):
        self.net = net.eval()
        self.scale = net.config.scale
        self.name = name
        self.device = torch.device(device or "cpu")
        self.tile = int(tile)
        self.info = info or {}
        self.net.to(self.device)

    @torch.inference_mode()
    def upscale(self, lr: torch.Tensor, metadata: Optional[Dict[str, torch.Tensor]] = None,
                progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
        """``lr`` [T,H,W,3] float 0..1, ``metadata`` {"edges": [T,sH,sW,1] 0..1} or None
        -> [T,sH,sW,3] float32 0..1 on the CPU."""
        lr = torch.as_tensor(lr).float()
        if lr.ndim != 4 or lr.shape[-1] != 3:
            raise ValueError(f"lr must be [T,H,W,3], got {tuple(lr.shape)}")
        t, h, w, _ = lr.shape
        s = self.scale
        edges = None
        if metadata:
            unknown = set(metadata) - set(self.metadata_kinds)
            if unknown:
                raise ValueError(f"metadata kinds {sorted(unknown)} are not supported (accepted: edges)")
            if metadata.get("edges") is not None:
                edges = torch.as_tensor(metadata["edges"]).float()
                if edges.ndim == 3:
                    edges = edges.unsqueeze(-1)
                if tuple(edges.shape) != (t, h * s, w * s, 1):
                    raise ValueError(f"edges must be [T,{h * s},{w * s},1], got {tuple(edges.shape)}")
        out = torch.empty(t, h * s, w * s, 3)
        m = self.net.config.receptive_radius + 2
        ys, xs = _tiles(h, self.tile), _tiles(w, self.tile)
        total, done = t * len(ys) * len(xs), 0
        for i in range(t):
            x_all = lr[i].permute(2, 0, 1).unsqueeze(0)
            e_all = None if edges is None else edges[i].permute(2, 0, 1).unsqueeze(0)
            sigma = noise_level(x_all)
            for y0, y1 in ys:
                for x0, x1 in xs:
                    py0, py1, px0, px1 = max(y0 - m, 0), min(y1 + m, h), max(x0 - m, 0), min(x1 + m, w)
                    x = x_all[:, :, py0:py1, px0:px1].to(self.device)
                    e = None if e_all is None else e_all[:, :, py0 * s:py1 * s, px0 * s:px1 * s].to(self.device)
                    y = self.net(x, e, sigma=sigma.to(self.device)).clamp_(0, 1)
                    oy, ox = (y0 - py0) * s, (x0 - px0) * s
                    y = y[0, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
                    out[i, y0 * s:y1 * s, x0 * s:x1 * s] = y.permute(1, 2, 0).float().cpu()
                    done += 1
                    if progress is not None:
                        progress(done, total)
        return out


def load_embedded(path: Optional[str] = None, device=None, tile: int = 192) -> TinyReceiver:
    """Load the shipped weights (or ``path``) from a local safetensors file; nothing downloads."""
    path = path or DEFAULT_WEIGHTS
    if not os.path.isfile(path):
        raise FileNotFoundError(f"embedded receiver weights not found at {path}; they ship with the "
                                f"pack in models/tiny/weights/ (re-clone, or rebuild with train/train_tiny.py)")
    meta = read_metadata(path)
    net = TinySRNet(TinyConfig(**{"noise_input": False, **meta.get("config", {})}))
    net.load_state_dict(load_file(path))
    return TinyReceiver(net, device=device, tile=tile, info=meta.get("training", {}))
