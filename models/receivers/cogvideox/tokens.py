"""CogVideoX's DiT with MetaSR metadata tokens (MetaSR Eq. 7-9), on diffusers' own modules.

Each metadata latent is patch-embedded by the transformer's own patch embedding and appended to the
visual tokens; it receives the positional encoding of the visual token it is aligned with (the same
sincos vector for CogVideoX-2B, the same RoPE frequencies for 5B / 1.5), so the blocks fuse it through
their existing attention and no module is added. Only the visual tokens are read out. With no
metadata this is, operation for operation, ``CogVideoXTransformer3DModel.forward``.

Positions are those of the *whole* latent video, sliced to the window being run, so a tile sees the
same positions it would have in an untiled run.
"""
import torch
from torch.utils.checkpoint import checkpoint


class Positions:
    """Positional encodings of a full latent grid ``[F, H, W]`` (F counted after the 2-frame
    duplication of 1.5 models), sliced per window."""

    def __init__(self, transformer, frames: int, height: int, width: int, device):
        cfg = transformer.config
        self.p, self.pt = cfg.patch_size, cfg.patch_size_t or 1
        gh, gw, gt = height // self.p, width // self.p, frames // self.pt
        self.rotary = bool(cfg.use_rotary_positional_embeddings)
        if cfg.use_learned_positional_embeddings:
            raise ValueError("learned positional embeddings (CogVideoX-5b-I2V) are image-to-video "
                             "models and are not supported; use a text-to-video CogVideoX or DOVE.")
        if self.rotary:
            from diffusers.models.embeddings import get_3d_rotary_pos_embed
            # DOVE's call: "slice" grid with max_size = the grid itself.
            cos, sin = get_3d_rotary_pos_embed(
                embed_dim=cfg.attention_head_dim, crops_coords=None, grid_size=(gh, gw),
                temporal_size=gt, grid_type="slice", max_size=(gh, gw), device=device)
            self.grid = (cos.reshape(gt, gh, gw, -1), sin.reshape(gt, gh, gw, -1))
        else:
            pe = transformer.patch_embed
            frames_px = (frames - 1) * pe.temporal_compression_ratio + 1
            pos = pe._get_positional_embeddings(height, width, frames_px, device=device)
            self.grid = pos[0, pe.max_text_seq_length:].reshape(gt, gh, gw, -1)

    def window(self, box):
        """Encodings of the tokens inside latent box ``(t0, t1, h0, h1, w0, w1)``, flattened in token
        order: ``(cos, sin)`` each ``[S, head_dim]`` for RoPE, else ``[S, dim]`` sincos vectors."""
        t0, t1, h0, h1, w0, w1 = box
        sl = (slice(t0 // self.pt, t1 // self.pt), slice(h0 // self.p, h1 // self.p),
              slice(w0 // self.p, w1 // self.p))
        if self.rotary:
            return tuple(g[sl].reshape(-1, g.shape[-1]) for g in self.grid)
        return self.grid[sl].reshape(-1, self.grid.shape[-1])


def _embed(transformer, text, latent, pos):
    """Patch-embed ``latent [B,F,C,h,w]`` with the transformer's own embedding -> ``[B, L+S, D]``
    (text tokens first); absolute positions come from ``pos`` instead of the window's own grid."""
    pe = transformer.patch_embed
    if pos is None:
        return pe(text, latent)
    saved = pe.use_positional_embeddings
    pe.use_positional_embeddings = False
    try:
        emb = pe(text, latent)
    finally:
        pe.use_positional_embeddings = saved
    n_text = text.shape[1]
    # the reference adds a zero vector to text tokens; adding only to visual ones is bit-identical
    return torch.cat([emb[:, :n_text], emb[:, n_text:] + pos.to(emb.dtype)], dim=1)


def forward(transformer, latent, metadata, text, timestep, positions):
    """One DiT call with metadata tokens.

    latent:    [B,F,C,h,w] visual latent window (F a multiple of ``patch_size_t``)
    metadata:  list of K latents shaped like ``latent`` (K = 0 is plain CogVideoX / DOVE)
    text:      [B,L,text_dim] prompt embedding
    timestep:  [B] long
    positions: ``Positions.window(box)`` for this window
    returns    [B,F,C,h,w] the model output for the visual tokens (v-prediction)
    """
    tf = transformer
    b, f, c, h, w = latent.shape
    for m in metadata:
        if m.shape != latent.shape:
            raise ValueError(f"metadata latent {tuple(m.shape)} does not match the video latent "
                             f"{tuple(latent.shape)}")
    t_emb = tf.time_proj(timestep).to(dtype=latent.dtype)
    emb = tf.time_embedding(t_emb, None)
    if tf.ofs_embedding is not None:  # 1.5 image-to-video; DOVE and T2V models have none
        raise ValueError("this transformer needs an 'ofs' input (CogVideoX1.5 I2V); use a T2V model.")

    rotary = tf.config.use_rotary_positional_embeddings
    abs_pos = None if rotary else positions
    tokens = tf.embedding_dropout(_embed(tf, text, latent, abs_pos))
    n_text = text.shape[1]
    text_tokens, visual = tokens[:, :n_text], tokens[:, n_text:]
    n_visual = visual.shape[1]
    if metadata:
        meta = [tf.embedding_dropout(_embed(tf, text, m, abs_pos))[:, n_text:] for m in metadata]
        hidden = torch.cat([visual, *meta], dim=1)
    else:
        hidden = visual
    rope = None
    if rotary:
        k = 1 + len(metadata)
        rope = positions if k == 1 else tuple(p.repeat(k, 1) for p in positions)

    for block in tf.transformer_blocks:
        if torch.is_grad_enabled() and tf.gradient_checkpointing:
            hidden, text_tokens = checkpoint(block, hidden, text_tokens, emb, rope, use_reentrant=False)
        else:
            hidden, text_tokens = block(hidden_states=hidden, encoder_hidden_states=text_tokens,
                                        temb=emb, image_rotary_emb=rope)

    hidden = hidden[:, :n_visual]  # metadata tokens only condition; they are never read out
    hidden = tf.norm_final(hidden)
    hidden = tf.norm_out(hidden, temb=emb)
    hidden = tf.proj_out(hidden)
    p, p_t = tf.config.patch_size, tf.config.patch_size_t
    if p_t is None:
        out = hidden.reshape(b, f, h // p, w // p, -1, p, p)
        return out.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
    out = hidden.reshape(b, (f + p_t - 1) // p_t, h // p, w // p, -1, p_t, p, p)
    return out.permute(0, 1, 5, 4, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(1, 2)
