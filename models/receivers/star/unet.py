"""STAR's video U-Net with its ControlNet and LIEM (Local Information Enhancement Module), written in the
diffusers style (a config dataclass + modules) and key-compatible with the released checkpoints
(``SherryX/STAR`` ``I2VGen-XL-based/light_deg.pt`` / ``heavy_deg.pt``: the state dict of the authors'
``ControlledV2VUNet``, 2,247 tensors at full size).

Layout (NJU-PCALab/STAR ``video_to_video/modules/unet_v2v.py``, an I2VGen-XL / ModelScope video U-Net):

- every ResBlock is followed by a 4-layer temporal convolution (key ``temopral_conv``, the authors'
  spelling) over ``[B, C, F, H, W]``;
- at the 1, 1/2 and 1/4 scales a spatial transformer (self-attention, cross-attention to the text, GEGLU)
  and a temporal transformer (self-attention twice, along the frames of each pixel); the input block
  also has a temporal transformer right after the first convolution, ``num_heads x head_dim`` wide;
- LIEM: before the first attention of every spatial block, ``x * sigmoid(conv7x7([max_c x, mean_c x]))``
  (the code's order is max then mean; the paper writes AvgPool, MaxPool); in temporal blocks two
  ``Linear(2 -> 1)`` gates on ``[max_c, mean_c]`` of each frame token, before each attention;
  the attention's residual adds the block input, not the gated one;
- the ControlNet (``VideoControlNet``) is a copy of the encoder and middle block; the hint (the LR
  video's latent) enters through ``input_hint_block`` (3x3 conv, zero-initialised) added after the
  first convolution; 13 zero 1x1 convs give the residuals added to the U-Net's skips and middle.

Quirks kept for parity (marked ``# STAR:`` where they are):

- downsampling convs pad the height by 2 and the width by 1, and every upsampling crops one row at the
  top and the bottom: the latent height must be 2 (mod 8) and the width a multiple of 8 (the authors
  pad every input to a 720 x 1280 canvas, latent 90 x 160); :func:`latent_size_ok` checks it;
- GroupNorm over ``[C, F, H, W]`` in the temporal layers: statistics span the frames of a chunk, so
  the output of a frame depends on the chunk it is computed in;
- the sinusoidal timestep embedding is ``[cos, sin]`` with frequencies ``10000^(-i / half)``.

Shapes: ``x`` ``[B, 4, F, h, w]`` latent, ``t`` ``[B]`` timesteps, ``context`` ``[B, L, context_dim]``
text tokens, ``hint`` ``[B, 4, F, h, w]`` or None. Attention runs through
``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on a GPU).
Pure torch; nothing here imports diffusers, comfy or the authors' code.
"""
import dataclasses
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclasses.dataclass(frozen=True)
class STARConfig:
    """What the released model is built from (``ControlledV2VUNet()``'s defaults); tests shrink it."""
    in_channels: int = 4
    out_channels: int = 4
    dim: int = 320
    dim_mult: Tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    head_dim: int = 64
    num_heads: int = 8                  # the input block's temporal transformer: num_heads x head_dim wide
    context_dim: int = 1024             # OpenCLIP ViT-H/14 text width
    attn_scales: Tuple[float, ...] = (1.0, 0.5, 0.25)
    hint_channels: int = 4
    groups: int = 32                    # GroupNorm groups everywhere

    @property
    def embed_dim(self) -> int:
        return self.dim * 4

    @classmethod
    def from_dict(cls, d: dict) -> "STARConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - {"_class_name"})
        if unknown:
            raise ValueError(f"STAR config: unknown keys {unknown}; known: {sorted(names)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names}
        return cls(**kw)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def latent_size_ok(h: int, w: int, levels: int = 3) -> bool:
    """Whether an ``h x w`` latent passes STAR's down/up path unchanged (h = 2 mod 8, w = 0 mod 8 for
    three downsamplings)."""
    for _ in range(levels):
        if h % 2 or w % 2:
            return False
        h, w = h // 2 + 1, w // 2          # STAR: pad (2, 1) at stride 2
    return True


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[B] -> [B, dim] float32: ``[cos(t f), sin(t f)]``, f = 10000^(-i / half) (STAR's order)."""
    half = dim // 2
    t = t.float()
    freqs = torch.pow(10000, -torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = torch.outer(t, freqs)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


@dataclasses.dataclass
class Ctx:
    """What every block may read: the timestep embedding ``[B F, E]``, the text ``[B F, L, D]`` and the
    number of frames of the batch."""
    emb: torch.Tensor
    context: torch.Tensor
    frames: int
    grad_checkpoint: bool = False


def _group_norm(groups: int, channels: int, eps: float = 1e-5) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=eps)


# --------------------------------------------------------------------------- attention
class Attention(nn.Module):
    """Multi-head attention: queries from ``x`` [N, L, dim], keys/values from ``context`` (or ``x``)."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: Optional[int] = None):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Identity())   # index 1: the authors' dropout

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        c = x if context is None else context
        n, lq, _ = x.shape
        split = (lambda z: z.view(n, z.shape[1], self.heads, self.head_dim).transpose(1, 2))
        q, k, v = split(self.to_q(x)), split(self.to_k(c)), split(self.to_v(c))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(n, lq, self.heads * self.head_dim))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class SpatialGate(nn.Module):
    """LIEM, spatial: ``x * sigmoid(conv7x7([max_c x, mean_c x]))`` on [N, C, H, W]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, x):
        stats = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv1(stats)) * x


class TemporalGate(nn.Module):
    """LIEM, temporal: ``x * sigmoid(Linear([max_c x, mean_c x]))`` on [N, F, C] frame tokens."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Linear(2, 1, bias=False)

    def forward(self, x):
        stats = torch.cat([x.amax(dim=-1, keepdim=True), x.mean(dim=-1, keepdim=True)], dim=-1)
        return torch.sigmoid(self.conv1(stats)) * x


class TransformerBlock(nn.Module):
    """One attention block with LIEM. ``kind="space"``: self-attention on the gated tokens, cross-
    attention to the text, GEGLU. ``kind="temp"``: two self-attentions along the frames, each on
    tokens gated by its own LIEM gate."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: Optional[int], kind: str):
        super().__init__()
        self.kind = kind
        self.attn1 = Attention(dim, heads, head_dim)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, heads, head_dim, context_dim if kind == "space" else None)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        if kind == "space":
            self.local1 = SpatialGate()
        else:
            self.local1, self.local2 = TemporalGate(), TemporalGate()

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor] = None, hw=None) -> torch.Tensor:
        if self.kind == "space":                      # x [N, H W, C]
            h, w = hw
            n, _, c = x.shape
            gated = self.local1(x.transpose(1, 2).reshape(n, c, h, w)).reshape(n, c, h * w).transpose(1, 2)
            x = self.attn1(self.norm1(gated)) + x
            x = self.attn2(self.norm2(x), context) + x
        else:                                         # x [N, F, C]
            x = self.attn1(self.norm1(self.local1(x))) + x
            x = self.attn2(self.norm2(self.local2(x))) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """[B F, C, H, W]: GroupNorm, linear in, one space block (text cross-attention), linear out, + x."""

    def __init__(self, channels: int, head_dim: int, context_dim: int, groups: int):
        super().__init__()
        heads = channels // head_dim
        self.norm = _group_norm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, heads * head_dim)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(heads * head_dim, heads, head_dim,
                                                                  context_dim, "space")])
        self.proj_out = nn.Linear(channels, heads * head_dim)   # STAR: (in, inner), equal widths here

    def forward(self, x: torch.Tensor, ctx: Ctx) -> torch.Tensor:
        n, c, h, w = x.shape
        y = self.proj_in(self.norm(x).reshape(n, c, h * w).transpose(1, 2))
        for block in self.transformer_blocks:
            y = block(y, ctx.context, (h, w))
        y = self.proj_out(y)
        return y.transpose(1, 2).reshape(n, -1, h, w) + x


class TemporalTransformer(nn.Module):
    """[B F, C, H, W] seen as [B, C, F, H, W]: GroupNorm over (C, F, H, W), 1x1 conv in, one temporal
    block on the F tokens of each pixel, 1x1 conv out, + x."""

    def __init__(self, channels: int, heads: int, head_dim: int, groups: int):
        super().__init__()
        inner = heads * head_dim
        self.norm = _group_norm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv1d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(inner, heads, head_dim, None, "temp")])
        self.proj_out = nn.Conv1d(inner, channels, 1)

    def forward(self, x: torch.Tensor, ctx: Ctx) -> torch.Tensor:
        bf, c, h, w = x.shape
        b, f = bf // ctx.frames, ctx.frames
        v = x.view(b, f, c, h, w).transpose(1, 2)                          # [B, C, F, H, W]
        y = self.norm(v).permute(0, 3, 4, 1, 2).reshape(b * h * w, c, f)   # [(B H W), C, F]
        y = self.proj_in(y).transpose(1, 2)                                 # [(B H W), F, inner]
        for block in self.transformer_blocks:
            y = block(y)
        y = self.proj_out(y.transpose(1, 2))                                # [(B H W), C, F]
        y = y.view(b, h, w, c, f).permute(0, 4, 3, 1, 2).reshape(bf, c, h, w)
        return y + x


# --------------------------------------------------------------------------- convolutions
class TemporalConv(nn.Module):
    """Four (GroupNorm, SiLU, 3x1x1 conv) layers over [B, C, F, H, W], residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()

        def layer(first):
            mods = [_group_norm(groups, channels), nn.SiLU()] + ([] if first else [nn.Identity()])
            return nn.Sequential(*mods, nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)))
        self.conv1, self.conv2, self.conv3, self.conv4 = layer(True), layer(False), layer(False), layer(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv4(self.conv3(self.conv2(self.conv1(x))))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + timestep embedding, GroupNorm-SiLU-conv, skip; then the temporal conv."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int):
        super().__init__()
        self.in_layers = nn.Sequential(_group_norm(groups, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, cout))
        self.out_layers = nn.Sequential(_group_norm(groups, cout), nn.SiLU(), nn.Identity(),
                                        nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)
        self.temopral_conv = TemporalConv(cout, groups)     # STAR's key spelling

    def forward(self, x: torch.Tensor, ctx: Ctx) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(ctx.emb).to(h.dtype)[:, :, None, None]
        h = self.skip_connection(x) + self.out_layers(h)
        bf, c, hh, ww = h.shape
        v = h.view(bf // ctx.frames, ctx.frames, c, hh, ww).transpose(1, 2)
        return self.temopral_conv(v).transpose(1, 2).reshape(bf, c, hh, ww)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=(2, 1))   # STAR: height padded by 2

    def forward(self, x: torch.Tensor, ctx: Ctx = None) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, ctx: Ctx = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")[..., 1:-1, :]   # STAR: one row off each end
        return self.conv(x)


class Stage(nn.ModuleList):
    """A U-Net stage: its modules in order on [B F, C, H, W] (a bare Conv2d takes no context)."""

    def forward(self, x: torch.Tensor, ctx: Ctx, after_first=None) -> torch.Tensor:
        for i, m in enumerate(self):
            x = m(x) if isinstance(m, nn.Conv2d) else _maybe_checkpoint(m, x, ctx)
            if i == 0 and after_first is not None:
                x = x + after_first
        return x


def _maybe_checkpoint(m, x, ctx):
    if ctx.grad_checkpoint and torch.is_grad_enabled() and x.requires_grad:
        return checkpoint(m, x, ctx, use_reentrant=False)
    return m(x, ctx)


def _attn(cfg: STARConfig, ch: int) -> List[nn.Module]:
    return [SpatialTransformer(ch, cfg.head_dim, cfg.context_dim, cfg.groups),
            TemporalTransformer(ch, ch // cfg.head_dim, cfg.head_dim, cfg.groups)]


def _encoder(cfg: STARConfig):
    """input_blocks and middle_block of the U-Net and of the ControlNet; returns (blocks, middle,
    skip channels, [channels of each input block's output])."""
    emb, g = cfg.embed_dim, cfg.groups
    blocks = nn.ModuleList([Stage([nn.Conv2d(cfg.in_channels, cfg.dim, 3, padding=1),
                                   TemporalTransformer(cfg.dim, cfg.num_heads, cfg.head_dim, g)])])
    skips = [cfg.dim]
    ch, scale = cfg.dim, 1.0
    for level, mult in enumerate(cfg.dim_mult):
        out = cfg.dim * mult
        for _ in range(cfg.num_res_blocks):
            stage = [ResBlock(ch, out, emb, g)] + (_attn(cfg, out) if scale in cfg.attn_scales else [])
            blocks.append(Stage(stage))
            ch = out
            skips.append(ch)
        if level != len(cfg.dim_mult) - 1:
            blocks.append(Downsample(ch))
            skips.append(ch)
            scale /= 2
    middle = Stage([ResBlock(ch, ch, emb, g)] + _attn(cfg, ch) + [ResBlock(ch, ch, emb, g)])
    return blocks, middle, skips, ch, scale


class VideoControlNet(nn.Module):
    """The encoder copy: [B, 4, F, h, w] + hint -> 13 residuals ([B F, C, h_i, w_i]; 12 for the skips,
    the last for the middle block), each through a zero-initialised 1x1 conv."""

    def __init__(self, cfg: STARConfig):
        super().__init__()
        self.config = cfg
        emb = cfg.embed_dim
        self.time_embed = nn.Sequential(nn.Linear(cfg.dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.input_blocks, self.middle_block, skips, ch, _ = _encoder(cfg)
        self.zero_convs = nn.ModuleList([nn.Sequential(nn.Conv2d(c, c, 1)) for c in skips])
        self.middle_block_out = nn.Sequential(nn.Conv2d(ch, ch, 1))
        self.input_hint_block = nn.Conv2d(cfg.hint_channels, cfg.dim, 3, padding=1)

    def forward(self, x: torch.Tensor, ctx: Ctx, hint: Optional[torch.Tensor]) -> List[torch.Tensor]:
        """x [B F, C, h, w] (already flattened), hint [B F, 4, h, w] or None."""
        add = None if hint is None else self.input_hint_block(hint)
        outs = []
        for i, (block, zero) in enumerate(zip(self.input_blocks, self.zero_convs)):
            x = block(x, ctx, add) if i == 0 else block(x, ctx)
            outs.append(zero(x))
        x = self.middle_block(x, ctx)
        outs.append(self.middle_block_out(x))
        return outs


class STARUNet(nn.Module):
    """``ControlledV2VUNet``: the video U-Net with its ControlNet as the child ``VideoControlNet``.

    ``forward(x [B, C, F, h, w], t [B], context [B, L, D], hint [B, 4, F, h, w] or None)`` ->
    v-prediction ``[B, C, F, h, w]``. ``grad_checkpoint`` recomputes blocks in the backward pass
    (fine-tuning)."""

    def __init__(self, cfg: STARConfig = STARConfig()):
        super().__init__()
        self.config = cfg
        emb = cfg.embed_dim
        self.time_embed = nn.Sequential(nn.Linear(cfg.dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.input_blocks, self.middle_block, skips, ch, scale = _encoder(cfg)
        self.output_blocks = nn.ModuleList()
        mults = list(cfg.dim_mult)[::-1]
        for level, mult in enumerate(mults):
            out = cfg.dim * mult
            for j in range(cfg.num_res_blocks + 1):
                stage = [ResBlock(ch + skips.pop(), out, emb, cfg.groups)]
                stage += _attn(cfg, out) if scale in cfg.attn_scales else []
                ch = out
                if level != len(mults) - 1 and j == cfg.num_res_blocks:
                    stage.append(Upsample(ch))
                    scale *= 2
                self.output_blocks.append(Stage(stage))
        self.out = nn.Sequential(_group_norm(cfg.groups, ch), nn.SiLU(), nn.Conv2d(ch, cfg.out_channels, 3, padding=1))
        self.VideoControlNet = VideoControlNet(cfg)
        self.grad_checkpoint = False

    def context(self, t: torch.Tensor, context: torch.Tensor, frames: int, time_embed: nn.Module) -> Ctx:
        emb = time_embed(timestep_embedding(t, self.config.dim).to(context.dtype))
        return Ctx(emb.repeat_interleave(frames, dim=0), context.repeat_interleave(frames, dim=0), frames,
                   self.grad_checkpoint)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                hint: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, c, f, h, w = x.shape
        if not latent_size_ok(h, w, len(self.config.dim_mult) - 1):
            raise ValueError(f"STAR U-Net: a {w}x{h} latent does not survive its down/up path; pad the "
                             f"height to 2 (mod 8) and the width to a multiple of 8 (the receiver does)")
        t = t.reshape(-1).expand(b) if t.numel() in (1, b) else t
        flat = x.transpose(1, 2).reshape(b * f, c, h, w)
        hint_flat = None if hint is None else hint.transpose(1, 2).reshape(b * f, -1, h, w).to(x.dtype)
        control = self.VideoControlNet(flat, self.context(t, context, f, self.VideoControlNet.time_embed),
                                       hint_flat)
        ctx = self.context(t, context, f, self.time_embed)
        skips = []
        y = flat
        for block in self.input_blocks:
            y = block(y, ctx)
            skips.append(y)
        y = self.middle_block(y, ctx) + control.pop()
        for block in self.output_blocks:
            y = block(torch.cat([y, skips.pop() + control.pop()], dim=1), ctx)
        y = self.out(y)
        return y.view(b, f, -1, h, w).transpose(1, 2)


def parameter_count(cfg: STARConfig = STARConfig()) -> int:
    """Number of parameters of a model of ``cfg`` (built on the meta device, no memory)."""
    with torch.device("meta"):
        return sum(p.numel() for p in STARUNet(cfg).parameters())


def key_shapes(cfg: STARConfig = STARConfig()) -> dict:
    """{state-dict key: shape} of a model of ``cfg`` (meta device)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in STARUNet(cfg).state_dict().items()}


__all__ = ["STARConfig", "STARUNet", "VideoControlNet", "latent_size_ok", "timestep_embedding",
           "parameter_count", "key_shapes"]
