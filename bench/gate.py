"""Verification gate (models/orchestrator/gate.py): how often it accepts true edge maps and rejects
corrupted ones, on crops of scikit-image's images.

    python bench/gate.py [--crops 40] [--size 128] [--density 0.04]

Per crop: HR -> x4 antialiased bicubic LR; the sender's Canny edges at the given density (true); the
same map moved by 2, 3, 4 or 6 px in one of 8 directions (shift); random pixels at the same density
(random); the edges of a crop 6-15 px away, as a moving camera's other frame would give (other).
Those damage the map. Two more damage the LR side, the true map arriving with the wrong LR: the LR of
the crop moved by 2 px (half an LR pixel; LR moved) and the LR of the other frame (LR other).
Image sets: photo crops the level test was set on and held-out ones; rendered text pages and flat
cartoons (models/orchestrator/mixed_set.py, every third a cartoon; the other frame is another
render) the z test was set on (seed 5) and held-out ones (seed 11). Prints acceptance rates.

--signed: the sender's signature check instead (gate.sign). The LR is a JPEG base layer (quality 75)
that the sender decodes with libjpeg-turbo and signs, and the receiver decodes with FFmpeg's decoder
(PyAV), a different decoder; the corrupted maps (and LRs) are checked against the true signature.
Also how often the LN / HN channel's LR is recognised as altered.

--channel LN|HN: the received LR goes through that channel (noise, blur) as well; signed, it is then
recognised as altered, the map's CRC decides and the LR side is only checked for another scene.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TUNING = ("astronaut", "camera", "coffee")
HELD_OUT = ("chelsea", "rocket", "coins", "immunohistochemistry", "hubble_deep_field", "clock")
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))
KINDS = ("true", "shift", "random", "other", "lr_moved", "lr_other")


def rgb(x: np.ndarray) -> np.ndarray:
    x = x if x.ndim == 3 else np.stack([x] * 3, -1)
    return x[..., :3].astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)


def cases(names, crops: int, size: int, density: float, seed: int = 0, thresholds=None):
    """{kind: [(lr [1,h,w,3], edges [1,H,W], detail, hr [1,H,W,3])]} over ``crops`` random crops of each image."""
    import skimage.data
    from metavsr.models.codec.resize import downscale
    from metavsr.models.metadata.canny import canny_edges, canny_for_density

    def edges(frames):
        return canny_edges(frames, *thresholds) if thresholds else canny_for_density(frames, density)[0]
    rng = np.random.default_rng(seed)
    out = {k: [] for k in KINDS}
    for name in names:
        img = rgb(getattr(skimage.data, name)())
        h, w = img.shape[:2]
        for _ in range(crops):
            y, x = int(rng.integers(16, h - size - 16)), int(rng.integers(16, w - size - 16))
            hr = img[y:y + size, x:x + size][None]
            lr = downscale(hr, 4, "bicubic")
            e = edges(hr)
            out["true"].append((lr, e, name, hr))
            d = int(rng.choice([2, 3, 4, 6]))
            ux, uy = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
            out["shift"].append((lr, np.roll(e, (uy * d, ux * d), axis=(1, 2)), d, hr))
            out["random"].append((lr, (rng.random(e.shape) < e.mean()).astype(np.uint8), name, hr))
            oy, ox = (rng.integers(6, 16, size=2) * rng.choice([-1, 1], 2)).tolist()
            yy, xx = int(np.clip(y + oy, 0, h - size)), int(np.clip(x + ox, 0, w - size))
            hr_o = img[yy:yy + size, xx:xx + size][None]
            out["other"].append((lr, edges(hr_o), name, hr))
            ux, uy = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
            hr_m = img[y + 2 * uy:y + 2 * uy + size, x + 2 * ux:x + 2 * ux + size][None]
            out["lr_moved"].append((downscale(hr_m, 4, "bicubic"), e, 2, hr_m))
            out["lr_other"].append((downscale(hr_o, 4, "bicubic"), e, name, hr_o))
    return out


def render_cases(n: int, size: int, density: float, seed: int):
    """Like :func:`cases` on ``n`` rendered pages (random font, size 9-19 px, ink and paper) and
    cartoons; "other" is the map of another render."""
    from metavsr.models.codec.resize import downscale
    from metavsr.models.metadata.canny import canny_for_density
    from metavsr.models.orchestrator import mixed_set as ms
    rng = np.random.default_rng(seed)
    fonts = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf")
    imgs = [ms.cartoon(size, 100 + i) if i % 3 == 2 else
            ms.text_page(size, fonts[i % 3], int(rng.integers(9, 20)), tuple(int(v) for v in rng.integers(0, 80, 3)),
                         tuple(int(v) for v in rng.integers(170, 256, 3)), i) for i in range(n)]
    out = {k: [] for k in KINDS}
    for i, img in enumerate(imgs):
        hr = img[None]
        lr = downscale(hr, 4, "bicubic")
        e = canny_for_density(hr, density)[0]
        out["true"].append((lr, e, i, hr))
        d = int(rng.choice([2, 3, 4, 6]))
        ux, uy = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
        out["shift"].append((lr, np.roll(e, (uy * d, ux * d), axis=(1, 2)), d, hr))
        out["random"].append((lr, (rng.random(e.shape) < e.mean()).astype(np.uint8), i, hr))
        out["other"].append((lr, canny_for_density(imgs[(i + 3) % n][None], density)[0], i, hr))
        ux, uy = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
        hr_m = np.roll(hr, (2 * uy, 2 * ux), axis=(1, 2))
        out["lr_moved"].append((downscale(hr_m, 4, "bicubic"), e, 2, hr_m))
        hr_o = imgs[(i + 3) % n][None]
        out["lr_other"].append((downscale(hr_o, 4, "bicubic"), e, i, hr_o))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=int, default=40)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--density", type=float, default=0.04, help="Canny at this edge density per crop")
    ap.add_argument("--thresholds", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                    help="fixed Canny thresholds instead (MetaSR's setting, e.g. 100 200)")
    ap.add_argument("--signed", action="store_true", help="the signed check (JPEG base layer, another decoder "
                    "at the receiver) instead of the blind tests")
    ap.add_argument("--channel", choices=("NN", "LN", "HN"), default="NN", help="channel on the received LR")
    ap.add_argument("--damage", action="store_true", help="also run the shipped receiver: what corrupted maps "
                    "cost with the gate on and off")
    a = ap.parse_args()
    from _pack import load_pack
    load_pack()
    from metavsr.models.orchestrator import gate
    what = f"Canny {a.thresholds[0]:g}/{a.thresholds[1]:g}" if a.thresholds else f"edge density {a.density}"
    print(f"gate: (level >= {gate.MIN_LEVEL} and peak >= {gate.MIN_PEAK}) or (z >= {gate.MIN_Z} and peak >= "
          f"{gate.MIN_Z_PEAK}); {a.crops} crops of {a.size} px per image, {what}")
    print(f"{'set':>16} | {'true accepted':>13} | {'shift rejected':>14} | {'random rejected':>15} | {'other rejected':>14}"
          f" | {'LR moved rej.':>13} | {'LR other rej.':>13} | shift rejected by px")
    sets = (("tuning", lambda: cases(TUNING, a.crops, a.size, a.density, thresholds=a.thresholds)),
            ("held-out", lambda: cases(HELD_OUT, a.crops, a.size, a.density, thresholds=a.thresholds)),
            ("renders", lambda: render_cases(45, a.size, a.density, 5)),
            ("renders held-out", lambda: render_cases(60, a.size, a.density, 11)))
    damage = []
    if a.signed:
        print("signed: JPEG q75 base layer, signed on libjpeg-turbo's decode, checked on FFmpeg's; "
              f"max deviation {gate.MAX_DEVIATION}; altered = share of LN / HN channel LRs recognised as the channel's "
              "(then the CRC decides)")
    for label, make in sets:
        c = make()
        if a.channel != "NN" and not a.signed:
            c = _through(c, a.channel)
        if a.signed:
            c, acc, altered = _signed(c, a.channel)
        else:
            acc = {k: np.array([gate.check_edges(lr, e).accepted[0] for lr, e, *_ in v]) for k, v in c.items()}
        by = {d: 1 - acc["shift"][[i for i, (_, _, dd, _) in enumerate(c["shift"]) if dd == d]].mean()
              for d in (2, 3, 4, 6)}
        print(f"{label:>16} | {acc['true'].mean():13.3f} | {1 - acc['shift'].mean():14.3f} | "
              f"{1 - acc['random'].mean():15.3f} | {1 - acc['other'].mean():14.3f} | "
              f"{1 - acc['lr_moved'].mean():13.3f} | {1 - acc['lr_other'].mean():13.3f} | "
              + "  ".join(f"{d}: {v:.2f}" for d, v in by.items())
              + (f" | altered LN {altered['LN']:.3f}, HN {altered['HN']:.3f}" if a.signed else ""), flush=True)
        if a.damage:
            damage.append((label, c, acc))
    if a.damage:
        _damage(damage)


def _ffmpeg_decode(stream) -> np.ndarray:
    import av
    return np.stack([av.CodecContext.create("mjpeg", "r").decode(av.Packet(p))[0].to_ndarray(format="rgb24")
                     for p in stream.payload]).astype(np.float32) / 255


def _through(c, channel):
    """Cases with every LR through ``channel`` (seeded per case)."""
    from metavsr.models.codec.degrade import REGIMES, channel_degrade
    return {k: [(channel_degrade(lr, *REGIMES[channel], seed=i), *rest) for i, (lr, *rest) in enumerate(v)]
            for k, v in c.items()}


def _signed(c, channel="NN"):
    """Cases with the LR replaced by the receiver's decode of a JPEG base layer (through ``channel``),
    the signed gate's decisions per kind, and the share of channel-degraded LRs recognised as altered.
    The sender signs the clean decode (it cannot know the channel)."""
    from metavsr.models.codec.degrade import REGIMES, channel_degrade
    from metavsr.models.codec.jpeg import jpeg_decode, jpeg_encode
    from metavsr.models.orchestrator import gate
    out, acc, altered = {k: [] for k in c}, {k: [] for k in c}, {"LN": [], "HN": []}

    def receive(lr, i):
        x = _ffmpeg_decode(jpeg_encode(lr, 75))
        return channel_degrade(x, *REGIMES[channel], seed=i) if channel != "NN" else x
    for i, (lr, e_true, *_rest) in enumerate(c["true"]):
        stream = jpeg_encode(lr, 75)
        sent = jpeg_decode(stream)
        sig = gate.sign(sent, e_true)
        received = receive(lr, i)
        for k in c:
            lr_k, e, tag, hr = c[k][i]
            rx = receive(lr_k, i) if k.startswith("lr_") else received
            out[k].append((rx, e, tag, hr))
            acc[k].append(gate.check_edges(rx, e, signature=sig).accepted[0])
        for reg in altered:
            noisy = channel_degrade(sent, *REGIMES[reg], seed=i)
            altered[reg].append(gate.check_edges(noisy, e_true, signature=sig).check(0) == "signature, LR altered")
    return out, {k: np.array(v) for k, v in acc.items()}, {k: float(np.mean(v)) for k, v in altered.items()}


def _damage(sets, limits=(1.0, 1.05)):
    """With the shipped receiver: PSNR of the run with each corrupted map minus the pixel-only run,
    with the gate (rejected maps run pixel-only: 0) and without, for the first stage alone and with
    the second stage at each of ``limits``; and the mean gain of true maps each keeps."""
    from metavsr.models import link
    from metavsr.models.orchestrator import gate
    from metavsr.models.receivers.tiny.receiver import load_embedded
    model = load_embedded()
    print("\nreceiver: shipped embedded x4; dB = PSNR(with the map) - PSNR(pixel-only), same LR; worst = the most "
          "a corrupted map costs, kept = the mean gain of true maps, acc = true / corrupted maps accepted; "
          "LR side = the true map with the wrong LR, first stage")
    head = f"{'set':>16} | {'gate off: worst':>15} | {'1st stage: worst, kept':>24} | {'LR side: off, on':>18}"
    for lim in limits:
        head += f" | {f'2 stages <= {lim:g}: worst, kept, acc':>38}"
    print(head)
    for label, c, acc in sets:
        rows, lr_side = [], []   # (is true, first stage ok, dB, inconsistency); (ok, dB)
        for kind, v in c.items():
            for (lr, e, _, hr), ok in zip(v, acc[kind]):
                s0 = link.receive(model, lr)
                s1 = link.receive(model, lr, {"edges": e.astype(np.float32)})
                d = link.measure(s1, hr, ("psnr",))["psnr"] - link.measure(s0, hr, ("psnr",))["psnr"]
                if kind.startswith("lr_"):
                    lr_side.append((bool(ok), d))
                    continue
                rows.append((kind == "true", bool(ok), d, float(gate.inconsistency(lr, s1, s0)[0])))
        true = [r for r in rows if r[0]]
        bad = [r for r in rows if not r[0]]
        full = np.mean([r[2] for r in true])

        def stats(keep):
            worst = min([r[2] if keep(r) else 0.0 for r in bad] + [0.0])
            kept = np.mean([r[2] if keep(r) else 0.0 for r in true])
            return worst, kept, np.mean([keep(r) for r in true]), np.mean([keep(r) for r in bad])
        w1, k1, _, _ = stats(lambda r: r[1])
        line = f"{label:>16} | {min(r[2] for r in bad):+12.3f} dB | {w1:+7.3f} dB, {k1:+.3f} of {full:+.3f}"
        line += f" | {min(d for _, d in lr_side):+6.3f}, {min([d for ok, d in lr_side if ok] + [0.0]):+6.3f} dB"
        for lim in limits:
            w, k, at, ab = stats(lambda r, lim=lim: r[1] and r[3] <= lim)
            line += f" | {w:+7.3f} dB, {k:+.3f} of {full:+.3f}, {at:.2f} / {ab:.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
