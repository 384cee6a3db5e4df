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
from tools.wfbuild import Image, Text, Workflow, pack_classes, save_workflow  # noqa: E402
from tools.wfparts import measure_and_compare  # noqa: E402

CLASSES = pack_classes()
QUALITY = 40
SWEEP = "10, 20, 30, 45, 60, 80"


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", title="HR image")
    down = wf.node("MetaVSRDownscale", images=hr[0], method="bicubic", factor=4, title="x4 bicubic")
    jpg = wf.node("MetaVSRJPEG", images=down[0], quality=QUALITY, subsampling="4:2:0",
                  title=f"JPEG q{QUALITY} base layer")
    canny = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="target density", target_density=0.04,
                    title="Canny edges on the HR")
    enc = wf.node("MetaVSRJBIG2Encode", edges=canny[0], template="auto", thinning=True, resolution="1/2",
                  reduce_method="any", title="JBIG2 (thinned, 1/2 resolution)")
    dec = wf.node("MetaVSRJBIG2Decode", bitstream=enc[0], original=canny[0], title="JBIG2 decode (receiver)")

    model = wf.node("MetaVSRLoadEmbeddedReceiver", weights="tiny_sr_x4.safetensors", device="auto",
                    tile_size=192, title="Embedded receiver")
    sr_p = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=jpg[0], use_metadata=False,
                   title="A: pixel-only")
    sr_e = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=jpg[0], use_metadata=True,
                   edges=dec[0], title="B: with edges")
    bic = wf.node("MetaVSRUpscale", images=jpg[0], method="bicubic", factor=4, title="bicubic")

    measure_and_compare(
        wf, hr, runs=[(sr_p, f"A: pixel-only, q{QUALITY}"), (sr_e, f"B: with edges, q{QUALITY} + JBIG2"),
                      (bic, f"bicubic, q{QUALITY}")],
        rates=[([jpg[1]], "rate A (JPEG)", "A: bits", 5), ([jpg[1], enc[0]], "rate B (JPEG + JBIG2)", "B: bits", 6)],
        edges=dec, captions=f"HR\nbicubic (q{QUALITY})\nA: pixel-only\nB: with edges\ntransmitted edges",
        zoom=(0.47, 0.3), ab=(sr_p, sr_e, "A: pixel-only", "B: with edges"))

    # --- RD sweep: one queue run over JPEG qualities (list execution), in a band of its own -------
    sweep = wf.node("MetaVSRSweepValues", values=SWEEP, title="JPEG qualities", band="sweep")
    s_jpg = wf.node("MetaVSRJPEG", images=down[0], quality=sweep[0], subsampling="4:2:0", title="sweep: JPEG",
                    band="sweep")
    s_p = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=s_jpg[0], use_metadata=False,
                  title="sweep A: pixel-only", band="sweep")
    s_e = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=s_jpg[0], use_metadata=True,
                  edges=dec[0], title="sweep B: with edges", band="sweep")
    r_p = wf.node("MetaVSRBitrate", bitstream_1=s_jpg[1], reference=hr[0], title="sweep A: rate", band="sweep")
    r_e = wf.node("MetaVSRBitrate", bitstream_1=s_jpg[1], bitstream_2=enc[0], reference=hr[0],
                  title="sweep B: rate", band="sweep")
    m_p = wf.node("MetaVSRMetrics", images=s_p[0], reference=hr[0], color_space="RGB", crop_border=0,
                  lpips_net="alex", dists=False, label="sweep A", band="sweep")
    m_e = wf.node("MetaVSRMetrics", images=s_e[0], reference=hr[0], color_space="RGB", crop_border=0,
                  lpips_net="alex", dists=False, label="sweep B", band="sweep")
    for k, (metric, label, higher) in enumerate((("psnr", "PSNR (dB)", True), ("lpips", "LPIPS-Alex (lower is better)", False))):
        rd = wf.node("MetaVSRRDCurve", rate_1=r_p["total_bpp"], quality_1=m_p[metric], name_1="pixel-only",
                     rate_2=r_e["total_bpp"], quality_2=m_e[metric], name_2="with edges (JPEG + JBIG2)", anchor=1,
                     rate_label="bits per HR pixel", quality_label=label, higher_is_better=higher,
                     title=f"RD curve ({metric})", band="sweep")
        wf.node("PreviewImage", images=rd[0], title=f"RD: {metric}", show=Image(620, 440), band="sweep")
        wf.node("PreviewAny", source=rd[1], title=f"BD-rate ({metric})", show=Text(8, 60), band="sweep")
    return wf


if __name__ == "__main__":
    save_workflow(build(), "compare_conditioning.json")
