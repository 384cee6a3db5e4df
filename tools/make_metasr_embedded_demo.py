"""Writes workflows/metasr_embedded_demo.json (run from the repo root:
python tools/make_metasr_embedded_demo.py).

The main job (run.py) for one operating point in ComfyUI, with the embedded receiver (no download):
sender (bicubic x4, JPEG base layer, Canny edges at 4 % density thinned and JBIG2-coded at 1/2
resolution), HN channel on the decoded base layer, the same receiver with edges (JPEG q30 + edges)
and pixel-only (JPEG q70, which spends at least as many bits), the bicubic baseline, rate tables from
the real bytes, metrics, a comparison grid and an A/B view.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import Workflow, pack_classes, save_workflow  # noqa: E402
from tools.wfparts import measure_and_compare  # noqa: E402

CLASSES = pack_classes()
Q_EDGES, Q_PIXEL = 30, 70


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", title="HR image (sender)")
    down = wf.node("MetaVSRDownscale", images=hr[0], method="bicubic", factor=4, title="x4 bicubic")

    # --- sender: two base layers, one edge stream ------------------------------------------------
    jpg_e = wf.node("MetaVSRJPEG", images=down[0], quality=Q_EDGES, subsampling="4:2:0",
                    title=f"JPEG q{Q_EDGES} (with-edges branch)")
    jpg_p = wf.node("MetaVSRJPEG", images=down[0], quality=Q_PIXEL, subsampling="4:2:0",
                    title=f"JPEG q{Q_PIXEL} (pixel-only branch)")
    canny = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="target density", target_density=0.04,
                    title="Canny edges on the HR")
    enc = wf.node("MetaVSRJBIG2Encode", edges=canny[0], template="auto", thinning=True, resolution="1/2",
                  reduce_method="any", title="JBIG2 (thinned, 1/2 resolution)")

    # --- channel: HN on the decoded base layers (same seed for both) ------------------------------
    ch_e = wf.node("MetaVSRChannelDegrade", images=jpg_e[0], regime="HN", seed=0,
                   title="HN channel (with-edges branch)")
    ch_p = wf.node("MetaVSRChannelDegrade", images=jpg_p[0], regime="HN", seed=0,
                   title="HN channel (pixel-only branch)")
    dec = wf.node("MetaVSRJBIG2Decode", bitstream=enc[0], original=canny[0], title="JBIG2 decode (receiver)")

    # --- receiver ---------------------------------------------------------------------------------
    model = wf.node("MetaVSRLoadEmbeddedReceiver", weights="tiny_sr_x4.safetensors", device="auto",
                    tile_size=192, title="Embedded receiver (ships with the pack)")
    sr_e = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=ch_e[0], use_metadata=True,
                   edges=dec[0], title=f"SR with edges (q{Q_EDGES} + JBIG2)")
    sr_p = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=ch_p[0], use_metadata=False,
                   title=f"SR pixel-only (q{Q_PIXEL})")
    bic = wf.node("MetaVSRUpscale", images=ch_p[0], method="bicubic", factor=4,
                  title=f"bicubic of the q{Q_PIXEL} base layer")

    # --- rate, quality and views ----------------------------------------------------------------------
    measure_and_compare(
        wf, hr, runs=[(sr_e, f"with edges q{Q_EDGES}+JBIG2"), (sr_p, f"pixel-only q{Q_PIXEL}"),
                      (bic, f"bicubic q{Q_PIXEL}")],
        rates=[([jpg_e[1], enc[0]], "rate: with edges (JPEG + JBIG2)", "with edges: bits", 6),
               ([jpg_p[1]], "rate: pixel-only (JPEG)", "pixel-only: bits", 5)],
        edges=dec, captions=(f"HR\nbicubic (q{Q_PIXEL}, HN)\npixel-only (q{Q_PIXEL}, HN)\n"
                             f"with edges (q{Q_EDGES} + edges, HN)\ntransmitted edges"),
        ab=(sr_p, sr_e, f"pixel-only q{Q_PIXEL}", f"with edges q{Q_EDGES}+JBIG2"))
    return wf


if __name__ == "__main__":
    save_workflow(build(), "metasr_embedded_demo.json")
