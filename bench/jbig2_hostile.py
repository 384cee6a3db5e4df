"""The JBIG2 decoder against hostile input: outcome counts, worst time and worst memory, as a table.

    python bench/jbig2_hostile.py [--mutations 20000] [--seed N] [--input-cap 1048576]

Mutates valid files (the pack's own maps: random, Canny-like, all-black, with far AT pixels; files
and PDF-embedded streams) with fresh seeds, plus every single-bit flip of a small file and the
crafted worst cases of tests/test_jbig2_hostile.py, and decodes each under ``Limits(max_input=cap)``
(memory cap 64 x cap, and for small inputs max(64 x length, 256 MiB)). Memory is what tracemalloc sees numpy allocate (the decoder's buffers);
time is wall time per decode, numba compiled before.
"""
import argparse
import os
import sys
import time
import tracemalloc

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from _pack import load_pack  # noqa: E402

load_pack("metavsr")
from metavsr.models.codec import jbig2  # noqa: E402
import test_jbig2_hostile as hostile  # noqa: E402  (the mutator and the crafted cases)


def seeds(rng):
    import cv2
    img = cv2.GaussianBlur(rng.random((270, 480)).astype(np.float32), (0, 0), 5)
    canny = (cv2.Canny((img / img.max() * 255).astype(np.uint8), 20, 40) > 0).astype(np.uint8)
    maps = [canny, (rng.random((64, 90)) < 0.1).astype(np.uint8), np.ones((30, 41), np.uint8), hostile.SMALL]
    out = []
    for i, m in enumerate(maps):
        out.append((jbig2.encode(m, auto=True), False))
        out.append((jbig2.encode(m, template=i % 4, tpgdon=True, embedded=True), True))
        out.append((jbig2.encode(m, template=0, at=((-128, -128), (127, -1), (-3, -1), (2, -2))), False))
    return out


def run(blob, embedded, limits):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        jbig2.decode_pages(blob, embedded=embedded, limits=limits)
        outcome = "decoded"
    except jbig2.JBIG2Error:
        outcome = "JBIG2Error"
    except Exception as e:  # noqa: BLE001 - the count that must stay zero
        outcome = f"other: {type(e).__name__}: {e}"
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, dt, peak


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mutations", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--input-cap", type=int, default=1 << 20)
    a = ap.parse_args()
    limits = jbig2.Limits(max_input=a.input_cap)
    rng = np.random.default_rng(a.seed)
    base = seeds(rng)
    jbig2.decode(base[0][0])  # compile
    groups = {"fresh mutations": [(hostile._mutate(*[base[k % len(base)][0]], rng), base[k % len(base)][1])
                                  for k in range(a.mutations)]}
    small = jbig2.encode(hostile.SMALL, template=0, tpgdon=True)
    flips = []
    for i in range(len(small) * 8):
        b = bytearray(small)
        b[i // 8] ^= 1 << (i % 8)
        flips.append((bytes(b), False))
    groups[f"single bit flips ({len(small)}-byte file)"] = flips
    groups["crafted worst cases"] = [(b, False) for b in hostile._worst_cases().values()]
    print(f"seed {a.seed}; input cap {a.input_cap} B -> memory cap {limits.memory / 2**20:.0f} MiB for the "
          f"largest input, {limits.memory_for(200) / 2**20:.0f} MiB for a 200-byte one (work cap: half in pixels)")
    print(f"{'inputs':<34}{'n':>7}{'decoded':>9}{'JBIG2Error':>11}{'other':>7}{'max s':>8}{'max MiB':>9}")
    others = []
    for name, cases in groups.items():
        counts = {"decoded": 0, "JBIG2Error": 0, "other": 0}
        worst_t = worst_m = 0.0
        for blob, embedded in cases:
            if len(blob) > a.input_cap:
                blob = blob[:a.input_cap]
            outcome, dt, peak = run(blob, embedded, limits)
            key = outcome if outcome in counts else "other"
            counts[key] += 1
            if key == "other":
                others.append(outcome)
            worst_t, worst_m = max(worst_t, dt), max(worst_m, peak / 2 ** 20)
        print(f"{name:<34}{len(cases):>7}{counts['decoded']:>9}{counts['JBIG2Error']:>11}{counts['other']:>7}"
              f"{worst_t:>8.2f}{worst_m:>9.1f}")
    for o in others[:10]:
        print("  ", o)


if __name__ == "__main__":
    main()
