"""Known CogVideoX shapes, and random-weight diffusers folders built from them for tests and benchmarks.

Random weights change no speed or memory figure, so a benchmark can run "CogVideoX-2B-shaped" models
without a download; tests use the ``tiny_*`` presets, small enough to run on a CPU in seconds.
"""
import json
import os

import torch

# CogVideoX-2B's published configs (diffusers defaults are the 2B shapes; written out for clarity).
TRANSFORMER_2B = dict(num_attention_heads=30, attention_head_dim=64, in_channels=16, out_channels=16,
                      time_embed_dim=512, text_embed_dim=4096, num_layers=30, sample_width=90,
                      sample_height=60, sample_frames=49, patch_size=2, max_text_seq_length=226,
                      spatial_interpolation_scale=1.875, use_rotary_positional_embeddings=False)
VAE_2B = dict(block_out_channels=(128, 256, 256, 512), latent_channels=16, layers_per_block=3,
              norm_num_groups=32, scaling_factor=1.15258426, sample_height=480, sample_width=720)
SCHEDULER_2B = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                    clip_sample=False, num_train_timesteps=1000, prediction_type="v_prediction",
                    rescale_betas_zero_snr=True, set_alpha_to_one=True, snr_shift_scale=3.0,
                    steps_offset=0, timestep_spacing="trailing")
# CogVideoX1.5-5B (DOVE's base): 3D RoPE, 2-frame temporal patches, no patch bias.
TRANSFORMER_15_5B = dict(num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16,
                         time_embed_dim=512, text_embed_dim=4096, num_layers=42, sample_width=170,
                         sample_height=96, sample_frames=81, patch_size=2, patch_size_t=2,
                         patch_bias=False, max_text_seq_length=226,
                         use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False)
VAE_15_5B = dict(VAE_2B, scaling_factor=0.7, invert_scale_latents=True)
SCHEDULER_15_5B = dict(SCHEDULER_2B, snr_shift_scale=1.0)

_TINY_T = dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
               time_embed_dim=16, text_embed_dim=8, num_layers=2, sample_width=8, sample_height=8,
               sample_frames=9, patch_size=2, max_text_seq_length=226)
_TINY_VAE = dict(block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1,
                 norm_num_groups=4, sample_height=256, sample_width=256)

PRESETS = {
    "2b": (TRANSFORMER_2B, VAE_2B, SCHEDULER_2B),
    "1.5-5b": (TRANSFORMER_15_5B, VAE_15_5B, SCHEDULER_15_5B),
    # tiny_2b: sincos absolute positions, frame-wise patches (the 2B layout)
    "tiny_2b": (dict(_TINY_T, use_rotary_positional_embeddings=False),
                dict(_TINY_VAE, scaling_factor=1.15258426), SCHEDULER_2B),
    # tiny_5b: 3D RoPE with frame-wise patches (the CogVideoX-5B layout)
    "tiny_5b": (dict(_TINY_T, use_rotary_positional_embeddings=True),
                dict(_TINY_VAE, scaling_factor=0.7), SCHEDULER_15_5B),
    # tiny_15: 3D RoPE, patch_size_t = 2, no patch bias (the CogVideoX1.5 / DOVE layout)
    "tiny_15": (dict(_TINY_T, use_rotary_positional_embeddings=True, patch_size_t=2, patch_bias=False),
                dict(_TINY_VAE, scaling_factor=0.7), SCHEDULER_15_5B),
}


def build_random(preset: str, seed: int = 0, device=None, dtype=torch.float32, vae_logvar: float = None):
    """Random-weight ``(transformer, vae, scheduler)`` of a preset's shapes.

    ``vae_logvar``: if given, the encoder's log-variance outputs are pinned to this value (zero
    weights, constant bias), so ``latent_dist.sample()`` is deterministic to within exp(logvar/2);
    parity tests use -30 to compare two implementations that draw their noise differently.
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
    t_cfg, v_cfg, s_cfg = PRESETS[preset]
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.device(device or "cpu"):
            transformer = CogVideoXTransformer3DModel(**t_cfg)
            vae = AutoencoderKLCogVideoX(**v_cfg)
        # diffusers zero-initialises nothing that matters here, but AdaLN / proj_out default inits
        # would make a random model output near-constant; spread them so tests see real signal.
        with torch.no_grad():
            for name, p in transformer.named_parameters():
                if p.ndim >= 2 and ("norm" in name or "proj_out" in name):
                    p.normal_(0, 0.5 / p.shape[1] ** 0.5)
            if vae_logvar is not None:
                conv = vae.encoder.conv_out.conv
                c = conv.out_channels // 2
                conv.weight[c:].zero_()
                conv.bias[c:].fill_(vae_logvar)
    finally:
        torch.random.set_rng_state(gen_state)
    if dtype != torch.float32:
        transformer.to(dtype=dtype)
        vae.to(dtype=dtype)
    transformer.eval()
    vae.eval()
    scheduler = CogVideoXDPMScheduler(**s_cfg)
    return transformer, vae, scheduler


def save_folder(path: str, transformer, vae, scheduler, prompt_embedding: torch.Tensor = None,
                metadata_kinds=None):
    """Write a diffusers-format folder that :func:`models.receivers.cogvideox.loading.load` (and diffusers'
    ``CogVideoXPipeline``) reads; text encoder and tokenizer are left out (``null`` entries)."""
    os.makedirs(path, exist_ok=True)
    transformer.save_pretrained(os.path.join(path, "transformer"))
    vae.save_pretrained(os.path.join(path, "vae"))
    scheduler.save_pretrained(os.path.join(path, "scheduler"))
    index = {"_class_name": "CogVideoXPipeline", "_diffusers_version": "0.32.0",
             "scheduler": ["diffusers", type(scheduler).__name__],
             "text_encoder": [None, None], "tokenizer": [None, None],
             "transformer": ["diffusers", "CogVideoXTransformer3DModel"],
             "vae": ["diffusers", "AutoencoderKLCogVideoX"]}
    with open(os.path.join(path, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
    if prompt_embedding is not None:
        from safetensors.torch import save_file
        save_file({"prompt_embedding": prompt_embedding.contiguous()},
                  os.path.join(path, "prompt_embedding.safetensors"))
    if metadata_kinds is not None:
        with open(os.path.join(path, "metasr.json"), "w") as f:
            json.dump({"metadata_kinds": list(metadata_kinds)}, f)
    return path


def tiny_folder(path: str, preset: str = "tiny_15", seed: int = 0, metadata_kinds=None) -> str:
    """A reproducible tiny random folder (weights, a seeded [1,226,8] prompt embedding, and a VAE
    posterior pinned to log-variance -30 so encoding is deterministic); tests and the recorded DOVE
    reference outputs in tests/data are made with this function."""
    transformer, vae, scheduler = build_random(preset, seed=seed, vae_logvar=-30.0)
    emb = torch.randn(1, 226, PRESETS[preset][0]["text_embed_dim"],
                      generator=torch.Generator().manual_seed(seed + 1))
    return save_folder(path, transformer, vae, scheduler, emb, metadata_kinds)


def fingerprint(module) -> float:
    """Sum of |weights|: a quick check that a rebuilt random model is the recorded one."""
    return float(sum(p.detach().double().abs().sum() for p in module.parameters()))
