"""Writes workflows/compare_conditioning.json (run from the repo root:
python tools/make_compare_conditioning.py).

The same decoded LR (bicubic x4 + JPEG q40) through the embedded receiver with and without the
transmitted edge metadata (Canny, thinned, JBIG2 at 1/2 resolution), beside bicubic: a comparison
grid with a zoomed crop and the edge overlay, an A/B split view, metric and bitrate tables. Below, one
queue run sweeps the JPEG quality (ComfyUI list execution) and draws the rate-distortion curves of
"pixel-only" (rate = JPEG) and "with edges" (rate = JPEG + JBIG2), in PSNR and in LPIPS, with the
BD-rate of the metadata-aware receiver against the pixel-only one.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import Workflow, pack_classes, save_workflow  # noqa: E402

CLASSES = pack_classes()
QUALITY = 40
SWEEP = "10, 20, 30, 45, 60, 80"


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", pos=(0, 0), size=(300, 360), title="HR image")
    down = wf.node("MetaVSRDownscale", images=hr[0], method="bicubic", factor=4, pos=(340, 0), title="x4 bicubic")
    jpg = wf.node("MetaVSRJPEG", images=down[0], quality=QUALITY, subsampling="4:2:0", pos=(340, 220),
                  title=f"JPEG q{QUALITY} base layer")
    canny = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="target density", target_density=0.04,
                    pos=(0, 400), title="Canny edges on the HR")
    enc = wf.node("MetaVSRJBIG2Encode", edges=canny[0], template="auto", thinning=True, resolution="1/2",
                  reduce_method="any", pos=(340, 440), title="JBIG2 (thinned, 1/2 resolution)")
    dec = wf.node("MetaVSRJBIG2Decode", bitstream=enc[0], original=canny[0], pos=(340, 820),
                  title="JBIG2 decode (receiver)")

    model = wf.node("MetaVSRLoadEmbeddedReceiver", weights="tiny_sr_x4.safetensors", device="auto",
                    tile_size=192, pos=(700, 0), title="Embedded receiver")
    sr_p = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=jpg[0], use_metadata=False,
                   pos=(700, 200), title="A: pixel-only")
    sr_e = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=jpg[0], use_metadata=True,
                   edges=dec[0], pos=(700, 440), title="B: with edges")
    bic = wf.node("MetaVSRUpscale", images=jpg[0], method="bicubic", factor=4, pos=(700, 680), title="bicubic")

    rate_p = wf.node("MetaVSRBitrate", bitstream_1=jpg[1], reference=hr[0], pos=(1040, 0), title="rate A (JPEG)")
    rate_e = wf.node("MetaVSRBitrate", bitstream_1=jpg[1], bitstream_2=enc[0], reference=hr[0], pos=(1040, 320),
                     title="rate B (JPEG + JBIG2)")
    wf.node("PreviewAny", source=rate_p[0], pos=(1380, 0), size=(520, 150), title="A: bits")
    wf.node("PreviewAny", source=rate_e[0], pos=(1380, 320), size=(520, 170), title="B: bits")
    y = 640
    for img, label in ((sr_p, f"A: pixel-only, q{QUALITY}"), (sr_e, f"B: with edges, q{QUALITY} + JBIG2"),
                       (bic, f"bicubic, q{QUALITY}")):
        met = wf.node("MetaVSRMetrics", images=img[0], reference=hr[0], color_space="RGB", crop_border=0,
                      lpips_net="alex", dists=False, label=label, pos=(1040, y))
        wf.node("PreviewAny", source=met[4], pos=(1380, y), size=(520, 200), title=f"metrics: {label}")
        y += 420

    overlay = wf.node("MetaVSREdgeOverlay", images=hr[0], mask=dec[0], color="#ff2020", opacity=1.0,
                      pos=(700, 880), title="decoded edges on the HR")
    grid = wf.node("MetaVSRComparisonGrid", images_1=hr[0], images_2=bic[0], images_3=sr_p[0], images_4=sr_e[0],
                   images_5=overlay[0],
                   captions=f"HR\nbicubic (q{QUALITY})\nA: pixel-only\nB: with edges\ntransmitted edges",
                   columns=5, resize="nearest", zoom_size=0.3, zoom_x=0.47, zoom_y=0.3, font_size=16,
                   pos=(1940, 0), size=(340, 440))
    wf.node("PreviewImage", images=grid[0], pos=(2300, 0), size=(900, 420), title="Comparison grid")
    ab = wf.node("MetaVSRABCompare", image_a=sr_p[0], image_b=sr_e[0], split=0.5, label_a="A: pixel-only",
                 label_b="B: with edges", pos=(1940, 480), size=(340, 300))
    wf.node("PreviewImage", images=ab[0], pos=(2300, 460), size=(460, 460), title="A/B split view")

    # --- RD sweep: one queue run over JPEG qualities (list execution) ----------------------------
    y0 = 1980
    sweep = wf.node("MetaVSRSweepValues", values=SWEEP, pos=(0, y0), title="JPEG qualities")
    s_jpg = wf.node("MetaVSRJPEG", images=down[0], quality=sweep[0], subsampling="4:2:0", pos=(340, y0),
                    title="sweep: JPEG")
    s_p = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=s_jpg[0], use_metadata=False,
                  pos=(700, y0), title="sweep A: pixel-only")
    s_e = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=s_jpg[0], use_metadata=True,
                  edges=dec[0], pos=(700, y0 + 240), title="sweep B: with edges")
    r_p = wf.node("MetaVSRBitrate", bitstream_1=s_jpg[1], reference=hr[0], pos=(1040, y0), title="sweep A: rate")
    r_e = wf.node("MetaVSRBitrate", bitstream_1=s_jpg[1], bitstream_2=enc[0], reference=hr[0], pos=(1040, y0 + 320),
                  title="sweep B: rate")
    m_p = wf.node("MetaVSRMetrics", images=s_p[0], reference=hr[0], color_space="RGB", crop_border=0,
                  lpips_net="alex", dists=False, label="sweep A", pos=(1380, y0))
    m_e = wf.node("MetaVSRMetrics", images=s_e[0], reference=hr[0], color_space="RGB", crop_border=0,
                  lpips_net="alex", dists=False, label="sweep B", pos=(1380, y0 + 420))
    for k, (metric, label, higher) in enumerate((("psnr", "PSNR (dB)", True), ("lpips", "LPIPS-Alex (lower is better)", False))):
        rd = wf.node("MetaVSRRDCurve", rate_1=r_p["total_bpp"], quality_1=m_p[metric], name_1="pixel-only",
                     rate_2=r_e["total_bpp"], quality_2=m_e[metric], name_2="with edges (JPEG + JBIG2)", anchor=1,
                     rate_label="bits per HR pixel", quality_label=label, higher_is_better=higher,
                     pos=(1940, y0 + k * 680), size=(340, 640), title=f"RD curve ({metric})")
        wf.node("PreviewImage", images=rd[0], pos=(2300, y0 + k * 680), size=(620, 440), title=f"RD: {metric}")
        wf.node("PreviewAny", source=rd[1], pos=(2940, y0 + k * 680), size=(560, 300), title=f"BD-rate ({metric})")
    _unstack(wf)
    return wf


def _unstack(wf, gap=50):
    """Push nodes of one column down until none overlaps the one above (title bar included)."""
    cols = {}
    for n in wf.nodes:
        cols.setdefault(n["pos"][0], []).append(n)
    for nodes in cols.values():
        nodes.sort(key=lambda n: n["pos"][1])
        for above, n in zip(nodes, nodes[1:]):
            n["pos"][1] = max(n["pos"][1], above["pos"][1] + above["size"][1] + gap)


if __name__ == "__main__":
    save_workflow(build(), "compare_conditioning.json")
