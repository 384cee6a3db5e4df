"""Writes workflows/compare_conditioning.json (run from the repo root:
python tools/make_compare_conditioning.py).

Two sender settings for the same HR image (area vs CaDM patch-wise downscaling, same JPEG base layer),
shown in a comparison grid with a zoomed crop, an A/B split view and metric tables; below, one queue
run sweeps the JPEG quality for both settings (ComfyUI list execution) and draws the RD curves with
the BD-rate of patch-wise against area. Once a weight-free receiver exists, A/B becomes the same
receiver with and without metadata.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _pack import load_pack  # noqa: E402
from tools import comfy_core  # noqa: E402
from tools.wfbuild import Workflow  # noqa: E402

pack = load_pack()
CLASSES = {**comfy_core.NODE_CLASS_MAPPINGS, **pack.NODE_CLASS_MAPPINGS}
SETTINGS = (("A", "area", "A: area x4 + JPEG q40"), ("B", "patchwise", "B: patch-wise x4 + JPEG q40"))


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", pos=(0, 0), size=(300, 360), title="HR image")
    edges = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="thresholds", low=100, high=200, pos=(0, 400))
    overlay = wf.node("MetaVSREdgeOverlay", images=hr[0], mask=edges[0], color="#ff2020", opacity=1.0, pos=(0, 680))

    # --- one operating point per setting -------------------------------------------------------
    sr, y = {}, 0
    for key, method, label in SETTINGS:
        down = wf.node("MetaVSRDownscale", images=hr[0], method=method, factor=4, pos=(340, y),
                       title=f"{key}: {method} x4")
        jpg = wf.node("MetaVSRJPEG", images=down[0], quality=40, subsampling="4:2:0", pos=(340, y + 200),
                      title=f"{key}: JPEG q40")
        up = wf.node("MetaVSRUpscale", images=jpg[0], method="bicubic", factor=4, pos=(700, y),
                     title=f"{key}: bicubic x4 (receiver stand-in)")
        rate = wf.node("MetaVSRBitrate", bitstream_1=jpg[1], reference=hr[0], pos=(700, y + 140))
        met = wf.node("MetaVSRMetrics", images=up[0], reference=hr[0], color_space="RGB", crop_border=4,
                      lpips_net="alex", dists=False, label=label, pos=(1040, y))
        wf.node("PreviewAny", source=rate[0], pos=(1040, y + 270), size=(520, 150), title=f"{key}: bitrate")
        wf.node("PreviewAny", source=met[4], pos=(1380, y), size=(480, 250), title=f"{key}: metrics")
        sr[key] = (up, met)
        y += 460

    grid = wf.node("MetaVSRComparisonGrid", images_1=hr[0], images_2=sr["A"][0][0], images_3=sr["B"][0][0],
                   images_4=overlay[0], captions="HR\n" + "\n".join(s[2] for s in SETTINGS) + "\nCanny metadata",
                   columns=4, resize="nearest", zoom_size=0.3, zoom_x=0.47, zoom_y=0.3, font_size=16,
                   pos=(1900, 0), size=(340, 420))
    wf.node("PreviewImage", images=grid[0], pos=(2260, 0), size=(720, 420), title="Comparison grid")
    ab = wf.node("MetaVSRABCompare", image_a=sr["A"][0][0], image_b=sr["B"][0][0], split=0.5,
                 label_a="A: area", label_b="B: patch-wise", pos=(1900, 460), size=(340, 300))
    wf.node("PreviewImage", images=ab[0], pos=(2260, 460), size=(420, 420), title="A/B split view")

    # --- RD sweep: one queue run, list execution ------------------------------------------------
    y0 = 960
    sweep = wf.node("MetaVSRSweepValues", values="10, 25, 40, 60, 80, 95", pos=(0, y0), title="JPEG qualities")
    pts = {}
    for i, (key, method, _) in enumerate(SETTINGS):
        yy = y0 + i * 320
        down = wf.node("MetaVSRDownscale", images=hr[0], method=method, factor=4, pos=(340, yy),
                       title=f"sweep {key}: {method} x4")
        jpg = wf.node("MetaVSRJPEG", images=down[0], quality=sweep[0], subsampling="4:2:0", pos=(700, yy),
                      title=f"sweep {key}: JPEG")
        up = wf.node("MetaVSRUpscale", images=jpg[0], method="bicubic", factor=4, pos=(1040, yy))
        rate = wf.node("MetaVSRBitrate", bitstream_1=jpg[1], reference=hr[0], pos=(1040, yy + 140))
        met = wf.node("MetaVSRMetrics", images=up[0], reference=hr[0], color_space="RGB", crop_border=4,
                      lpips_net="off", dists=False, label=f"sweep {key}", pos=(1380, yy))
        pts[key] = (rate["total_bpp"], met["psnr"])
    rd = wf.node("MetaVSRRDCurve", rate_1=pts["A"][0], quality_1=pts["A"][1], name_1="area x4 + JPEG",
                 rate_2=pts["B"][0], quality_2=pts["B"][1], name_2="patch-wise x4 + JPEG", anchor=1,
                 rate_label="bits per HR pixel", quality_label="PSNR (dB)", show_hull=False,
                 pos=(1900, y0), size=(340, 520))
    wf.node("PreviewImage", images=rd[0], pos=(2260, y0), size=(720, 500), title="RD curves")
    wf.node("PreviewAny", source=rd[1], pos=(2260, y0 + 520), size=(720, 260), title="BD-rate table")
    return wf


if __name__ == "__main__":
    build().save(os.path.join(ROOT, "workflows", "compare_conditioning.json"))
