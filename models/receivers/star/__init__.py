"""STAR (Xie et al. 2025): text-to-video-prior video SR, I2VGen-XL-based; see unet.py, loading.py, receiver.py."""
from .loading import (STARModelError, inspect_checkpoint, load_text, load_unet, load_vae, save_safetensors,
                      save_text)
from .receiver import DEFAULT_PROMPT, NEGATIVE, POSITIVE_SUFFIX, STAR, STARInputError, STARSettings
from .unet import STARConfig, STARUNet, key_shapes, latent_size_ok

__all__ = ["DEFAULT_PROMPT", "STAR", "STARConfig", "STARInputError", "STARModelError", "STARSettings", "STARUNet", "NEGATIVE",
           "POSITIVE_SUFFIX", "inspect_checkpoint", "key_shapes", "latent_size_ok", "load_text", "load_unet",
           "load_vae", "save_safetensors", "save_text"]
