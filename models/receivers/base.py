"""The receiver interface: every super-resolution family implements it, everything that runs one
(the Super-Resolve node, ``run.py``, the orchestrator) calls it, and nothing else is needed to add a
receiver than a folder next to ``tiny/`` and ``cogvideox/``.

Data (ComfyUI's layout, on the CPU):

    lr        [T,H,W,3] float32 0..1
    metadata  {kind: [T or 1, sH, sW, C] float32 0..1} at the output size, kinds from
              ``receiver.metadata_kinds`` (the registry in ``models/metadata`` gives C); a kind left
              out means "not transmitted" and the receiver runs pixel-only for it
    returns   [T,sH,sW,3] float32 0..1, s = ``receiver.scale``

Settings travel per call in a frozen :class:`RunOptions`, never as attributes changed on a shared
model, so two calls (or two threads) with the same options give the same frames. Families:

- one-shot (the embedded CNN, CogVideoX one-step): ``upscale(lr, metadata, options, progress)``;
  :func:`run_segments` runs any of them over a long video in bounded memory;
- streaming (causal, e.g. Stream-DiffVSR): ``start(options) -> state`` and
  ``push(state, lr_t, metadata_t) -> (hr_t, state)``; :class:`Streaming` turns that into ``upscale``
  through :func:`run_stream`, which also resumes from a state returned by an earlier call.
"""
import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Protocol, Tuple, runtime_checkable

import torch

from ..metadata import KINDS
from ..ops import windows

SR_MODEL_TYPE = "METAVSR_SR_MODEL"  # ComfyUI socket type name

# progress(done, total, preview): preview is an optional [H,W,3] float 0..1 frame for the UI
Progress = Callable[..., None]


class ReceiverInputError(ValueError):
    """Frames, metadata or options a receiver cannot take; the message names the input and the fix."""


@dataclass(frozen=True)
class RunOptions:
    """Per-call settings. Receivers read the ones they use and ignore the rest.

    seed:           every random draw of the run (VAE posterior sample, initial noise)
    tile, tile_overlap:   spatial window and overlap in *output* pixels (0 = whole frame)
    chunk, chunk_overlap: temporal window and overlap in frames (0 = whole clip)
    segment, segment_overlap: frames per independent run on long videos (0 = all at once); the
                    segments cross-fade over ``segment_overlap`` frames
    steps, guidance: sampler steps and classifier-free guidance scale (multi-step receivers)
    timestep:       the timestep of a one-step receiver's single step
    vae_tiling:     blended VAE tiling (latent receivers)
    temporal:       streaming receivers: guide each frame by the previous output (False: every frame
                    runs as a first frame, the per-frame baseline; the noise draw is unchanged)
    """
    seed: int = 0
    tile: int = 0
    tile_overlap: int = 0
    chunk: int = 0
    chunk_overlap: int = 0
    segment: int = 0
    segment_overlap: int = 8
    steps: int = 1
    guidance: float = 1.0
    timestep: int = 399
    vae_tiling: bool = True
    temporal: bool = True

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in (int, "int") and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ReceiverInputError(f"{f.name}: must be a whole number >= 0, got {v!r}.")
        if not (isinstance(self.guidance, (int, float)) and math.isfinite(self.guidance) and self.guidance >= 0):
            raise ReceiverInputError(f"guidance: must be a finite number >= 0, got {self.guidance!r}.")
        for size, lap in (("tile", "tile_overlap"), ("chunk", "chunk_overlap"), ("segment", "segment_overlap")):
            if getattr(self, size) and getattr(self, lap) >= getattr(self, size):
                raise ReceiverInputError(f"{lap}: {getattr(self, lap)} must be smaller than {size} "
                                         f"{getattr(self, size)}.")
        if self.steps < 1:
            raise ReceiverInputError(f"steps: must be at least 1, got {self.steps}.")

    def replace(self, **changes) -> "RunOptions":
        return dataclasses.replace(self, **changes)


@runtime_checkable
class Receiver(Protocol):
    name: str
    scale: int
    metadata_kinds: Tuple[str, ...]

    def upscale(self, lr: torch.Tensor, metadata: Optional[Dict[str, torch.Tensor]] = None,
                options: RunOptions = RunOptions(), progress: Optional[Progress] = None) -> torch.Tensor:
        ...


@runtime_checkable
class StreamingReceiver(Receiver, Protocol):
    def start(self, options: RunOptions) -> dict:
        ...

    def push(self, state: dict, lr_t: torch.Tensor, metadata_t: Dict[str, torch.Tensor]) -> tuple:
        ...


@dataclass(frozen=True)
class Configured:
    """A receiver with the options its loader node chose: what a ``METAVSR_SR_MODEL`` socket carries.
    The weights are shared; the options are this pair's own."""
    receiver: Receiver
    options: RunOptions = RunOptions()

    @property
    def name(self):
        return self.receiver.name

    @property
    def scale(self):
        return self.receiver.scale

    @property
    def metadata_kinds(self):
        return self.receiver.metadata_kinds

    def upscale(self, lr, metadata=None, progress=None, **changes):
        options = self.options.replace(**changes) if changes else self.options
        return self.receiver.upscale(lr, metadata, options, progress)


def report(progress: Optional[Progress], done: int, total: int, preview=None):
    """``progress(done, total, preview)`` when a callback is given (every receiver calls it so)."""
    if progress is not None:
        progress(done, total, preview)


# --------------------------------------------------------------------------- the one input check
def check_inputs(receiver, lr, metadata=None) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Validate what a receiver is given, once for every family.

    Returns ``(lr [T,H,W,3] float32, {kind: [T,sH,sW,C] float32})`` (a 1-frame map is broadcast to
    T frames, ``[T,sH,sW]`` gets its channel axis) or raises :class:`ReceiverInputError`.
    """
    if not isinstance(lr, torch.Tensor):
        raise ReceiverInputError(f"lr: expected a [T,H,W,3] tensor, got {type(lr).__name__}.")
    if lr.ndim != 4 or lr.shape[-1] != 3:
        raise ReceiverInputError(f"lr: expected [T,H,W,3] RGB frames, got shape {tuple(lr.shape)}.")
    if min(lr.shape[:3]) == 0:
        raise ReceiverInputError(f"lr: the video is empty {tuple(lr.shape)}.")
    lr = lr.float()
    if not bool(torch.isfinite(lr).all()):
        raise ReceiverInputError("lr: contains NaN or Inf values; check the node that produced it.")
    if float(lr.min()) < 0 or float(lr.max()) > 1:
        raise ReceiverInputError("lr: values must lie in 0..1 (float IMAGE convention).")
    t, h, w, _ = lr.shape
    s = int(receiver.scale)
    maps = {}
    for kind, m in (metadata or {}).items():
        if m is None:
            continue
        if kind not in receiver.metadata_kinds:
            raise ReceiverInputError(
                f"{kind}: the model {receiver.name!r} does not take {kind} metadata (it accepts: "
                f"{', '.join(receiver.metadata_kinds) or 'none'}); disconnect it or load a model trained with it.")
        maps[kind] = check_map(kind, m, t, h * s, w * s, (KINDS[kind].channels,))
    return lr, maps


def check_map(name: str, m, t: int, hr_h: int, hr_w: int, channels=(1,)) -> torch.Tensor:
    """One metadata map ``[T or 1, hr_h, hr_w, C]`` (or ``[T or 1, hr_h, hr_w]``), C in ``channels``,
    values 0..1 -> float32 ``[T, hr_h, hr_w, C]``, or :class:`ReceiverInputError` naming ``name``."""
    if not isinstance(m, torch.Tensor):
        raise ReceiverInputError(f"{name}: expected a tensor, got {type(m).__name__}.")
    if m.ndim == 3:
        m = m.unsqueeze(-1)
    if m.ndim != 4 or m.shape[-1] not in channels:
        want = "|".join(map(str, channels))
        raise ReceiverInputError(f"{name}: expected [T,{hr_h},{hr_w},{want}], got {tuple(m.shape)}.")
    if tuple(m.shape[1:3]) != (hr_h, hr_w):
        raise ReceiverInputError(
            f"{name}: is {m.shape[2]}x{m.shape[1]} but the output is {hr_w}x{hr_h}; metadata maps are sent "
            f"at the output size (compute them on the HR frames, or upscale a low-resolution map with "
            f"nearest-neighbour).")
    if m.shape[0] not in (1, t):
        raise ReceiverInputError(f"{name}: has {m.shape[0]} frames but lr has {t}; give one map per frame "
                                 f"or a single map for all frames.")
    m = m.float()
    if not bool(torch.isfinite(m).all()):
        raise ReceiverInputError(f"{name}: contains NaN or Inf values; check the node that produced it.")
    if float(m.min()) < 0 or float(m.max()) > 1:
        raise ReceiverInputError(f"{name}: values must lie in 0..1.")
    return m.expand(t, hr_h, hr_w, m.shape[-1])


# --------------------------------------------------------------------------- long videos, one shot
def run_segments(run: Callable, lr: torch.Tensor, maps, scale: int,
                 segment: int, overlap: int, progress: Optional[Progress] = None) -> torch.Tensor:
    """A one-shot receiver over a long video in bounded memory: ``run(lr_seg, maps_seg, sub_progress)``
    (``maps`` a dict of kinds or a list, each ``[T,...]``, sliced alike) on overlapping segments of ``segment`` frames (so device memory does not grow with the video),
    cross-faded over ``overlap`` frames on the CPU. ``segment <= 0`` or a short video runs once."""
    t, h, w, _ = lr.shape
    if segment <= 0 or t <= segment:
        return run(lr, maps, progress)
    overlap = max(1, min(overlap, segment - 1))
    starts = windows.starts(t, segment, overlap)
    out = torch.zeros(t, h * scale, w * scale, 3)
    wsum = torch.zeros(t, 1, 1, 1)
    for i, s0 in enumerate(starts):
        def sub(done, total, preview=None, i=i):
            report(progress, i * total + min(done, total), total * len(starts), preview)
        part = ({k: m[s0:s0 + segment] for k, m in maps.items()} if isinstance(maps, dict)
                else [m[s0:s0 + segment] for m in maps])
        y = run(lr[s0:s0 + segment], part, sub)
        wt = windows.ramp(segment, overlap, s0 == 0, s0 + segment == t)[:, None, None, None]
        out[s0:s0 + segment] += y * wt
        wsum[s0:s0 + segment] += wt
    return out / wsum


# --------------------------------------------------------------------------- streaming
def copy_state(state):
    """A deep copy of a streaming state (tensors cloned), so a caller may keep one and resume later."""
    return copy.deepcopy(state)


def run_stream(receiver, lr: torch.Tensor, metadata=None, options: RunOptions = RunOptions(),
               state: Optional[dict] = None, progress: Optional[Progress] = None):
    """Drive a streaming receiver over ``lr`` frame by frame: ``(hr [T,sH,sW,3], state)``.

    ``state`` from an earlier call continues the same stream, so a video cut into chunks across
    several calls gives exactly the frames of one uninterrupted run. The state handed in is not
    modified (each call works on a copy). A state that keeps its run's settings under ``"options"``
    gets this call's ``options`` (a continued stream runs with the current settings; its noise
    draw continues whatever the seed). ``progress(done, total, preview)`` per frame, with the
    newest output frame as the preview.
    """
    lr, maps = check_inputs(receiver, lr, metadata)
    if state is None:
        state = receiver.start(options)
    else:
        state = copy_state(state)
        if isinstance(state.get("options"), RunOptions):
            state["options"] = options
    t = lr.shape[0]
    frames = []
    for i in range(t):
        hr_t, state = receiver.push(state, lr[i], {k: m[i] for k, m in maps.items()})
        frames.append(hr_t.float().cpu())
        report(progress, i + 1, t, frames[-1])
    return torch.stack(frames), state


def new_stats() -> dict:
    """A streaming state's ``stats``: frames, seconds, first-frame seconds, peak device memory."""
    return {"frames": 0, "seconds": 0.0, "first_frame_s": None, "peak_device_bytes": 0}


def count_frame(stats: dict, seconds: float, device) -> dict:
    """``stats`` with one more frame that took ``seconds`` (peak memory read on a CUDA ``device``)."""
    out = dict(stats)
    out["frames"] += 1
    out["seconds"] += seconds
    if out["first_frame_s"] is None:
        out["first_frame_s"] = seconds
    if torch.device(device).type == "cuda":
        out["peak_device_bytes"] = max(out["peak_device_bytes"], torch.cuda.max_memory_allocated(device))
    return out


def check_frame_size(frame: int, prev_hw, hw) -> None:
    """A stream keeps one frame size: refuse frame ``frame`` of size ``hw`` after ``prev_hw``."""
    if prev_hw is not None and tuple(prev_hw) != tuple(hw):
        raise ReceiverInputError(
            f"lr: frame {frame} is {hw[1]}x{hw[0]} but the stream so far is {prev_hw[1]}x{prev_hw[0]}; a "
            f"stream keeps one size (start a new stream, i.e. do not pass the state, for another video).")


class Streaming:
    """Mixin: a streaming receiver's ``upscale`` is one uninterrupted :func:`run_stream`."""

    def upscale(self, lr, metadata=None, options: RunOptions = RunOptions(), progress=None):
        return run_stream(self, lr, metadata, options, None, progress)[0]
