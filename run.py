"""MetaVSR main job: what transmitted metadata buys at the same total bitrate (MetaSR Sec. 4.3).

    python run.py --out out                 # the six scikit-image sample images (10-15 minutes on 2 CPU cores)
    python run.py --quick --out out         # two 256x256 crops, fewer operating points (about 2 minutes)
    python run.py --input photo.png --out out
    python run.py --experiment orchestrate --out out_orch   # per-segment metadata choice vs fixed choices
    python run.py --experiment video --out out_video        # per-frame vs streaming receiver on clips


For the NN, LN and HN channels it sweeps JPEG quality and edge rate, super-resolves every received
base layer with the embedded receiver with and without the JBIG2-coded Canny edges, counts the
total bits from the real bytes, measures PSNR / SSIM / LPIPS and writes
``OUT/report.json`` (every operating point, BD-rate / BD-PSNR of with-edges against pixel-only),
``OUT/rd.png`` (rate-distortion curves) and ``OUT/side_by_side.png``.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)
from _pack import load_pack  # noqa: E402


def _progress(t0: float):
    """A ``progress(done, total, message)`` that prints a line at most every 2 s (and the last one)."""
    last = [0.0]

    def progress(done, total, msg):
        now = time.time()
        if now - last[0] >= 2.0 or done == total:
            last[0] = now
            el = now - t0
            eta = el / done * (total - done)
            print(f"[{done:5d}/{total}] {100 * done / total:5.1f} %  {el:6.0f} s elapsed, ~{eta:4.0f} s left  {msg}",
                  flush=True)
    return progress


def _finish(report: dict, out: str, plot, summary_lines, t0: float, extra: str = "") -> dict:
    """Plot ``rd.png``, add the summary, write ``report.json`` atomically and print the summary."""
    from metavsr.models import atomic
    rd_path = os.path.join(out, "rd.png")
    plot(report, rd_path)
    report["summary"] = summary_lines(report)
    atomic.write_json(os.path.join(out, "report.json"), report, indent=1)
    print("\nSummary:")
    for line in report["summary"]:
        print("  " + line)
    print(f"wrote {os.path.join(out, 'report.json')}, {rd_path}{extra} in {time.time() - t0:.0f} s")
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", nargs="+", metavar="PATH", help="image file(s) to use instead of the bundled set")
    ap.add_argument("--out", default="out", help="output folder (default: out)")
    ap.add_argument("--quick", action="store_true", help="two 256x256 crops, 3 qualities x 2 edge rates (about 2 minutes)")
    ap.add_argument("--regimes", nargs="+", default=None, choices=["NN", "LN", "HN"],
                    help="channel regimes (default: all three; video: NN and HN)")
    ap.add_argument("--qualities", nargs="+", type=int, help="JPEG qualities of the sweep")
    ap.add_argument("--max-side", type=int, default=0, help="centre-crop inputs to at most this size (0: whole image)")
    ap.add_argument("--no-lpips", action="store_true", help="skip LPIPS (faster)")
    ap.add_argument("--weights", help="receiver weights (default: the embedded model shipped in models/receivers/tiny/weights)")
    ap.add_argument("--seed", type=int, default=0, help="channel noise seed")
    ap.add_argument("--experiment", choices=["metasr", "orchestrate", "video"], default="metasr",
                    help="metasr: edges vs pixel-only at matched rate (default); orchestrate: the orchestrated "
                         "sender (per-segment quality x metadata, J = D + lambda R) against every fixed choice "
                         "on a mixed set, and the predictive gain table; video: the per-frame and the streaming "
                         "embedded receivers on short clips (RD, tOF, E_warp, tLP)")
    ap.add_argument("--stream-weights", help="video: streaming receiver weights (default: the shipped "
                    "models/receivers/tiny_stream/weights/tiny_stream_x4.safetensors)")
    ap.add_argument("--workers", type=int, default=1, help="orchestrate: base-layer qualities run in this many threads")
    args = ap.parse_args(argv)

    if args.max_side < 0:
        ap.error(f"--max-side must be 0 (whole image) or a size in pixels, got {args.max_side}")
    load_pack("metavsr")
    import torch
    from metavsr.models import atomic, images as im, report as rep
    from metavsr.models import experiment as ex
    from metavsr.models.receivers.tiny.receiver import load_embedded

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:  # find an unusable --out now, not after the sweep
        atomic.check_writable(args.out)
    except ValueError as e:
        ap.error(f"--out: {e}")
    if args.experiment == "orchestrate":
        args.regimes = args.regimes or ["NN", "LN", "HN"]
        return orchestrate(args, ap)
    if args.experiment == "video":
        args.regimes = args.regimes or ["NN", "HN"]
        return video(args, ap)
    args.regimes = args.regimes or ["NN", "LN", "HN"]
    if args.input:
        images = {}
        try:
            for name, p in zip(im.unique_names(args.input), args.input):
                images[name] = im.load_image(p, max_side=args.max_side)
        except ValueError as e:
            ap.error(f"--input: {e}")
    else:
        names = ("astronaut", "camera") if args.quick else im.EVAL_IMAGES
        images = im.eval_images(names, max_side=args.max_side or (256 if args.quick else 0))
    qualities = args.qualities or (ex.QUICK_QUALITIES if args.quick else ex.QUALITIES)
    settings = ex.QUICK_EDGE_SETTINGS if args.quick else ex.EDGE_SETTINGS
    metrics = ("psnr", "ssim") if args.no_lpips else ("psnr", "ssim", "lpips")
    if any(not 1 <= q <= 100 for q in qualities):
        ap.error(f"--qualities: JPEG qualities are 1..100, got {list(qualities)}")
    try:
        model = load_embedded(args.weights)
    except (OSError, ValueError) as e:
        ap.error(f"--weights: {e}")
    keep = next(iter(images))
    print(f"MetaVSR main job: {len(images)} image(s) ({', '.join(f'{n} {i.shape[1]}x{i.shape[0]}' for n, i in images.items())}), "
          f"regimes {' '.join(args.regimes)}, JPEG q {list(qualities)}, edge settings "
          f"{[s.label for s in settings]}, receiver '{model.name}'", flush=True)

    t0 = time.time()
    progress = _progress(t0)
    report = ex.run_experiment(images, model, regimes=args.regimes, qualities=qualities, edge_settings=settings,
                               metrics=metrics, seed=args.seed, progress=progress, keep_image=keep)
    rd_path = os.path.join(args.out, "rd.png")
    sbs_path = os.path.join(args.out, "side_by_side.png")
    ex.plot_rd(report, rd_path)
    regime = "HN" if "HN" in args.regimes else args.regimes[-1]
    report["side_by_side"] = rep.side_by_side(report, images[keep], sbs_path, regime=regime)
    report["summary"] = rep.summary_lines(report)
    # written last and atomically: a failure anywhere leaves the previous report whole
    atomic.write_json(os.path.join(args.out, "report.json"), rep.jsonable(report), indent=1)
    print("\nSummary (BD deltas of the with-edges hull against the pixel-only hull, same receiver):")
    for line in report["summary"]:
        print("  " + line)
    sb = report["side_by_side"]
    print(f"  side by side ({sb['image']}, {sb['regime']}): pixel-only {sb['pixel_only_psnr']:.2f} dB at "
          f"{sb['pixel_only_bits']} bits vs with edges {sb['with_edges_psnr']:.2f} dB at {sb['with_edges_bits']} bits")
    print(f"wrote {os.path.join(args.out, 'report.json')}, {rd_path}, {sbs_path} in {time.time() - t0:.0f} s")
    return report


def orchestrate(args, ap):
    """``--experiment orchestrate``: report.json, rd.png and gain_table.json in --out; candidate runs
    are cached in --out/orchestrate_cache.json, so a second run (or one after an interruption)
    resumes instead of starting again."""
    from concurrent.futures import ThreadPoolExecutor
    from metavsr.models.orchestrator import mixed_set, operational, predictive, study
    from metavsr.models.orchestrator.candidates import DEFAULT_OPTIONS, Option
    from metavsr.models.receivers.tiny.receiver import load_embedded

    if args.input:
        ap.error("--input: the orchestrate experiment runs on its own mixed set")
    if args.workers < 1:
        ap.error(f"--workers must be at least 1, got {args.workers}")
    try:
        model = load_embedded(args.weights)
    except (OSError, ValueError) as e:
        ap.error(f"--weights: {e}")
    segments, categories = mixed_set.mixed_set(128 if args.quick else 192, 3 if args.quick else 4, quick=args.quick)
    qualities = args.qualities or ((15, 40, 80) if args.quick else (10, 20, 30, 45, 60, 80))
    if any(not 1 <= q <= 100 for q in qualities):
        ap.error(f"--qualities: JPEG qualities are 1..100, got {list(qualities)}")
    options = (Option(), Option("edges", 0.02, True, 2), Option("edges", 0.08, True, 1)) if args.quick else DEFAULT_OPTIONS
    metrics = ("psnr", "ssim")
    print(f"MetaVSR orchestrate: {len(segments)} segments ({', '.join(sorted(set(categories.values())))}), "
          f"regimes {' '.join(args.regimes)}, JPEG q {list(qualities)}, options {[o.label for o in options]}, "
          f"receiver '{model.name}'", flush=True)
    t0 = time.time()
    progress = _progress(t0)
    cache = operational.Cache(os.path.join(args.out, "orchestrate_cache.json"))
    pool = ThreadPoolExecutor(args.workers) if args.workers > 1 else None
    try:
        report = study.run_orchestrate(segments, categories, model, regimes=args.regimes, qualities=qualities,
                                       options=options, metrics=metrics, seed=args.seed, cache=cache,
                                       executor=pool, progress=progress)
    finally:
        if pool is not None:
            pool.shutdown()
    predictive.save(report["gain_table"], os.path.join(args.out, "gain_table.json"))
    return _finish(report, args.out, study.plot, study.summary_lines, t0, ", gain_table.json")


def video(args, ap):
    """``--experiment video``: report.json and rd.png in --out."""
    from metavsr.models import video_experiment as vx
    from metavsr.models.receivers.tiny.receiver import load_embedded
    from metavsr.models.receivers.tiny_stream.receiver import load_stream

    if args.input:
        ap.error("--input: the video experiment runs on its own clips")
    try:
        receivers = {"per-frame": load_embedded(args.weights)}
    except (OSError, ValueError) as e:
        ap.error(f"--weights: {e}")
    try:
        receivers["streaming"] = load_stream(args.stream_weights)
    except (OSError, ValueError) as e:
        ap.error(f"--stream-weights: {e}")
    qualities = args.qualities or (vx.QUICK_QUALITIES if args.quick else vx.QUALITIES)
    if any(not 1 <= q <= 100 for q in qualities):
        ap.error(f"--qualities: JPEG qualities are 1..100, got {list(qualities)}")
    clips = vx.clip_set(args.quick)
    print(f"MetaVSR video: {len(clips)} clips ({', '.join(f'{n} {f.shape[0]}x{f.shape[2]}x{f.shape[1]}' for n, f in clips.items())}), "
          f"regimes {' '.join(args.regimes)}, JPEG q {list(qualities)}, receivers {list(receivers)}", flush=True)
    t0 = time.time()
    progress = _progress(t0)
    report = vx.run_video(clips, receivers, args.regimes, qualities, with_tlp=not args.no_lpips, seed=args.seed,
                          progress=progress)
    return _finish(report, args.out, vx.plot, vx.summary_lines, t0)


if __name__ == "__main__":
    main()
