"""The link between sender and receiver, one path for ``run.py``, the nodes and the orchestrator.

    send_base(hr, quality, regime)        -> Sent(lr as received, JPEG stream)
    send_metadata(kind, source, ...)      -> Sent(map as received, its lossless stream, info)
    receive(receiver, lr, metadata, opts) -> HR frames
    measure(sr, hr, metrics)              -> {metric: mean over frames}

Frames are ``[T,H,W,3]`` float32 0..1 (a single ``[H,W,3]`` image is taken as T = 1); maps
``[T,H,W]`` float32 0..1. Every rate comes from the real bytes of the returned ``Bitstream``.
MetaSR's transmission (Sec. 4.3): the HR is downsized x4 (antialiased bicubic) and coded as a JPEG
base layer; the channel (noise, blur) acts on the *decoded* base layer; metadata travel on an
error-free side channel, losslessly coded.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .codec.bitstream import Bitstream
from .codec.degrade import REGIMES, channel_degrade
from .codec.jpeg import jpeg_decode, jpeg_encode
from .codec.resize import downscale
from .metadata import kind as metadata_kind
from .metrics import metric
from .receivers.base import RunOptions

SCALE = 4


@dataclass(frozen=True)
class Sent:
    """What crossed the link: ``received`` as the receiver sees it (LR frames or a metadata map),
    the exact ``stream`` (its ``nbits`` is the rate), and producer details for reports."""
    received: np.ndarray
    stream: Bitstream
    info: dict = field(default_factory=dict)

    @property
    def bits(self) -> int:
        return self.stream.nbits


def _frames(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[None] if x.ndim == 3 else x


def send_base(hr, quality: int, regime: str = "NN", seed: int = 0, fps: float = 30.0) -> Sent:
    """HR ``[T,H,W,3]`` -> x4 bicubic down, JPEG at ``quality``, then the ``regime``'s channel
    (NN / LN / HN) on the decoded base layer, noise seeded per frame from ``seed``."""
    lr = downscale(_frames(hr), SCALE, "bicubic")
    stream = jpeg_encode(lr, quality, fps=fps)
    noise, k, sigma = REGIMES[regime]
    received = channel_degrade(jpeg_decode(stream), noise, k, sigma, seed=seed)
    return Sent(received, stream, dict(quality=int(quality), regime=regime))


def send_metadata(kind: str, source, produce: Optional[dict] = None, coding=None, fps: float = 30.0,
                  verify: bool = True) -> Sent:
    """Make a metadata map at the sender, code it losslessly and decode it as the receiver would.

    kind:    a registered kind (``models/metadata``): "edges" takes the HR frames as ``source``
             (``produce``: ``density`` or ``low``/``high``, ``dilate``), "depth" a depth map.
    coding:  the kind's coding dataclass (``EdgeCoding``, ``DepthCoding``); None = its defaults.
    verify:  check the side channel is exact (the decoded map equals what the coder was given after
             its own rate control), as a lossless channel must be.
    """
    k = metadata_kind(kind)
    maps, info = k.produce(_frames(source) if kind == "edges" else source, **(produce or {}))
    stream = k.encode(maps, coding or k.coding(), fps)
    received, exact = k.decode(stream)
    if verify and exact is False:
        raise RuntimeError(f"the {kind} side channel is not lossless")  # a coder bug, never the input
    return Sent(received.astype(np.float32), stream, info)


def receive(receiver, lr, metadata: Optional[Dict[str, np.ndarray]] = None,
            options: RunOptions = RunOptions(), progress=None) -> np.ndarray:
    """Run any receiver (``models/receivers``) on received LR frames with decoded metadata maps
    (``[T,sH,sW]`` or ``[T,sH,sW,C]``): -> ``[T,sH,sW,3]`` float32."""
    lr_t = torch.from_numpy(np.ascontiguousarray(_frames(lr)))
    meta = None
    if metadata:
        meta = {}
        for name, m in metadata.items():
            m = np.asarray(m, dtype=np.float32)
            meta[name] = torch.from_numpy(np.ascontiguousarray(m[..., None] if m.ndim == 3 else m))
    return receiver.upscale(lr_t, meta, options, progress).numpy()


def measure(sr, hr, metrics: Sequence[str] = ("psnr", "ssim", "lpips")) -> dict:
    """Mean over frames of each registered metric of ``sr`` against ``hr`` (``[T,H,W,3]``); a metric
    whose network needs larger frames than these is left out (not reported as 0)."""
    x = torch.from_numpy(np.ascontiguousarray(_frames(sr)))
    y = torch.from_numpy(np.ascontiguousarray(_frames(hr)))
    out = {}
    for name in metrics:
        m = metric(name)
        if min(y.shape[1:3]) < m.min_size:
            continue
        out[name] = float(m.fn(x, y).double().mean())
    return out
