"""Writes workflows/star_vsr.json (run from the repo root: python tools/make_star_vsr.py).

The HR sample clip (workflows/metavsr_sample_clip.mp4) is sent as an area x4 H.264 base layer; at the
receiver STAR (text-to-video prior, LIEM, ControlNet on the LR latent) restores it with the authors'
prompt suffix and negative prompt through SD 2.x's OpenCLIP text encoder, the 'fast' 15-step sampler
and AdaIN colour fix, beside bicubic; frame and temporal metrics against the HR clip, a comparison
grid and an A/B view. Needs weights (STAR checkpoint, SVD VAE, the OpenCLIP-H text encoder).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.wfbuild import AB_SLIDER, Image, Text, Workflow, pack_classes, save_workflow  # noqa: E402
from tools.wfparts import clip_measures, video_sender  # noqa: E402

CLASSES = pack_classes()
FRAMES, CRF = 10, 23


def build():
    import importlib
    star = importlib.import_module("metavsr.models.receivers.star")   # pack_classes() loaded the pack
    wf = Workflow(CLASSES)
    hr, base, lr = video_sender(wf, FRAMES, CRF)

    clip = wf.node("CLIPLoader", clip_name="sd21_clip_h.safetensors", type="stable_diffusion",
                   title="OpenCLIP ViT-H/14 (SD 2.x text encoder)")
    pos = wf.node("CLIPTextEncode", text=f"{star.DEFAULT_PROMPT}, {star.POSITIVE_SUFFIX}", clip=clip[0],
                  title="prompt + STAR's quality suffix")
    neg = wf.node("CLIPTextEncode", text=star.NEGATIVE, clip=clip[0], title="STAR's negative prompt")
    model = wf.node("MetaVSRLoadSTAR", checkpoint="light_deg.pt", vae="stable-video-diffusion-vae", dtype="fp16",
                    offload="model", chunk_frames=32, chunk_overlap=16, tile_size=0, tile_overlap=128, vae_tile_size=0,
                    title="STAR (I2VGen-XL, light degradations)")
    prompt = wf.node("MetaVSRSTARPrompt", sr_model=model[0], mode="fast", steps=15, cfg=7.5, rescale=0.2,
                     noise_level=900, colour_fix="adain", seed=666, truncate_77=True, canvas=False,
                     positive=pos[0], negative=neg[0], embeddings="none", title="STAR prompt and sampler")
    sr = wf.node("MetaVSRSuperResolve", sr_model=prompt[0], lr_images=lr[0], use_metadata=False, title="SR: STAR")
    bic = wf.node("MetaVSRUpscale", images=lr[0], method="bicubic", factor=4, title="bicubic of the base layer")

    wf.node("PreviewAny", source=prompt[1], title="sampler", show=Text(3, 60), column="measure")
    runs = ((sr, "STAR"), (bic, "bicubic"))
    clip_measures(wf, hr, runs, FRAMES)
    grid = wf.node("MetaVSRComparisonGrid", images_1=hr[0], images_2=bic[0], images_3=sr[0],
                   captions="HR\nbicubic\nSTAR", columns=3, resize="nearest", zoom_size=0.3, zoom_x=0.45,
                   zoom_y=0.3, font_size=0, column="measure")
    wf.node("PreviewImage", images=grid[0], title="Comparison grid (every frame)", show=Image(900, 400))
    ab = wf.node("MetaVSRABCompare", image_a=bic[0], image_b=sr[0], split=0.5, label_a="bicubic", label_b="STAR",
                 show=Image(AB_SLIDER, AB_SLIDER), column="measure")
    wf.node("PreviewImage", images=ab[0], title="A/B: bicubic | STAR", show=Image(420, 420))
    return wf


if __name__ == "__main__":
    save_workflow(build(), "star_vsr.json", probe=False)   # needs downloaded weights: show= hints only
