"""Writes workflows/orchestrated_sr.json (run from the repo root: python tools/make_orchestrated_sr.py).

A mixed HR clip (workflows/metavsr_mixed_clip.mp4, made by tools/mixed_clip.py: a text page, a flat
cartoon, a camera pan over a photo, an under-exposed photo) goes through content analysis and the
orchestrated sender, which splits it at the scene cuts and picks, per segment, the JPEG quality and
edge metadata of least J = D + lambda R by simulating the embedded receiver (HN channel). The
receiver runs with the edges the sender chose (the side channel is lossless) and, beside it, with
only the edges that pass the verification gate (the rest pixel-only), as it would on a channel that
can corrupt metadata; a pixel-only run of the same base layer and bicubic sit beside them. Metrics
against the HR clip, the orchestrator's RD plot (every fixed choice against the orchestrated one, J
per candidate), a comparison grid and an A/B view. No downloaded weights.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import Image, Text, Workflow, pack_classes, save_workflow  # noqa: E402
from tools.wfparts import clip_views  # noqa: E402

CLASSES = pack_classes()
FRAMES = 16


def build():
    wf = Workflow(CLASSES)
    hr = wf.node("MetaVSRLoadVideoFrames", video="metavsr_mixed_clip.mp4", start_frame=0, frame_count=FRAMES,
                 every_nth=1, title="HR mixed clip (sender)")
    ca = wf.node("MetaVSRContentAnalysis", images=hr[0], scene_cut=0.5, face_cascade="",
                 title="content analysis (per scene)", column="analysis")
    wf.node("PreviewAny", source=ca[0], title="content: segments and scores", show=Text(7, 84))
    model = wf.node("MetaVSRLoadEmbeddedReceiver", weights="tiny_sr_x4.safetensors", device="auto",
                    tile_size=192, title="Embedded receiver (ships with the pack)",
                    column="analysis")   # not under the video loader, whose preview grows after loading
    orch = wf.node("MetaVSROrchestrateMetadata", sr_model=model[0], hr_images=hr[0], regime="HN", mode="lambda",
                   lambda_=100.0, budget_kbps=200.0, qualities="10, 20, 30, 45, 60, 80",
                   edge_densities="0.01, 0.02, 0.04, 0.08", sharp_edges=True, fps=24.0, scene_cut=0.5, seed=0,
                   title="orchestrated sender (HN channel)")
    wf.node("PreviewAny", source=orch[4], title="orchestrator: choice per segment", show=Text(9, 62))
    wf.node("PreviewImage", images=orch[5], title="RD: fixed choices vs orchestrated; J per candidate",
            show=Image(620, 262))

    # --- receiver: gate, then SR with the edges that pass ------------------------------------------------
    ver = wf.node("MetaVSRVerifyMetadata", lr_images=orch[0], edges=orch[1], min_level=1.5, min_peak=0.96,
                  gate=orch[2], max_inconsistency=1.05, title="verification gate (receiver)")
    wf.node("PreviewAny", source=ver[1], title="gate: decision per frame", show=Text(22, 56))
    sr = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=orch[0], use_metadata=True, edges=orch[1],
                 gate=orch[2], title="SR: orchestrated metadata")
    srg = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=orch[0], use_metadata=True, edges=orch[1],
                  gate=ver[0], title="SR: orchestrated metadata, gated")
    sr0 = wf.node("MetaVSRSuperResolve", sr_model=model[0], lr_images=orch[0], use_metadata=False,
                  title="SR: pixel-only (same base layer)")
    bic = wf.node("MetaVSRUpscale", images=orch[0], method="bicubic", factor=4, title="bicubic of the base layer")

    # --- measure and view -------------------------------------------------------------------------------
    for node, label in ((sr, "orchestrated"), (srg, "orchestrated, gated"), (sr0, "pixel-only"), (bic, "bicubic")):
        met = wf.node("MetaVSRMetrics", images=node[0], reference=hr[0], color_space="RGB", crop_border=0,
                      lpips_net="alex", dists=False, label=label, column="measure")
        wf.node("PreviewAny", source=met[4], title=f"metrics: {label}", show=Text(FRAMES + 5, 54))
    clip_views(wf, hr, bic, sr0, sr, "HR\nbicubic\npixel-only\norchestrated", "pixel-only", "orchestrated")
    return wf


if __name__ == "__main__":
    save_workflow(build(), "orchestrated_sr.json", probe=False)
