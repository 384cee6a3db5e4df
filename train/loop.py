"""The optimisation loop both embedded-receiver trainers share (train_tiny.py, train_tiny_stream.py).

The learning rate follows a cosine from ``lr`` down to ``floor * lr`` over whichever budget ends
first, ``iters`` iterations or ``minutes`` of wall clock (a time-boxed run on a GPU and a fixed run on a
CPU are the same script), after a linear warm-up of ``warmup`` iterations. Logged values are smoothed
(exponential, 0.98); a checkpoint is written every ``ckpt_every`` iterations.

    it, smoothed, minutes = optimise(opt, batches, step, lr=5e-4, iters=40000, ...)
    step(batch) -> (loss tensor, {"name": float, ...})     # what to log, in order
"""
import math
import time
from typing import Callable, Dict, Iterable, Optional, Tuple


def learning_rate(base: float, frac: float, it: int, floor: float, warmup: int) -> float:
    """Cosine from ``base`` at ``frac`` 0 to ``floor * base`` at 1, times the warm-up ramp."""
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))) * min(1.0, (it + 1) / warmup)


def optimise(opt, batches: Iterable, step: Callable, *, lr: float, iters: int, minutes: float = 0,
             floor: float = 0.02, warmup: int = 300, log_every: int = 500, ckpt_every: int = 0,
             checkpoint: Optional[Callable[[int], None]] = None, rate_digits: int = 1
             ) -> Tuple[int, Dict[str, float], float]:
    """Run ``step`` on ``batches`` until a budget ends -> (iterations, smoothed logged values, minutes)."""
    t0, it, ema = time.time(), 0, None
    budget = minutes * 60 if minutes else math.inf
    for batch in batches:
        frac = max(it / iters, (time.time() - t0) / budget)
        if frac >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = learning_rate(lr, frac, it, floor, warmup)
        loss, logged = step(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        it += 1
        ema = dict(logged) if ema is None else {k: 0.98 * ema[k] + 0.02 * v for k, v in logged.items()}
        if it % log_every == 0 or it == 1:
            el = time.time() - t0
            values = "  ".join(f"{k} {v:.4f}" for k, v in ema.items())
            print(f"it {it:6d}  {values}  {it / el:.{rate_digits}f} it/s  {el / 60:.1f} min", flush=True)
        if checkpoint is not None and ckpt_every and it % ckpt_every == 0:
            checkpoint(it)
    return it, ema or {}, (time.time() - t0) / 60
