"""The embedded streaming receiver: causal x4, one frame at a time, on a CPU, no download.

Per frame t: DIS flow between the LR frames t-1 and t (both ways), the previous HR output warped onto
frame t with the validity mask of the forward-backward check (``guide.py``), then the embedded
network (``models/receivers/tiny/net.py`` with ``prev_input``) on the LR frame, the optional edge
map, the frame's noise estimate and that guidance. Frame 0, a scene cut (too little of the frame
explained by the previous one) and ``options.temporal = False`` run without it, as the per-frame
baseline. Memory does not grow with the video: the state is the previous LR frame, its grey and the
previous HR output.

State (``run_stream`` copies it, so a chunked video gives the frames of one run): ``frame`` index,
``prev_hr`` [1,3,sH,sW], ``prev_grey`` [h,w] uint8, ``options``, ``stats`` (frames, seconds,
first-frame seconds, peak device memory).
"""
import os
import threading
import time
from typing import Dict, Optional

import torch

from ...metrics.temporal import grey_u8
from ..base import RunOptions, Streaming, check_frame_size, check_inputs, count_frame, new_stats
from ..tiny.net import TinySRNet
from ..tiny.receiver import TinyReceiver, apply_tiled, load_net
from .guide import flows, guidance

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
DEFAULT_WEIGHTS = os.path.join(WEIGHTS_DIR, "tiny_stream_x4.safetensors")


class TinyStreamReceiver(Streaming, TinyReceiver):
    """A streaming :class:`~models.receivers.base.Receiver` (``start`` / ``push``; ``upscale`` runs
    a whole clip). Metadata: edges, per frame."""

    per_frame = False       # each frame depends on the previous output

    def __init__(self, net: TinySRNet, name: str = "MetaVSR embedded stream x4", device=None,
                 info: Optional[dict] = None):
        if not net.config.prev_input:
            raise ValueError("TinyStreamReceiver needs a network with prev_input=True")
        super().__init__(net, name, device, info)
        self._lock = threading.Lock()

    def start(self, options: RunOptions = RunOptions()) -> dict:
        return {"frame": 0, "prev_hr": None, "prev_grey": None, "options": options, "stats": new_stats()}

    @torch.inference_mode()
    def push(self, state: dict, lr_t: torch.Tensor, metadata_t: Optional[Dict[str, torch.Tensor]] = None):
        """lr_t [h,w,3] float 0..1, metadata_t {"edges": [sh,sw,1]} -> (hr_t [sh,sw,3] float32 0..1, state)."""
        lr1, maps = check_inputs(self, lr_t[None], {k: v[None] for k, v in (metadata_t or {}).items()})
        grey = grey_u8(lr1)[0]
        prev_grey = state["prev_grey"]
        check_frame_size(state["frame"], None if prev_grey is None else prev_grey.shape, grey.shape)
        options = state.get("options") or RunOptions()
        t0 = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        prev = valid = None
        if state["prev_hr"] is not None and options.temporal:
            flow, v = flows(prev_grey, grey)
            if v.any():
                prev, valid = guidance(state["prev_hr"], torch.from_numpy(flow)[None], torch.from_numpy(v)[None],
                                       self.scale)
        x = lr1[0].permute(2, 0, 1)[None]
        e = maps.get("edges")
        e = None if e is None else e[0].permute(2, 0, 1)[None]
        with self._lock:
            out = apply_tiled(self.net, x, e, options.tile, self.device, prev, valid)
        stats = count_frame(state["stats"], time.perf_counter() - t0, self.device)
        return out, {"frame": state["frame"] + 1, "prev_hr": out.permute(2, 0, 1)[None], "prev_grey": grey,
                     "options": options, "stats": stats}

    def describe(self) -> str:
        return f"{self.name}: x{self.scale}, causal, DIS flow, on {self.device}"


def load_stream(path: Optional[str] = None, device=None) -> TinyStreamReceiver:
    """The shipped streaming weights (or ``path``), checked as strictly as the still receiver's
    (``tiny.receiver.load_net``); nothing downloads."""
    net, meta = load_net(path or DEFAULT_WEIGHTS, streaming=True)
    return TinyStreamReceiver(net, device=device, info=meta.get("training", {}))
