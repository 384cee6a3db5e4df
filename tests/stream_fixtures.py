"""Tiny random-weight Stream-DiffVSR folders, in the released layout, for tests.

``make_folder(root, seed)`` writes::

    root/unet/          diffusers UNet2DConditionModel (7 input channels: noisy latent + LR frame)
    root/controlnet/    diffusers ControlNetModel (same encoder; HR hint downsampled 4x to the latent)
    root/vae/           "TemporalAutoencoderTiny" (our TemporalTAE's state dict, a x4 3-stage layout)
    root/scheduler/     DDIMScheduler config (v-prediction, trailing spacing)
    root/empty_prompt_embeds.safetensors   "prompt_embeds" float32 [1, 77, cross_attention_dim]
    root/model_index.json

Sizes are chosen so a 4-frame 12x8 -> 48x32 run takes well under a second on a CPU. diffusers
zero-initialises ControlNet's zero-convs (and TAESD-style blocks start with alpha = 0.5); every
parameter is overwritten here with seeded random values so that every path -- ControlNet residuals,
the TPM's alpha and temporal_processor -- changes the output (two adjustments on top, see ``build``:
the decoder's output conv is centred on 0.5, and ControlNet's hint embedding gets a x8 output gain so
the warped previous frame matters as much as the TPM). Needs the pack loaded as ``metavsr`` (the
tests' conftest does it). The recorded reference
``tests/data/stream_diffvsr_reference.safetensors`` was made from ``make_folder(root, seed=0)``
(see ``tests/data/stream_diffvsr_README.md``); ``fingerprint`` detects a changed weight init.
"""
import json
import os

import torch
from torch import nn

CROSS_DIM = 32

UNET = dict(
    sample_size=8, in_channels=7, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=CROSS_DIM, attention_head_dim=8, norm_num_groups=8,
)
CONTROLNET = dict(
    in_channels=7, conditioning_channels=3, conditioning_embedding_out_channels=(8, 16, 16),
    layers_per_block=1, block_out_channels=(32, 64),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    cross_attention_dim=CROSS_DIM, attention_head_dim=8, norm_num_groups=8,
)
# The released x4 layout shrunk in width and depth: 3 stages (x4 latent, like the SD x4 upscaler's).
VAE = dict(
    in_channels=3, out_channels=3, encoder_block_out_channels=(8, 8, 8),
    decoder_block_out_channels=(8, 8, 8), act_fn="relu", upsample_fn="nearest", latent_channels=4,
    upsampling_scaling_factor=2, num_encoder_blocks=(1, 2, 2), num_decoder_blocks=(2, 2, 1),
    latent_magnitude=3, latent_shift=0.5, force_upcast=False, scaling_factor=1.0, shift_factor=0.0,
)
SCHEDULER = dict(
    num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.0001, beta_end=0.02,
    prediction_type="v_prediction", timestep_spacing="trailing", set_alpha_to_one=False,
    steps_offset=1, clip_sample=False,
)
PROMPT_TOKENS = 77

# Full-size shapes for bench/stream.py ("released"): the SD x4 upscaler U-Net (which Stream-DiffVSR
# distils; without its noise-level class embedding, which the authors' pipeline never feeds), a
# ControlNet with its encoder and a 4x hint embedding, and the TAESD-width x4 temporal autoencoder.
# These are the public SD x4 upscaler sizes, not read from the released folder (not reachable here):
# pass --folder to the bench for the real one.
_SD_X4 = dict(
    layers_per_block=2, block_out_channels=(256, 512, 512, 1024),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    only_cross_attention=(True, True, True, False), cross_attention_dim=1024, attention_head_dim=8,
    use_linear_projection=True, norm_num_groups=32,
)
UNET_RELEASED = dict(_SD_X4, sample_size=128, in_channels=7, out_channels=4,
                     up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
CONTROLNET_RELEASED = dict(_SD_X4, in_channels=7, conditioning_channels=3,
                           conditioning_embedding_out_channels=(16, 32, 96))
VAE_RELEASED = dict(VAE, encoder_block_out_channels=(64, 64, 64), decoder_block_out_channels=(64, 64, 64),
                    num_encoder_blocks=(1, 3, 3), num_decoder_blocks=(3, 3, 1))
SHAPES = {"tiny": (UNET, CONTROLNET, VAE, CROSS_DIM),
          "released": (UNET_RELEASED, CONTROLNET_RELEASED, VAE_RELEASED, 1024)}
_NORMS = (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)


def randomize_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Overwrite every parameter, in ``named_modules`` order, with seeded random values: weights
    N(0, 1/fan_in) (signals stay O(1) through the net), norm weights 1 + 0.05 N, biases and other
    1-D parameters 0.05 N, scalar gates (the TPM's alpha) uniform in [0.25, 0.75]."""
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                if p.ndim == 0:
                    p.copy_(0.25 + 0.5 * torch.rand((), generator=generator))
                elif isinstance(module, _NORMS) and name == "weight":
                    p.copy_(1 + 0.05 * torch.randn(p.shape, generator=generator))
                elif p.ndim == 1:
                    p.copy_(0.05 * torch.randn(p.shape, generator=generator))
                else:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=generator) / fan_in ** 0.5)
    return model


def build(seed: int = 0, shapes: str = "tiny"):
    """Random ``(unet, controlnet, vae, scheduler, prompt_embeds)``; deterministic in ``seed`` and
    independent of (and not disturbing) the global RNG."""
    from diffusers import ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from metavsr.models.receivers.stream.tae import TAEConfig, TemporalTAE

    unet_cfg, controlnet_cfg, vae_cfg, cross = SHAPES[shapes]
    with torch.random.fork_rng(devices=[]):
        unet = UNet2DConditionModel(**unet_cfg)
        controlnet = ControlNetModel(**controlnet_cfg)
        vae = TemporalTAE(TAEConfig.from_dict(vae_cfg))
    g = torch.Generator().manual_seed(seed)
    for model in (unet, controlnet, vae):
        randomize_(model, g).eval()
    with torch.no_grad():
        # Centre the decoder's 0..1 output (TAESD's range) so few output pixels clip at 0 or 1: the last
        # conv's filters are made zero-mean (its input is post-ReLU, >= 0) and its bias about 0.5.
        last = vae.decoder.layers[-1]
        last.weight.sub_(last.weight.mean(dim=(1, 2, 3), keepdim=True))
        last.bias.add_(0.5)
        # The hint (warped previous output) reaches ControlNet through 7 small convs and would be
        # drowned by the latent path; a x8 gain on the embedding's output makes the warp visible.
        controlnet.controlnet_cond_embedding.conv_out.weight.mul_(8)
    scheduler = DDIMScheduler(**SCHEDULER)
    emb = torch.randn(1, PROMPT_TOKENS, cross, generator=torch.Generator().manual_seed(seed + 1))
    return unet, controlnet, vae, scheduler, emb


def _vae_config(vae_cfg: dict = VAE) -> dict:
    # What TemporalAutoencoderTiny.save_config writes: its init arguments plus the two keys its
    # constructor registers afterwards (block_out_channels = decoder_block_out_channels, force_upcast).
    cfg = {"_class_name": "TemporalAutoencoderTiny", "_diffusers_version": "0.42.1"}
    cfg.update({k: list(v) if isinstance(v, tuple) else v for k, v in vae_cfg.items()})
    cfg["block_out_channels"] = list(vae_cfg["decoder_block_out_channels"])
    return cfg


def make_folder(root: str, seed: int = 0, shapes: str = "tiny") -> str:
    """Write a random Stream-DiffVSR folder at ``root`` (created if missing) with the ``shapes`` of
    :data:`SHAPES` (tiny: the tests'; released: full size, for the bench); returns ``root``."""
    from safetensors.torch import save_file

    unet, controlnet, vae, scheduler, emb = build(seed, shapes)
    os.makedirs(root, exist_ok=True)
    unet.save_pretrained(os.path.join(root, "unet"), safe_serialization=True)
    controlnet.save_pretrained(os.path.join(root, "controlnet"), safe_serialization=True)
    scheduler.save_pretrained(os.path.join(root, "scheduler"))
    vae_dir = os.path.join(root, "vae")
    os.makedirs(vae_dir, exist_ok=True)
    with open(os.path.join(vae_dir, "config.json"), "w") as f:
        json.dump(_vae_config(SHAPES[shapes][2]), f, indent=2, sort_keys=True)
    save_file({k: v.detach().contiguous() for k, v in vae.state_dict().items()},
              os.path.join(vae_dir, "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    save_file({"prompt_embeds": emb.contiguous()}, os.path.join(root, "empty_prompt_embeds.safetensors"))
    index = {"_class_name": "StreamDiffVSRPipeline", "_diffusers_version": "0.42.1",
             "controlnet": ["diffusers", "ControlNetModel"],
             "feature_extractor": [None, None],
             "requires_safety_checker": False,
             "safety_checker": [None, None],
             "scheduler": ["diffusers", "DDIMScheduler"],
             "text_encoder": [None, None],
             "tokenizer": [None, None],
             "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["temporal_autoencoder.autoencoder_tiny", "TemporalAutoencoderTiny"]}
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
    return root


def fingerprint(module) -> float:
    """Sum of |weights|: a quick check that a rebuilt random model is the recorded one."""
    return float(sum(p.detach().double().abs().sum() for p in module.parameters()))
