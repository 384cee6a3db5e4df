"""Writes workflows/stream_vsr.json (run from the repo root: python tools/make_stream_vsr.py).

An HR clip (workflows/metavsr_sample_clip.mp4, made by tools/sample_clip.py) is sent as an area x4
H.264 base layer; the receiver runs causally (each frame guided by the flow-warped previous output,
as trained) and per frame (temporal guidance off: every frame runs as a first frame), beside
bicubic. Temporal metrics (tOF, tLP, E_warp) and frame metrics against the HR clip, the receiver's
speed line, the base layer's bits, a comparison grid over the clip and an A/B view of per-frame
against causal. The receiver is the embedded streaming model (ships with the pack, runs on a CPU);
swap its loader for MetaVSR Load Stream-DiffVSR when models/diffusers/Stream-DiffVSR is present.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import Text, Workflow, pack_classes, save_workflow  # noqa: E402
from tools.wfparts import clip_measures, clip_views, video_sender  # noqa: E402

CLASSES = pack_classes()
FRAMES, CRF = 10, 23


def build():
    wf = Workflow(CLASSES)
    hr, base, lr = video_sender(wf, FRAMES, CRF)
    model = wf.node("MetaVSRLoadEmbeddedReceiver", weights="tiny_stream_x4.safetensors", device="auto",
                    tile_size=192, title="embedded streaming receiver (or Stream-DiffVSR)")
    causal = wf.node("MetaVSRStreamSuperResolve", sr_model=model[0], lr_images=lr[0], continue_stream=False,
                     stream_id="causal", temporal_guidance=True, title="SR causal (temporal guidance)")
    per = wf.node("MetaVSRStreamSuperResolve", sr_model=model[0], lr_images=lr[0], continue_stream=False,
                  stream_id="per-frame", temporal_guidance=False, title="SR per frame (no temporal guidance)")
    bic = wf.node("MetaVSRUpscale", images=lr[0], method="bicubic", factor=4, title="bicubic of the base layer")

    # --- measure: speed, bits, temporal and frame metrics, views ------------------------------------
    for node, label in ((causal, "causal"), (per, "per frame")):
        wf.node("PreviewAny", source=node[2], title=f"speed: {label}", show=Text(3, 60), column="measure")
    rate = wf.node("MetaVSRBitrate", bitstream_1=base[1], reference=hr[0], title="rate: base layer",
                   column="measure")
    wf.node("PreviewAny", source=rate[0], title="base layer: bits", show=Text(5, 60))
    runs = ((causal, "causal"), (per, "per frame"), (bic, "bicubic"))
    clip_measures(wf, hr, runs, FRAMES)
    clip_views(wf, hr, bic, per, causal, "HR\nbicubic\nper frame\ncausal (streaming)", "per frame", "causal")
    return wf


if __name__ == "__main__":
    save_workflow(build(), "stream_vsr.json")
