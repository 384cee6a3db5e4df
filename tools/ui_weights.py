"""Place tiny random weights under the released names in a harness tree's ComfyUI/models/, so the
workflows that need downloads (stream_vsr, star_vsr) run end to end in the real server and frontend.

    python tools/ui_weights.py --tree /tmp/comfy_harness158          # write
    python tools/ui_weights.py --tree /tmp/comfy_harness158 --remove # take them out again

Writes (random, seeded; the tests' fixtures, tests/stream_fixtures.py and tests/star_fixtures.py):

    models/diffusers/Stream-DiffVSR/               tiny Stream-DiffVSR folder
    models/STAR/light_deg.pt + light_deg.json      tiny STAR (the released .pt form, config beside it)
    models/diffusers/stable-video-diffusion-vae/   tiny SVD temporal VAE
    models/text_encoders/sd21_clip_h.safetensors   an OpenCLIP ViT-H/14 text encoder in ComfyUI's
                                                   (Hugging Face) layout at full size -- ComfyUI builds
                                                   that model from its own config whatever the file
                                                   holds -- with random N(0, 0.02) weights (fp16, 0.7 GB)

Nothing here is a usable model: the outputs are noise-like. A marker file lists what was written, and
--remove deletes exactly that.
"""
import argparse
import json
import os
import shutil
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
MARKER = "metavsr_ui_weights.json"
CLIP_H = dict(hidden=1024, layers=24, intermediate=4096, vocab=49408, positions=77)


def clip_h_state(seed: int = 0, dtype=torch.float16) -> dict:
    """{name: tensor} of a CLIP-H text model in the Hugging Face / ComfyUI key layout."""
    g = torch.Generator().manual_seed(seed)
    d, f = CLIP_H["hidden"], CLIP_H["intermediate"]

    def rnd(*shape):
        return (torch.randn(shape, generator=g) * 0.02).to(dtype)
    sd = {"text_model.embeddings.token_embedding.weight": rnd(CLIP_H["vocab"], d),
          "text_model.embeddings.position_embedding.weight": rnd(CLIP_H["positions"], d),
          "text_model.final_layer_norm.weight": torch.ones(d, dtype=dtype),
          "text_model.final_layer_norm.bias": torch.zeros(d, dtype=dtype),
          "text_projection.weight": rnd(d, d)}
    for i in range(CLIP_H["layers"]):
        p = f"text_model.encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            sd[p + f"self_attn.{proj}.weight"], sd[p + f"self_attn.{proj}.bias"] = rnd(d, d), rnd(d)
        for ln in ("layer_norm1", "layer_norm2"):
            sd[p + f"{ln}.weight"], sd[p + f"{ln}.bias"] = torch.ones(d, dtype=dtype), torch.zeros(d, dtype=dtype)
        sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = rnd(f, d), rnd(f)
        sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = rnd(d, f), rnd(d)
    return sd


def write(models: str) -> list:
    from _pack import load_pack
    load_pack()
    import star_fixtures
    import stream_fixtures
    from safetensors.torch import save_file
    made = []
    stream = os.path.join(models, "diffusers", "Stream-DiffVSR")
    if not os.path.exists(stream):
        stream_fixtures.make_folder(stream, seed=0)
        made.append(stream)
    scratch = os.path.join(models, ".metavsr_star_tmp")
    files = star_fixtures.make_files(scratch, seed=0)
    star_dir = os.path.join(models, "STAR")
    os.makedirs(star_dir, exist_ok=True)
    for src, name in ((files["pt"], "light_deg.pt"), (files["pt"][:-3] + ".json", "light_deg.json")):
        dst = os.path.join(star_dir, name)
        if not os.path.exists(dst):
            shutil.copy(src, dst)
            made.append(dst)
    vae = os.path.join(models, "diffusers", "stable-video-diffusion-vae")
    if not os.path.exists(vae):
        shutil.copytree(files["vae"], vae)
        made.append(vae)
    shutil.rmtree(scratch)
    clip = os.path.join(models, "text_encoders", "sd21_clip_h.safetensors")
    if not os.path.exists(clip):
        os.makedirs(os.path.dirname(clip), exist_ok=True)
        save_file(clip_h_state(), clip)
        made.append(clip)
    return made


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", required=True, help="harness tree (its ComfyUI/models/ is written)")
    ap.add_argument("--remove", action="store_true")
    a = ap.parse_args()
    models = os.path.join(a.tree, "ComfyUI", "models")
    marker = os.path.join(models, MARKER)
    if a.remove:
        if not os.path.exists(marker):
            print("nothing to remove")
            return
        for p in json.load(open(marker)):
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
            print("removed", p)
        os.remove(marker)
        return
    made = write(models)
    old = json.load(open(marker)) if os.path.exists(marker) else []
    with open(marker, "w") as f:
        json.dump(sorted(set(old) | set(made)), f, indent=1)
    for p in made:
        print("wrote", p)


if __name__ == "__main__":
    main()
