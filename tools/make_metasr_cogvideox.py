"""Writes workflows/metasr_cogvideox.json (run from the repo root: python tools/make_metasr_cogvideox.py).

Sender: HR -> area x4 -> JPEG base layer; Canny edges -> JBIG2 (lossless, real bytes). Receiver: a
MetaSR CogVideoX fine-tune (models/diffusers/MetaSR-edges, trained with train/train_metasr.py from DOVE)
super-resolves the decoded base layer with the decoded edges, and again pixel-only (use_metadata off,
the DOVE-equivalent run); metrics and an A/B view compare the two. Swap LoadImage for a video loader
(e.g. VideoHelperSuite) to run clips: every node takes [T,H,W,C] batches.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import AB_SLIDER, Image, Text, Workflow, pack_classes, save_workflow  # noqa: E402

CLASSES = pack_classes()


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("LoadImage", image="metavsr_sample.png", title="HR frames")
    down = wf.node("MetaVSRDownscale", images=hr[0], method="area", factor=4, title="sender: area x4")
    jpg = wf.node("MetaVSRJPEG", images=down[0], quality=40, subsampling="4:2:0", title="sender: JPEG base layer")
    edges = wf.node("MetaVSRCannyMetadata", images=hr[0], mode="thresholds", low=100, high=200,
                    title="sender: Canny on HR")
    enc = wf.node("MetaVSRJBIG2Encode", edges=edges[0], title="sender: JBIG2 edges")
    dec = wf.node("MetaVSRJBIG2Decode", bitstream=enc[0], title="receiver: decode edges")
    model = wf.node("MetaVSRLoadCogVideoXSR", model="MetaSR-edges", title="MetaSR (CogVideoX one-step)")
    sr_meta = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=jpg[0], use_metadata=True,
                      edges=dec[0], title="SR with edge tokens")
    sr_plain = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=jpg[0], use_metadata=False,
                       edges=dec[0], title="SR pixel-only (DOVE-style)")
    rate = wf.node("MetaVSRBitrate", bitstream_1=jpg[1], bitstream_2=enc[0], reference=hr[0], column="measure")
    wf.node("PreviewAny", source=rate[0], title="Bits: base layer + edges", show=Text(6, 60))
    for label, sr in (("with edges", sr_meta), ("pixel-only", sr_plain)):
        met = wf.node("MetaVSRMetrics", images=sr[0], reference=hr[0], color_space="RGB", crop_border=4,
                      lpips_net="alex", dists=False, label=label, column="measure")
        wf.node("PreviewAny", source=met[4], title=f"metrics: {label}", show=Text(5, 50))
    ab = wf.node("MetaVSRABCompare", image_a=sr_plain[0], image_b=sr_meta[0], split=0.5, label_a="pixel-only",
                 label_b="with edges", show=Image(AB_SLIDER, AB_SLIDER), column="measure")
    wf.node("PreviewImage", images=ab[0], title="A/B: pixel-only | with edges", show=Image(420, 420))
    return wf


if __name__ == "__main__":
    save_workflow(build(), "metasr_cogvideox.json", probe=False)   # needs downloaded weights: show= hints only
