"""Stream-DiffVSR's temporal tiny autoencoder: TAESD's encoder, and a decoder whose residual blocks
fuse features of the flow-warped previous output (the Temporal Processor Module, TPM).

Written to load the released ``vae/`` folder (``TemporalAutoencoderTiny``) key for key: the module
tree mirrors its ``encoder.layers`` / ``decoder.layers`` sequences, parameter-free layers included, so
the state-dict names are the same. The forward pass is functional: temporal features are arguments,
never attributes left on a shared module, so one model serves several streams and threads.

Data (NCHW, the pipeline's working dtype):

    latent      [B, C_lat, h, w]            h, w = H / 2**(stages-1)
    image       [B, 3, H, W] in -1..1       (decoder output, warped previous output)
    features    list, one [B, C, H_k, W_k] per encoder block (``temporal_features``), *already
                average-pooled* 4x4 -- the only form the TPM reads, 16x smaller than the raw maps

Behaviour of the authors' code kept for parity (see ``jamichss/Stream-DiffVSR``,
``temporal_autoencoder/``):

- features for the TPM are taken by running the encoder layers on the -1..1 image *without* the
  (x + 1) / 2 that the encoder's own forward applies;
- the TPM's Conv1d runs over the concatenation [current, previous] of the two pooled maps flattened in
  raster order (so its 3-tap kernel reaches across rows and across the seam between the two);
- decoder block k fuses with encoder block (n - 1 - k)'s features (the encoder list reversed);
- the decoder soft-clamps latents with 3 tanh(z / 3) and returns 2 y - 1.
"""
import json
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

POOL = 4       # TPM average-pool window (fixed in the authors' block)
TPM_GAIN = 0.1  # weight of the fused temporal term


def _activation(name: str) -> nn.Module:
    table = {"relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "gelu": nn.GELU, "mish": nn.Mish}
    if name not in table:
        raise ValueError(f"act_fn {name!r} is not one of {sorted(table)}")
    return table[name]()


@dataclass(frozen=True)
class TAEConfig:
    """The fields of the released ``vae/config.json`` the network depends on (others are ignored)."""
    in_channels: int = 3
    out_channels: int = 3
    encoder_block_out_channels: Sequence[int] = (64, 64, 64, 64)
    decoder_block_out_channels: Sequence[int] = (64, 64, 64, 64)
    act_fn: str = "relu"
    upsample_fn: str = "nearest"
    latent_channels: int = 4
    upsampling_scaling_factor: int = 2
    num_encoder_blocks: Sequence[int] = (1, 3, 3, 3)
    num_decoder_blocks: Sequence[int] = (3, 3, 3, 1)
    scaling_factor: float = 1.0
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, cfg: dict) -> "TAEConfig":
        names = {f for f in cls.__dataclass_fields__ if f != "extra"}
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in names}
        return cls(**known, extra={k: v for k, v in cfg.items() if k not in names})

    @classmethod
    def from_file(cls, path: str) -> "TAEConfig":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def validate(self) -> None:
        """ValueError for a config that cannot describe the temporal autoencoder."""
        for name in ("encoder_block_out_channels", "decoder_block_out_channels", "num_encoder_blocks",
                     "num_decoder_blocks"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or not 1 <= len(v) <= 8 or \
                    not all(type(x) is int and 0 <= x <= 4096 for x in v):
                raise ValueError(f"\"{name}\" is {list(v) if isinstance(v, tuple) else v!r}, not a list of "
                                 f"1..8 whole numbers in 0..4096")
        if len(self.encoder_block_out_channels) != len(self.num_encoder_blocks) or \
                len(self.decoder_block_out_channels) != len(self.num_decoder_blocks):
            raise ValueError("block_out_channels and num_*_blocks must have the same length")
        if sum(self.num_encoder_blocks) != sum(self.num_decoder_blocks):
            raise ValueError(f"the TPM pairs every decoder block with an encoder block, but the config has "
                             f"{sum(self.num_encoder_blocks)} encoder and {sum(self.num_decoder_blocks)} decoder "
                             f"blocks")
        enc = [c for c, n in zip(self.encoder_block_out_channels, self.num_encoder_blocks) for _ in range(n)]
        dec = [c for c, n in zip(self.decoder_block_out_channels, self.num_decoder_blocks) for _ in range(n)]
        if enc[::-1] != dec:
            raise ValueError(f"decoder block widths {dec} are not the encoder's {enc} reversed, which the TPM "
                             f"needs")
        for name in ("in_channels", "out_channels", "latent_channels", "upsampling_scaling_factor"):
            v = getattr(self, name)
            if type(v) is not int or not 1 <= v <= 1024:
                raise ValueError(f"\"{name}\" is {v!r}, not a whole number in 1..1024")
        if not (isinstance(self.scaling_factor, (int, float)) and math.isfinite(self.scaling_factor)
                and self.scaling_factor > 0):
            raise ValueError(f"\"scaling_factor\" is {self.scaling_factor!r}, not a positive number")
        _activation(self.act_fn)

    @property
    def scale(self) -> int:
        """Pixels per latent pixel: the encoder halves per stage after the first."""
        return 2 ** (len(self.encoder_block_out_channels) - 1)


class TPMBlock(nn.Module):
    """TAESD residual block (3 convs, skip, ReLU) with the temporal processor: pooled current and
    previous features, concatenated along the flattened spatial axis, a 1-D conv pair, an alpha mix of
    the two halves, upsampled back and added with weight 0.1."""

    def __init__(self, cin: int, cout: int, act_fn: str):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), _activation(act_fn),
                                  nn.Conv2d(cout, cout, 3, padding=1), _activation(act_fn),
                                  nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()
        self.fuse = nn.ReLU()
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.temporal_processor = nn.Sequential(nn.Conv1d(cout, cout, 3, padding=1), _activation(act_fn),
                                                nn.Conv1d(cout, cout, 3, padding=1))

    def forward(self, x: torch.Tensor, prev_pooled: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.conv(x)
        if prev_pooled is not None:
            h = h + TPM_GAIN * self.temporal(h, prev_pooled)
        return self.fuse(h + self.skip(x))

    def temporal(self, h: torch.Tensor, prev_pooled: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = h.shape
        cur = F.avg_pool2d(h, POOL)
        ph, pw = cur.shape[-2:]
        if prev_pooled.shape != cur.shape:
            raise ValueError(f"TPM: previous features {tuple(prev_pooled.shape)} do not match the current "
                             f"{tuple(cur.shape)}; the warped previous frame must have the output's size")
        seq = self.temporal_processor(torch.cat([cur.reshape(b, c, -1), prev_pooled.reshape(b, c, -1)], dim=2))
        n = ph * pw
        mixed = self.alpha * seq[:, :, :n].reshape(b, c, ph, pw) + (1 - self.alpha) * seq[:, :, -n:].reshape(b, c, ph, pw)
        return F.interpolate(mixed, size=(hh, ww), mode="bilinear", align_corners=False)


class TinyEncoder(nn.Module):
    def __init__(self, cfg: TAEConfig):
        super().__init__()
        layers: List[nn.Module] = []
        for i, (ch, n) in enumerate(zip(cfg.encoder_block_out_channels, cfg.num_encoder_blocks)):
            layers.append(nn.Conv2d(cfg.in_channels, ch, 3, padding=1) if i == 0 else
                          nn.Conv2d(ch, ch, 3, padding=1, stride=2, bias=False))
            layers.extend(TPMBlock(ch, ch, cfg.act_fn) for _ in range(n))
        layers.append(nn.Conv2d(cfg.encoder_block_out_channels[-1], cfg.latent_channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in -1..1 -> latent [B,C_lat,H/s,W/s] (unused by the 4-step loop, kept for training)."""
        return self.layers((image + 1) / 2)

    def pooled_features(self, image: torch.Tensor) -> List[torch.Tensor]:
        """4x4-pooled output of every block for the TPM, encoder order. The -1..1 image goes in as it
        is (the authors' feature path skips the (x+1)/2 of ``forward``)."""
        feats, h = [], image
        for layer in self.layers[:-1]:  # the latent conv is not needed for features
            h = layer(h)
            if isinstance(layer, TPMBlock):
                feats.append(F.avg_pool2d(h, POOL))
        return feats


class TemporalDecoder(nn.Module):
    def __init__(self, cfg: TAEConfig):
        super().__init__()
        chans, counts = cfg.decoder_block_out_channels, cfg.num_decoder_blocks
        layers: List[nn.Module] = [nn.Conv2d(cfg.latent_channels, chans[0], 3, padding=1), _activation(cfg.act_fn)]
        for i, (ch, n) in enumerate(zip(chans, counts)):
            last = i == len(chans) - 1
            layers.extend(TPMBlock(ch, ch, cfg.act_fn) for _ in range(n))
            if not last:
                layers.append(nn.Upsample(scale_factor=cfg.upsampling_scaling_factor, mode=cfg.upsample_fn))
            layers.append(nn.Conv2d(ch, cfg.out_channels if last else ch, 3, padding=1, bias=last))
        self.layers = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor, temporal: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """latent [B,C,h,w] -> image [B,3,sh,sw] in about -1..1; ``temporal`` is the encoder's
        pooled features of the warped previous output in *encoder* order (None on the first frame)."""
        prev = list(temporal)[::-1] if temporal is not None else None
        h, k = torch.tanh(latent / 3) * 3, 0
        for layer in self.layers:
            if isinstance(layer, TPMBlock):
                h = layer(h, prev[k] if prev is not None else None)
                k += 1
            else:
                h = layer(h)
        return h * 2 - 1


class TemporalTAE(nn.Module):
    """``encoder`` + ``decoder`` with the released names; ``decode(latent / scaling_factor, features)``
    is what the pipeline calls, ``features(warped_prev)`` what it feeds the decoder."""

    def __init__(self, cfg: TAEConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.encoder = TinyEncoder(cfg)
        self.decoder = TemporalDecoder(cfg)

    def features(self, image: torch.Tensor) -> List[torch.Tensor]:
        return self.encoder.pooled_features(image)

    def decode(self, latent: torch.Tensor, temporal: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        return self.decoder(latent / self.config.scaling_factor, temporal)
