"""Inference for the embedded receiver: load the shipped weights, super-resolve in tiles.

``load_embedded()`` returns a :class:`TinyReceiver`, a one-shot receiver (``models/receivers/base.py``).
Frames are processed tile by tile with a margin wider than the network's receptive field, so the
output equals a whole-frame pass while memory stays bounded by the tile size.

Loading is strict and checked before any tensor is read: a damaged, mismatched or foreign weight file
raises :class:`TinyWeightsError` (a ValueError) naming the file and the fix.
"""
import dataclasses
import json
import os
from typing import Dict, Optional

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ...ops import windows
from ...weights_file import REPORT, mismatch_report
from ..base import Progress, RunOptions, check_inputs, report
from ..folder import is_oom, lfs_pointer
from .net import TinyConfig, TinySRNet, noise_level

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
DEFAULT_WEIGHTS = os.path.join(WEIGHTS_DIR, "tiny_sr_x4.safetensors")
_FIX = ("re-clone the pack for the shipped tiny_sr_x4.safetensors, or rebuild the file with "
        "train/train_tiny.py")
# TinyConfig fields a weight file may set: (type, min, max); the receiver feeds exactly one edge map
_CONFIG_FIELDS = {"scale": (int, 1, 8), "channels": (int, 1, 1024), "blocks": (int, 0, 256),
                  "edge_channels": (int, 1, 1), "noise_input": (bool, 0, 1), "prev_input": (bool, 0, 1),
                  "edge_blocks": (int, 0, 256), "edge_proximity": (int, 0, 32)}
_REPORT = REPORT


class TinyWeightsError(ValueError):
    """An embedded-receiver weight file is missing, damaged or does not match the network it declares;
    the message names the file and the fix."""


class TinyWeightsMissingError(TinyWeightsError, FileNotFoundError):
    """The weight file is not on disk."""


def _open_error(path: str, e: Exception) -> TinyWeightsError:
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return TinyWeightsError(f"{path} is empty (0 bytes); {_FIX}.")
    if lfs_pointer(path):
        return TinyWeightsError(f"{path} is a Git LFS pointer, not the weights: run 'git lfs pull', or {_FIX}.")
    return TinyWeightsError(f"{path} is not a readable safetensors file ({type(e).__name__}: {e}); it is "
                            f"truncated or damaged: {_FIX}.")


def _check_file(path: str) -> None:
    if os.path.isdir(path):
        raise TinyWeightsError(f"{path} is a directory where the receiver's .safetensors weight file is "
                               f"expected; pick the file itself ({_FIX}).")
    if not os.path.isfile(path):
        raise TinyWeightsMissingError(f"embedded receiver weights not found at {path}; they ship with the "
                                      f"pack in models/receivers/tiny/weights/ (re-clone, or rebuild with "
                                      f"train/train_tiny.py)")


def _header(path: str):
    """``(metadata strings, {name: (shape, dtype string)})`` without reading a tensor."""
    _check_file(path)
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            layout = {}
            for k in f.keys():
                s = f.get_slice(k)
                layout[k] = (tuple(s.get_shape()), str(s.get_dtype()))
    except Exception as e:  # SafetensorError, OSError: a damaged file
        if is_oom(e):
            raise
        raise _open_error(path, e) from None
    return meta, layout


def read_metadata(path: str) -> dict:
    """The JSON fields stored in a safetensors header (config, training recipe).

    Raises :class:`TinyWeightsError` naming the file (and the field) for a missing, unreadable file
    or a header field that is not JSON."""
    return _parse_metadata(path, _header(path)[0])


def _parse_metadata(path: str, meta: dict) -> dict:
    out = {}
    for k, v in meta.items():
        try:
            out[k] = json.loads(v)
        except (json.JSONDecodeError, RecursionError) as e:
            raise TinyWeightsError(f"{path}: header field {k!r} is not valid JSON "
                                   f"({getattr(e, 'msg', type(e).__name__)}); the file is damaged: {_FIX}.") from None
    return out


def _config(path: str, meta: dict) -> TinyConfig:
    cfg = meta.get("config", {})
    if not isinstance(cfg, dict):
        raise TinyWeightsError(f"{path}: header field 'config' must be a JSON object of TinyConfig fields, "
                               f"found {type(cfg).__name__}; {_FIX}.")
    known = {f.name for f in dataclasses.fields(TinyConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise TinyWeightsError(f"{path}: header 'config' has unknown field(s) {unknown[:_REPORT]} (known: "
                               f"{', '.join(sorted(known))}); the file is not an embedded-receiver file: {_FIX}.")
    for k, v in cfg.items():
        typ, lo, hi = _CONFIG_FIELDS[k]
        if type(v) is not typ or not lo <= v <= hi:
            raise TinyWeightsError(f"{path}: header 'config' has {k} = {repr(v)[:40]}; expected "
                                   f"{'true/false' if typ is bool else f'a whole number in {lo}..{hi}'}: {_FIX}.")
    if not isinstance(meta.get("training", {}), dict):
        raise TinyWeightsError(f"{path}: header field 'training' must be a JSON object; {_FIX}.")
    return TinyConfig(**{"noise_input": False, **cfg})


class TinyReceiver:
    """The embedded 4x receiver (a one-shot :class:`~models.receivers.base.Receiver`): LR frames +
    optional HR edge map -> HR frames. Stateless between calls; the network is only read."""

    metadata_kinds = ("edges",)
    per_frame = True        # frames are independent: the orchestrator may run some pixel-only

    def __init__(self, net: TinySRNet, name: str = "MetaVSR embedded x4", device=None,
                 info: Optional[dict] = None):
        self.net = net.eval()
        self.scale = net.config.scale
        self.name = name
        self.device = torch.device(device or "cpu")
        self.info = info or {}
        self.net.to(self.device)

    @torch.inference_mode()
    def upscale(self, lr: torch.Tensor, metadata: Optional[Dict[str, torch.Tensor]] = None,
                options: RunOptions = RunOptions(), progress: Optional[Progress] = None) -> torch.Tensor:
        """``lr`` [T,H,W,3] float 0..1, ``metadata`` {"edges": [T,sH,sW,1] 0..1} or None
        -> [T,sH,sW,3] float32 0..1 on the CPU.

        ``options.tile`` (output pixels, 0 = whole frame) bounds memory only: tiles carry a margin
        wider than the network's reach, so the frames do not depend on it."""
        lr, maps = check_inputs(self, lr, metadata)
        edges = maps.get("edges")
        t, h, w, _ = lr.shape
        s = self.scale
        out = torch.empty(t, h * s, w * s, 3)
        for i in range(t):
            x = lr[i].permute(2, 0, 1).unsqueeze(0)
            e = None if edges is None else edges[i].permute(2, 0, 1).unsqueeze(0)
            out[i] = apply_tiled(self.net, x, e, options.tile, self.device,
                                 on_tile=lambda k, n, frame, i=i: report(progress, i * n + k, t * n,
                                                                         frame if k == n else None))
        return out


def apply_tiled(net: TinySRNet, lr: torch.Tensor, edges: Optional[torch.Tensor], tile: int, device,
                prev: Optional[torch.Tensor] = None, valid: Optional[torch.Tensor] = None,
                on_tile=None) -> torch.Tensor:
    """One frame through ``net`` in tiles of ``tile`` output pixels (0 = whole frame), each with a
    margin wider than the network's reach, so the result equals a whole-frame pass.

    lr [1,3,h,w]; edges, prev [1,C,sh,sw] or None; valid [1,1,sh,sw]; -> [sh,sw,3] float32 0..1 on
    the CPU. ``on_tile(done, total, frame so far)`` after each tile."""
    _, _, h, w = lr.shape
    s = net.config.scale
    t = max(1, tile // s) if tile else max(h, w)
    m = net.config.receptive_radius + 2
    ys, xs = windows.margin_tiles(h, t, m), windows.margin_tiles(w, t, m)
    sigma = noise_level(lr)  # of the whole frame, so tiling stays exact
    out = torch.empty(h * s, w * s, 3)

    def hr_part(x, py0, py1, px0, px1):
        return None if x is None else x[:, :, py0 * s:py1 * s, px0 * s:px1 * s].to(device)
    done = 0
    for y0, y1, py0, py1 in ys:
        for x0, x1, px0, px1 in xs:
            y = net(lr[:, :, py0:py1, px0:px1].to(device), hr_part(edges, py0, py1, px0, px1),
                    sigma=sigma.to(device), prev=hr_part(prev, py0, py1, px0, px1),
                    valid=hr_part(valid, py0, py1, px0, px1)).clamp_(0, 1)
            oy, ox = (y0 - py0) * s, (x0 - px0) * s
            y = y[0, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
            out[y0 * s:y1 * s, x0 * s:x1 * s] = y.permute(1, 2, 0).float().cpu()
            done += 1
            if on_tile is not None:
                on_tile(done, len(ys) * len(xs), out)
    return out


def load_net(path: str, streaming: bool = False):
    """``(TinySRNet, header fields)`` from a local safetensors file, checked strictly (see
    :func:`load_embedded`); ``streaming`` says which kind of file the caller wants, and the other
    kind is refused with a message that names the right loader."""
    strings, layout = _header(path)
    meta = _parse_metadata(path, strings)
    config = _config(path, meta)
    if config.prev_input != streaming:
        raise TinyWeightsError(
            f"{path} holds the embedded {'streaming' if config.prev_input else 'still'} receiver, "
            f"not the {'streaming' if streaming else 'still'} one; "
            + ("load it with load_stream (MetaVSR Load Embedded Receiver does it by itself)." if config.prev_input
               else "load it with load_embedded (MetaVSR Load Embedded Receiver does it by itself)."))
    with torch.device("meta"):  # shapes only: no memory, whatever the config says
        expected = {k: tuple(v.shape) for k, v in TinySRNet(config).state_dict().items()}
    report = mismatch_report(expected, layout)
    if report:
        raise TinyWeightsError(f"{path} does not match the network its header declares ({config}): {report}. "
                               f"The file is incomplete or from another model: {_FIX}.")
    try:
        state = load_file(path)
        bad = sorted(k for k, v in state.items() if not torch.isfinite(v).all())
        if bad:
            raise TinyWeightsError(f"{path}: tensor(s) {bad[:_REPORT]} hold NaN or Inf values; the file is "
                                   f"damaged: {_FIX}.")
        net = TinySRNet(config)
        net.load_state_dict(state, strict=True)
    except TinyWeightsError:
        raise
    except Exception as e:  # checked above; a damaged file can still fail here
        if is_oom(e):
            raise
        raise TinyWeightsError(f"{path} could not be loaded ({type(e).__name__}: {str(e)[:300]}); {_FIX}.") \
            from None
    return net, meta


def is_streaming_file(path: str) -> bool:
    """Whether a weight file holds the streaming variant (``prev_input``), from its header only."""
    return _config(path, _parse_metadata(path, _header(path)[0])).prev_input


def load_embedded(path: Optional[str] = None, device=None) -> TinyReceiver:
    """Load the shipped weights (or ``path``) from a local safetensors file; nothing downloads.

    Strict: the header's config must be a valid :class:`TinyConfig`, and the file must hold exactly the
    network's tensors with its shapes (checked from the header before any tensor is read), all finite.
    Raises :class:`TinyWeightsError` (:class:`TinyWeightsMissingError`, also a FileNotFoundError, when
    absent) naming the file and listing missing / unexpected / mis-shaped tensors.
    """
    net, meta = load_net(path or DEFAULT_WEIGHTS)
    return TinyReceiver(net, device=device, info=meta.get("training", {}))
