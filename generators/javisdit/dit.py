"""JavisDiT v0.1's denoiser (VASTDiT3) in plain torch, under the official parameter names.

Per layer, in the published order: the video spatial and temporal blocks (self-attention, T5
cross-attention), the same for audio, the spatio-temporal prior cross-attention for video then
audio, and the bidirectional video-audio attention. The size is read off the checkpoint, so the
3.4B release and tiny test files load through the same code.

Layers with weights come from ``operations`` (``torch.nn`` by default; ComfyUI passes its casting
ops), and the few raw parameters are cast to the activations' dtype where they are used, so the
model runs in whatever dtype its host picks. The prior cross-attention attends within each
sample, as the search reference's fixed copy does (the original mixes the batch's priors).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ...core.checkpoints import CheckpointError, check_keys, read_folder

PUBLISHED = "https://huggingface.co/JavisVerse/JavisDiT-v0.1-jav-240p4s"


@dataclass(frozen=True)
class DiTConfig:
    """The sizes that build a VASTDiT3 (the 3.4B release's defaults)."""

    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_hidden: int = 4608
    in_channels: int = 4
    out_channels: int = 8
    patch_size: tuple[int, int, int] = (1, 2, 2)
    audio_in_channels: int = 8
    audio_out_channels: int = 16
    audio_patch_size: tuple[int, int] = (4, 1)
    caption_channels: int = 4096
    text_tokens: int = 300
    prior_channels: int = 128
    spatial_prior_len: int = 32
    temporal_prior_len: int = 32
    qk_norm: bool = True
    input_sq_size: int = 512

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def _f(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.to(device=like.device, dtype=like.dtype)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def _norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, C) -> (B, heads, N, C / heads)."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).flatten(2)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, device=None, dtype=None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6)
        return _f(self.weight, x) * y.to(x.dtype)


class Rotary(nn.Module):
    """Rotary position embedding over the temporal axis (interleaved pairs; ``rope.freqs``)."""

    def __init__(self, head_dim: int, device=None) -> None:
        super().__init__()
        freqs = 1.0 / 10000 ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotates (..., N, D) along N."""
        pos = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)
        angles = (pos[:, None] * self.freqs.float()[None]).repeat_interleave(2, dim=-1)
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return x * angles.cos().to(x.dtype) + rotated * angles.sin().to(x.dtype)


class Mlp(nn.Module):
    """timm's Mlp layout (``fc1``, tanh-GELU, ``fc2``)."""

    def __init__(self, dim: int, hidden: int, out: int, ops, device=None, dtype=None) -> None:
        super().__init__()
        self.fc1 = ops.Linear(dim, hidden, device=device, dtype=dtype)
        self.fc2 = ops.Linear(hidden, out, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, qk_norm: bool, ops, rope: Rotary | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = ops.Linear(dim, dim * 3, device=device, dtype=dtype)
        self.q_norm = RMSNorm(dim // heads, device, dtype) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(dim // heads, device, dtype) if qk_norm else nn.Identity()
        self.proj = ops.Linear(dim, dim, device=device, dtype=dtype)
        self._rope = [rope]  # shared with the model, not a submodule of this block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        rope = self._rope[0]
        if rope is not None:
            q, k = rope(q), rope(k)
        return self.proj(_merge(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    """Queries of each sample attend to that sample's condition tokens (``mask``: valid ones)."""

    def __init__(self, dim: int, heads: int, ops, device=None, dtype=None) -> None:
        super().__init__()
        self.heads = heads
        self.q_linear = ops.Linear(dim, dim, device=device, dtype=dtype)
        self.kv_linear = ops.Linear(dim, dim * 2, device=device, dtype=dtype)
        self.proj = ops.Linear(dim, dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, cond: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        q = _heads(self.q_linear(x), self.heads)
        k, v = (_heads(t, self.heads) for t in self.kv_linear(cond).chunk(2, dim=-1))
        bias = None if mask is None else mask[:, None, None, :].bool()
        return self.proj(_merge(F.scaled_dot_product_attention(q, k, v, attn_mask=bias)))


class STBlock(nn.Module):
    """STDiT3Block: adaLN-modulated self-attention over space (within each frame) or time (at
    each position), cross-attention to the text, and an MLP."""

    def __init__(self, cfg: DiTConfig, temporal: bool, rope: Rotary | None, ops,
                 device=None, dtype=None) -> None:
        super().__init__()
        c = cfg.hidden_size
        self.temporal = temporal
        self.attn = SelfAttention(c, cfg.num_heads, cfg.qk_norm, ops, rope if temporal else None,
                                  device, dtype)
        self.cross_attn = CrossAttention(c, cfg.num_heads, ops, device, dtype)
        self.mlp = Mlp(c, cfg.mlp_hidden, c, ops, device, dtype)
        self.scale_shift_table = nn.Parameter(torch.zeros(6, c, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor | None,
                t: torch.Tensor, T: int, S: int) -> torch.Tensor:
        B, _, C = x.shape
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = (
            _f(self.scale_shift_table, x)[None] + t.view(B, 6, C)).unbind(1)
        h = _modulate(_norm(x), shift_a[:, None], scale_a[:, None]).view(B, T, S, C)
        if self.temporal:
            h = self.attn(h.transpose(1, 2).flatten(0, 1)).view(B, S, T, C).transpose(1, 2)
        else:
            h = self.attn(h.flatten(0, 1)).view(B, T, S, C)
        x = x + gate_a[:, None] * h.reshape(B, T * S, C)
        x = x + self.cross_attn(x, y, y_mask)
        h = self.mlp(_modulate(_norm(x), shift_m[:, None], scale_m[:, None]))
        return x + gate_m[:, None] * h


class PriorBlock(nn.Module):
    """CrossSTDiT3Block: cross-attention to the spatial prior, then to the temporal prior, then
    an MLP, each modulated by the 9-way ``st_t_block`` embedding. The prior is the same for every
    frame (spatial) and every position (temporal), so each sample's tokens attend to its prior."""

    def __init__(self, cfg: DiTConfig, ops, device=None, dtype=None) -> None:
        super().__init__()
        c = cfg.hidden_size
        self.spatial_cross_attn = CrossAttention(c, cfg.num_heads, ops, device, dtype)
        self.temporal_cross_attn = CrossAttention(c, cfg.num_heads, ops, device, dtype)
        self.mlp = Mlp(c, cfg.mlp_hidden, c, ops, device, dtype)
        self.scale_shift_table = nn.Parameter(torch.zeros(9, c, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, spatial: torch.Tensor, temporal: torch.Tensor,
                t: torch.Tensor) -> torch.Tensor:
        B, _, C = x.shape
        m = (_f(self.scale_shift_table, x)[None] + t.view(B, 9, C)).unbind(1)
        for (shift, scale, gate), attn, prior in ((m[0:3], self.spatial_cross_attn, spatial),
                                                  (m[3:6], self.temporal_cross_attn, temporal)):
            x = x + gate[:, None] * attn(_modulate(_norm(x), shift[:, None], scale[:, None]), prior)
        shift, scale, gate = m[6:9]
        return x + gate[:, None] * self.mlp(_modulate(_norm(x), shift[:, None], scale[:, None]))


class BiAttention(nn.Module):
    """BiMultiHeadAttention: video queries attend to audio and audio queries to video."""

    def __init__(self, m1: int, m2: int, dim: int, heads: int, ops, device=None, dtype=None) -> None:
        super().__init__()
        self.heads = heads
        kw = dict(device=device, dtype=dtype)
        self.m1_proj, self.m2_proj = ops.Linear(m1, dim, **kw), ops.Linear(m2, dim, **kw)
        self.values_m1_proj, self.values_m2_proj = ops.Linear(m1, dim, **kw), ops.Linear(m2, dim, **kw)
        self.out_m1_proj, self.out_m2_proj = ops.Linear(dim, m1, **kw), ops.Linear(dim, m2, **kw)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q1, q2 = _heads(self.m1_proj(x1), self.heads), _heads(self.m2_proj(x2), self.heads)
        v1, v2 = _heads(self.values_m1_proj(x1), self.heads), _heads(self.values_m2_proj(x2), self.heads)
        out1 = _merge(F.scaled_dot_product_attention(q1, q2, v2))
        out2 = _merge(F.scaled_dot_product_attention(q2, q1, v1))
        return self.out_m1_proj(out1), self.out_m2_proj(out2)


class VABlock(nn.Module):
    """CrossModalityBiAttentionBlock: normalised video and audio exchange information through
    BiAttention; learned per-channel gammas (zero at initialisation) scale the residuals."""

    def __init__(self, cfg: DiTConfig, ops, device=None, dtype=None) -> None:
        super().__init__()
        c = cfg.hidden_size
        self.cross_attn = BiAttention(c, c, c // 2, cfg.num_heads // 2, ops, device, dtype)
        self.gamma_m1 = nn.Parameter(torch.zeros(c, device=device, dtype=dtype))
        self.gamma_m2 = nn.Parameter(torch.zeros(c, device=device, dtype=dtype))

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dv, da = self.cross_attn(_norm(v), _norm(a))
        return v + _f(self.gamma_m1, v) * dv, a + _f(self.gamma_m2, a) * da


class CaptionEmbedder(nn.Module):
    """An MLP over condition tokens, with the learned null condition as ``y_embedding``."""

    def __init__(self, in_channels: int, hidden: int, tokens: int, ops, device=None, dtype=None) -> None:
        super().__init__()
        self.y_proj = Mlp(in_channels, hidden, hidden, ops, device, dtype)
        self.register_buffer("y_embedding", torch.zeros(tokens, in_channels, device=device, dtype=dtype))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.y_proj(y)


def _frequencies(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """The sinusoidal timestep features (cos first), in float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ScalarEmbedder(nn.Module):
    """TimestepEmbedder / SizeEmbedder: sinusoidal features -> Linear -> SiLU -> Linear."""

    def __init__(self, hidden: int, ops, device=None, dtype=None) -> None:
        super().__init__()
        self.mlp = nn.Sequential(ops.Linear(256, hidden, device=device, dtype=dtype), nn.SiLU(),
                                 ops.Linear(hidden, hidden, device=device, dtype=dtype))

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mlp(_frequencies(t).to(dtype))


class PatchEmbed(nn.Module):
    def __init__(self, conv, patch: tuple[int, ...], channels: int, hidden: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.patch = patch
        self.proj = conv(channels, hidden, kernel_size=patch, stride=patch, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, p in zip(reversed(x.shape[2:]), reversed(self.patch)):
            pads += [0, -size % p]
        return self.proj(F.pad(x, pads)).flatten(2).transpose(1, 2)


class FinalLayer(nn.Module):
    """T2IFinalLayer: adaLN (shift, scale from the timestep embedding) and a linear map."""

    def __init__(self, hidden: int, out: int, ops, device=None, dtype=None) -> None:
        super().__init__()
        self.linear = ops.Linear(hidden, out, device=device, dtype=dtype)
        self.scale_shift_table = nn.Parameter(torch.zeros(2, hidden, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shift, scale = (_f(self.scale_shift_table, x)[None] + t[:, None]).unbind(1)
        return self.linear(_modulate(_norm(x), shift[:, None], scale[:, None]))


def _sincos(pos: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    out = pos[:, None] * freqs[None]
    return torch.cat([out.sin(), out.cos()], dim=-1)


def video_position_embedding(dim: int, h: int, w: int, scale: float, base_size: int,
                             device=None) -> torch.Tensor:
    """PositionEmbedding2D: sin/cos of the column, then of the row, of each patch (row-major),
    on a grid stretched to ``base_size`` and divided by ``scale``. Shape (1, h * w, dim)."""
    half = dim // 2
    freqs = 1.0 / 10000 ** (torch.arange(0, half, 2, device=device).float() / half)
    rows = (torch.arange(h, device=device) / scale) * (base_size / h)
    cols = (torch.arange(w, device=device) / scale) * (base_size / w)
    row, col = rows.repeat_interleave(w), cols.repeat(h)
    return torch.cat([_sincos(col, freqs), _sincos(row, freqs)], dim=-1)[None]


def audio_position_embedding(dim: int, length: int, device=None) -> torch.Tensor:
    """PositionEmbedding over the mel bins: sin/cos of the bin index. Shape (1, length, dim)."""
    half = dim // 2
    freqs = 1.0 / 10000 ** (torch.arange(half, device=device).float() / half)
    return _sincos(torch.arange(length, device=device).float(), freqs)[None]


class VASTDiT3(nn.Module):
    """The joint audio-video denoiser. ``forward`` returns the model's outputs per modality in
    float32 (video 2 x 4 channels, audio 2 x 8; the first half is the velocity x0 - noise)."""

    def __init__(self, config: DiTConfig | None = None, device=None, dtype=None, operations=None,
                 **sizes: Any) -> None:
        super().__init__()
        cfg = config or DiTConfig(**{k: tuple(v) if isinstance(v, list) else v
                                     for k, v in sizes.items() if k in _FIELDS})
        ops = operations or nn
        self.config, self.dtype = cfg, dtype or torch.float32
        c, kw = cfg.hidden_size, dict(device=device, dtype=dtype)
        self.rope = Rotary(cfg.head_dim, device)
        self.x_embedder = PatchEmbed(ops.Conv3d, cfg.patch_size, cfg.in_channels, c, **kw)
        self.ax_embedder = PatchEmbed(ops.Conv2d, cfg.audio_patch_size, cfg.audio_in_channels, c, **kw)
        self.t_embedder = ScalarEmbedder(c, ops, **kw)
        self.fps_embedder = ScalarEmbedder(c, ops, **kw)
        self.t_block = nn.Sequential(nn.SiLU(), ops.Linear(c, 6 * c, **kw))
        self.st_t_block = nn.Sequential(nn.SiLU(), ops.Linear(c, 9 * c, **kw))
        self.y_embedder = CaptionEmbedder(cfg.caption_channels, c, cfg.text_tokens, ops, **kw)
        self.audio_y_embedder = CaptionEmbedder(cfg.caption_channels, c, cfg.text_tokens, ops, **kw)
        self.st_prior_embedder = CaptionEmbedder(
            cfg.prior_channels, c, cfg.spatial_prior_len + cfg.temporal_prior_len, ops, **kw)

        def blocks(make):
            return nn.ModuleList(make() for _ in range(cfg.depth))

        self.spatial_blocks = blocks(lambda: STBlock(cfg, False, None, ops, **kw))
        self.temporal_blocks = blocks(lambda: STBlock(cfg, True, self.rope, ops, **kw))
        self.audio_spatial_blocks = blocks(lambda: STBlock(cfg, False, None, ops, **kw))
        self.audio_temporal_blocks = blocks(lambda: STBlock(cfg, True, self.rope, ops, **kw))
        self.video_st_prior_blocks = blocks(lambda: PriorBlock(cfg, ops, **kw))
        self.audio_st_prior_blocks = blocks(lambda: PriorBlock(cfg, ops, **kw))
        self.va_cross_blocks = blocks(lambda: VABlock(cfg, ops, **kw))
        self.final_layer = FinalLayer(c, math.prod(cfg.patch_size) * cfg.out_channels, ops, **kw)
        self.audio_final_layer = FinalLayer(c, math.prod(cfg.audio_patch_size) * cfg.audio_out_channels,
                                            ops, **kw)

    def null_condition(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The learned unconditional inputs: the null caption (B, 1, 300, 4096) and the null
        spatial and temporal priors, as the reference's ``null(n)`` gives them."""
        cfg = self.config
        prior = self.st_prior_embedder.y_embedding[None].expand(batch, -1, -1)
        spatial, temporal = prior.split([cfg.spatial_prior_len, cfg.temporal_prior_len], dim=1)
        return self.y_embedder.y_embedding[None, None].expand(batch, -1, -1, -1), spatial, temporal

    def forward(self, video: torch.Tensor, audio: torch.Tensor, timestep: torch.Tensor,
                y: torch.Tensor, y_mask: torch.Tensor | None, spatial_prior: torch.Tensor,
                temporal_prior: torch.Tensor, fps: torch.Tensor, height: float,
                width: float) -> tuple[torch.Tensor, torch.Tensor]:
        """video (B, 4, T, H, W), audio (B, 8, L, M), timestep in [0, 1000] (B,), y (B, 1, N, D)
        or (B, N, D) T5 states with y_mask (B, N) (1: a real token), priors (B, 32, 128) each,
        fps (B,), and the pixel height and width (they set the position embedding's scale)."""
        cfg, c = self.config, self.config.hidden_size
        dtype = video.dtype  # the host picks the compute dtype (ComfyUI: its inference dtype)
        audio = audio.to(dtype)
        B, _, Tx, Hx, Wx = video.shape
        _, _, La, Ma = audio.shape
        T, H, W = (-(-s // p) for s, p in zip((Tx, Hx, Wx), cfg.patch_size))
        R, M = (-(-s // p) for s, p in zip((La, Ma), cfg.audio_patch_size))
        S = H * W

        y = y.reshape(B, -1, y.shape[-1]).to(dtype)
        prior = self.st_prior_embedder(torch.cat((spatial_prior, temporal_prior), dim=1).to(dtype))
        spatial, temporal = prior.split([spatial_prior.shape[1], temporal_prior.shape[1]], dim=1)
        vy, ay = self.y_embedder(y), self.audio_y_embedder(y)

        t = self.t_embedder(timestep, dtype) + self.fps_embedder(fps.reshape(-1).expand(B), dtype)
        t_mlp, t_st = self.t_block(t), self.st_t_block(t)

        scale = math.sqrt(float(height) * float(width)) / cfg.input_sq_size
        v = self.x_embedder(video).view(B, T, S, c)
        v = (v + video_position_embedding(c, H, W, scale, round(S ** 0.5), v.device).to(dtype)).flatten(1, 2)
        a = self.ax_embedder(audio).view(B, R, M, c)
        a = (a + audio_position_embedding(c, M, a.device).to(dtype)).flatten(1, 2)

        for vs, vt, vp, as_, at, ap, va in zip(
                self.spatial_blocks, self.temporal_blocks, self.video_st_prior_blocks,
                self.audio_spatial_blocks, self.audio_temporal_blocks, self.audio_st_prior_blocks,
                self.va_cross_blocks):
            v = vt(vs(v, vy, y_mask, t_mlp, T, S), vy, y_mask, t_mlp, T, S)
            a = at(as_(a, ay, y_mask, t_mlp, R, M), ay, y_mask, t_mlp, R, M)
            v = vp(v, spatial, temporal, t_st)
            a = ap(a, spatial, temporal, t_st)
            v, a = va(v, a)

        pt, ph, pw = cfg.patch_size
        v = self.final_layer(v, t).view(B, T, H, W, pt, ph, pw, cfg.out_channels)
        v = v.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(B, cfg.out_channels, T * pt, H * ph, W * pw)
        pr, pm = cfg.audio_patch_size
        a = self.audio_final_layer(a, t).view(B, R, M, pr, pm, cfg.audio_out_channels)
        a = a.permute(0, 5, 1, 3, 2, 4).reshape(B, cfg.audio_out_channels, R * pr, M * pm)
        return v[:, :, :Tx, :Hx, :Wx].float(), a[:, :, :La, :Ma].float()


_FIELDS = {f.name for f in fields(DiTConfig)}


def config_from_state_dict(sd: Mapping[str, torch.Tensor], extra: Mapping[str, Any] | None = None,
                           source: str = "the checkpoint") -> DiTConfig:
    """The architecture the weights were trained with: widths, patch sizes, depth and token
    counts from the shapes; the head count from the q/k norm width (or ``config.json``)."""
    extra = dict(extra or {})

    def shape(key: str) -> tuple[int, ...]:
        if key not in sd:
            raise CheckpointError(f"{source} has no '{key}': not a JavisDiT (VASTDiT3) checkpoint")
        return tuple(sd[key].shape)

    c, cin, *patch = shape("x_embedder.proj.weight")
    _, ain, *apatch = shape("ax_embedder.proj.weight")
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("spatial_blocks."))
    qk_norm = "spatial_blocks.0.attn.q_norm.weight" in sd
    if qk_norm:
        heads = c // shape("spatial_blocks.0.attn.q_norm.weight")[0]
    elif "num_heads" in extra:
        heads = int(extra["num_heads"])
    else:
        raise CheckpointError(f"{source} has no q/k norms and no config.json with num_heads")
    text_tokens, caption = shape("y_embedder.y_embedding")
    prior_tokens, prior_channels = shape("st_prior_embedder.y_embedding")
    spatial_len = int(extra.get("spatial_prior_len", prior_tokens // 2))
    out = shape("final_layer.linear.weight")[0] // math.prod(patch)
    aout = shape("audio_final_layer.linear.weight")[0] // math.prod(apatch)
    return DiTConfig(hidden_size=c, depth=depth, num_heads=heads,
                     mlp_hidden=shape("spatial_blocks.0.mlp.fc1.weight")[0], in_channels=cin,
                     out_channels=out, patch_size=tuple(patch), audio_in_channels=ain,
                     audio_out_channels=aout, audio_patch_size=tuple(apatch),
                     caption_channels=caption, text_tokens=text_tokens,
                     prior_channels=prior_channels, spatial_prior_len=spatial_len,
                     temporal_prior_len=prior_tokens - spatial_len, qk_norm=qk_norm,
                     input_sq_size=int(extra.get("input_sq_size", 512)))


def read_dit(folder: Path) -> tuple[DiTConfig, dict[str, torch.Tensor]]:
    """The config and the state dict of a JavisDiT folder as published (``config.json`` and
    ``model.safetensors``, or its shards), checked against each other."""
    folder = Path(folder)
    sd = read_folder(folder, PUBLISHED)
    config_file = folder / "config.json"
    extra = json.loads(config_file.read_text()) if config_file.is_file() else {}
    cfg = config_from_state_dict(sd, extra, str(folder))
    for key, value in (("hidden_size", cfg.hidden_size), ("depth", cfg.depth), ("num_heads", cfg.num_heads)):
        if key in extra and int(extra[key]) != value:
            raise CheckpointError(f"{config_file} says {key} = {extra[key]} but the weights in "
                                  f"{folder} have {value}")
    # the reference shares the null caption between the video and audio text embedders
    sd.setdefault("audio_y_embedder.y_embedding", sd["y_embedder.y_embedding"])
    check_keys(VASTDiT3(cfg, device="meta").state_dict(), sd, folder,
               "the JavisDiT v0.1 architecture read off its weights")
    return cfg, sd


def load_dit(folder: Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
             operations=None) -> VASTDiT3:
    """A ready VASTDiT3 from its folder (plain torch; ComfyUI's loader builds through
    ``read_dit`` itself so its model management owns the weights)."""
    cfg, sd = read_dit(folder)
    model = VASTDiT3(cfg, device=device, dtype=dtype, operations=operations)
    model.load_state_dict(sd)
    return model.eval()


def sizes(cfg: DiTConfig) -> dict[str, Any]:
    """The config as plain keyword arguments (what ComfyUI's ``unet_config`` carries)."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)}

