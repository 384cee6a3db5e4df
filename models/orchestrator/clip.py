"""The orchestrator on one clip, as the nodes run it: split at scene cuts, evaluate every candidate
per segment, choose at a lambda or within a budget, and assemble what crosses the link.

    plan = orchestrate_clip(hr, receiver, candidates, regime, lam=... | budget_bits=...)
    plan.lr [T,h,w,3], plan.edges [T,H,W] (0 where a frame carries none), plan.present [T] bool,
    plan.signature: the verification gate's Bitstream("gate-signature") (``gate.sign``)

``present`` says which frames carry edge metadata; a receiver runs the others pixel-only
(:func:`receive_present`), so a segment sent without metadata is received exactly as pixel-only.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .. import link
from ..codec.bitstream import Bitstream
from ..codec.jpeg import jpeg_decode
from ..metadata import content
from ..receivers.base import RunOptions
from . import gate
from . import operational as op
from .candidates import Candidate, send


@dataclass
class Plan:
    """What the sender transmits for a clip and why (see the module doc)."""
    lr: np.ndarray
    edges: np.ndarray
    present: np.ndarray
    bits: int
    segments: List[dict]
    table: op.Table
    lam: float
    fixed: Dict[str, List[dict]] = field(default_factory=dict)
    curve: List[dict] = field(default_factory=list)
    signature: Optional[Bitstream] = None

    def text(self) -> str:
        head = f"{'frames':<7} {'bucket':<9} {'choice':<26} {'bits':>7} {'psnr':>6}"
        rows = [head, "-" * len(head)]
        for s in self.segments:
            rows.append(f"{s['start']:>3}-{s['stop'] - 1:<3} {s['bucket']:<9} {s['choice']:<26} "
                        f"{s['bits']:>7} {s['psnr']:6.2f}")
        rows.append(f"total {self.bits} bits at lambda {self.lam:.4g}")
        rows.append(f"(base layers + metadata + {op.SIGNAL_BITS} bits a segment)")
        return "\n".join(rows)


def orchestrate_clip(hr: np.ndarray, receiver, candidates: Sequence[Candidate], regime: str = "NN",
                     lam: Optional[float] = None, budget_bits: Optional[float] = None, key: str = "psnr",
                     cut: float = content.CUT, seed: int = 0, options: RunOptions = RunOptions(),
                     progress=None) -> Plan:
    """``hr`` ``[T,H,W,3]`` float 0..1 (H, W multiples of 4). Exactly one of ``lam`` / ``budget_bits``."""
    if (lam is None) == (budget_bits is None):
        raise ValueError("orchestrate: give a lambda or a bit budget, not both")
    hr = np.asarray(hr, dtype=np.float32)
    per, segs = content.analyse(hr, cut)
    names = [f"{s.start:04d}-{s.stop - 1:04d}" for s in segs]
    segments = {n: hr[s.start:s.stop] for n, s in zip(names, segs)}
    table = op.evaluate(segments, receiver, candidates, regime, (key,), seed, options, progress=progress)
    if budget_bits is not None:
        picks, lam = op.meet_budget(table, budget_bits, key)
    else:
        picks = op.choose(table, float(lam), key)
    t, h, w, _ = hr.shape
    lr = np.zeros((t, h // link.SCALE, w // link.SCALE, 3), np.float32)
    edges = np.zeros((t, h, w), np.float32)
    present = np.zeros(t, bool)
    decoded = np.zeros_like(lr)     # the base layer as decoded, before the channel: what the sender signs
    by_label = {c.label: c for c in candidates}
    out = []
    for n, s in zip(names, segs):
        row = table[n][picks[n]]
        c = by_label[row["candidate"]]
        frames = hr[s.start:s.stop]
        base = link.send_base(frames, c.quality, regime, seed)
        lr[s.start:s.stop] = base.received
        decoded[s.start:s.stop] = jpeg_decode(base.stream)
        maps, _, _ = send(c.option, frames)
        if maps and "edges" in maps:
            edges[s.start:s.stop] = maps["edges"]
            present[s.start:s.stop] = True
        out.append(dict(start=s.start, stop=s.stop, bucket=s.label, choice=c.label,
                        bits=row["bits"] + op.SIGNAL_BITS, psnr=row[key]))
    total = sum(s["bits"] for s in out)
    signature = gate.sign(decoded, edges)
    # the rows counted it from the maps alone; the stream must be what they counted
    assert signature.nbytes == gate.signature_nbytes(edges), (signature.nbytes, gate.signature_nbytes(edges))
    return Plan(lr, edges, present, int(total), out, table, float(lam), op.fixed_curves(table, key),
                op.sweep(table, key), signature)


def receive_present(receiver, lr: np.ndarray, edges: Optional[np.ndarray], present: Optional[np.ndarray],
                    options: RunOptions = RunOptions(), progress=None) -> np.ndarray:
    """Run ``receiver`` with edges on the frames marked ``present`` and pixel-only on the rest.

    lr ``[T,h,w,3]``; edges ``[T,H,W]``; present ``[T]`` bool (None: all). A receiver that works frame
    by frame (``per_frame`` True) runs the two groups separately, which is exact; any other one runs the whole clip pixel-only unless every frame carries metadata (its frames depend on
    each other, so a mixed run has no pixel-only meaning)."""
    lr = np.asarray(lr, dtype=np.float32)
    if edges is None or (present is not None and not np.any(present)):
        return link.receive(receiver, lr, None, options, progress)
    present = np.ones(len(lr), bool) if present is None else np.asarray(present, bool)
    if present.shape != (len(lr),):
        raise ValueError(f"present: one flag per frame ({len(lr)}), got shape {present.shape}")
    if present.all():
        return link.receive(receiver, lr, {"edges": edges}, options, progress)
    if not getattr(receiver, "per_frame", False):
        return link.receive(receiver, lr, None, options, progress)
    out = None
    for flag in (True, False):
        idx = np.flatnonzero(present == flag)
        sr = link.receive(receiver, lr[idx], {"edges": np.asarray(edges)[idx]} if flag else None, options, progress)
        if out is None:
            out = np.zeros((len(lr),) + sr.shape[1:], np.float32)
        out[idx] = sr
    return out
