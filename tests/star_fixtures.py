"""Tiny random-weight STAR models, in the released key layout, for tests.

``TINY`` keeps every structural choice of the released ``ControlledV2VUNet`` (dim_mult (1, 2, 4, 4),
2 ResBlocks a level, attention at 1, 1/2, 1/4, the 1024-wide text context, 13 ControlNet residuals,
2,247 tensors) and shrinks the widths: dim 32 (channels 32, 64, 128, 128; GroupNorm keeps 32
groups), head_dim 16, the input block's temporal transformer 4 x 16 wide. ``build(seed)`` overwrites
every parameter with seeded random values (no zero-initialised layer is left, so the ControlNet, its
hint, the LIEM gates and the temporal convolutions all change the output).

Inputs for the parity tests come from :func:`inputs` (seeded CPU draws). The recorded reference
``tests/data/star_reference.safetensors`` was made from ``build(seed=0)`` and ``inputs()`` with the
authors' code (see ``tests/data/star_README.md``); ``fingerprint`` detects a changed weight init.
Needs the pack loaded as ``metavsr`` (the tests' conftest does it).
"""
import torch

from stream_fixtures import fingerprint, randomize_  # noqa: F401  (same init rule as Stream-DiffVSR's)

TINY = dict(dim=32, head_dim=16, num_heads=4, context_dim=1024)
LATENT = (1, 4, 3, 10, 16)        # [B, C, F, h, w]: h = 2 (mod 8), w = 0 (mod 8), as STAR's path needs
TOKENS = 8                         # text tokens (the model takes any count; the released runs use 77)


def build(seed: int = 0, config: dict = TINY):
    from metavsr.models.receivers.star.unet import STARConfig, STARUNet
    model = STARUNet(STARConfig(**config))
    randomize_(model, torch.Generator().manual_seed(seed))
    return model.eval()


def inputs(seed: int = 1):
    """``x`` [1,4,3,10,16], ``hint`` (same shape), ``cond`` / ``uncond`` [1, TOKENS, 1024], ``noise0``
    (the SDEdit noise) and ``draws`` [14, 1,4,3,10,16] (the SDE noise of each step), float32."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(LATENT, generator=g)
    hint = torch.randn(LATENT, generator=g)
    cond = torch.randn(1, TOKENS, 1024, generator=g)
    uncond = torch.randn(1, TOKENS, 1024, generator=g)
    noise0 = torch.randn(LATENT, generator=g)
    draws = torch.randn((14,) + LATENT, generator=g)
    return {"x": x, "hint": hint, "cond": cond, "uncond": uncond, "noise0": noise0, "draws": draws}


VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
           block_out_channels=(32, 32, 32, 32), layers_per_block=1, latent_channels=4, sample_size=32,
           scaling_factor=0.18215, force_upcast=False)


def build_vae(seed: int = 0):
    """A tiny random ``AutoencoderKLTemporalDecoder`` (x8, 4 latent channels, widths 32)."""
    from diffusers import AutoencoderKLTemporalDecoder
    vae = AutoencoderKLTemporalDecoder(**VAE)
    randomize_(vae, torch.Generator().manual_seed(seed))
    return vae.eval()


def make_files(root, seed: int = 0, star_dir: str = "STAR"):
    """Write the STAR files a user would have, tiny: ``root/<star_dir>/star-tiny.safetensors`` (config in its
    metadata), ``root/STAR/star-tiny-pt.pt`` + ``.json`` (the released .pt form, state dict under
    'state_dict'), ``root/diffusers/svd-vae-tiny/`` and ``root/STAR/prompts-tiny.safetensors``.
    Returns ``{"safetensors", "pt", "vae", "text"}`` paths."""
    import json
    import os
    from safetensors.torch import save_file
    from metavsr.models.receivers.star import loading
    from metavsr.models.receivers.star.unet import STARConfig
    star, dif = os.path.join(root, star_dir), os.path.join(root, "diffusers", "svd-vae-tiny")
    os.makedirs(star, exist_ok=True)
    os.makedirs(dif, exist_ok=True)
    model, cfg = build(seed), STARConfig(**TINY)
    paths = {"safetensors": loading.save_safetensors(model, cfg, os.path.join(star, "star-tiny.safetensors"),
                                                     dtype=None)}
    pt = os.path.join(star, "star-tiny-pt.pt")
    torch.save({"state_dict": model.state_dict()}, pt)
    with open(pt[:-3] + ".json", "w") as f:
        json.dump(cfg.to_dict(), f)
    paths["pt"] = pt
    vae = build_vae(seed)
    vae.save_config(dif)
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()},
              os.path.join(dif, "diffusion_pytorch_model.safetensors"))
    paths["vae"] = dif
    g = torch.Generator().manual_seed(seed + 7)
    paths["text"] = loading.save_text(os.path.join(star, "prompts-tiny.safetensors"),
                                      torch.randn(1, TOKENS, 1024, generator=g), torch.randn(1, TOKENS, 1024, generator=g))
    return paths
