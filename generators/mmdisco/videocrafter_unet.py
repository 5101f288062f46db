"""VideoCrafter2's denoiser: lvdm's 3D UNet (``openaimodel3d.UNetModel`` of
``inference_t2v_512_v2.0.yaml``), written from the published architecture.

Every layer works on frames folded into the batch, ``(B*T, C, H, W)``; the temporal layers
(a (3, 1, 1) conv stack inside each ResBlock and a self-attention over the frames of each pixel)
unfold them again. The module names are those of lvdm, so ``model.diffusion_model.*`` of the
official ``model.ckpt`` loads strictly (including lvdm's spelling ``temopral_conv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GROUPS = 32  # every GroupNorm of lvdm's UNet has 32 groups
INIT_ATTN_HEADS = 8  # lvdm's frame attention after the first conv always has 8 heads


@dataclass(frozen=True)
class UNetSizes:
    """The architecture of one UNet, read off a state dict by :func:`unet_sizes`."""

    in_channels: int
    out_channels: int
    model_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: int
    attention_levels: tuple[int, ...]  # levels (0 = full resolution) with attention
    head_channels: int
    context_dim: int
    depth: int  # transformer blocks per spatial / temporal transformer
    fps_cond: bool


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 (as lvdm does), so fp16 activations stay stable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x.float(), self.num_groups, self.weight.float(),
                            self.bias.float(), self.eps).to(x.dtype)


def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """lvdm's timestep embedding: cosines then sines of t at geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32,
                                                        device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def mlp_embed(dim: int, out: int) -> nn.Sequential:
    """Linear, SiLU, Linear: lvdm's ``time_embed`` / ``fps_embedding``."""
    return nn.Sequential(nn.Linear(dim, out), nn.SiLU(), nn.Linear(out, out))


class Attention(nn.Module):
    """Multi-head attention with lvdm's names (``to_q``, ``to_k``, ``to_v``, ``to_out.0``);
    keys and values come from ``context`` when given, else from ``x``."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int | None = None):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        src = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(src), self.to_v(src)
        def split(y: torch.Tensor) -> torch.Tensor:
            return y.unflatten(-1, (self.heads, -1)).transpose(1, 2)
        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return self.to_out(out.transpose(1, 2).flatten(2))


class GEGLU(nn.Module):
    """Gated GELU input projection of the feed-forward (``ff.net.0.proj``)."""

    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward, four times wide (``ff.net.0.proj``, ``ff.net.2``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * 4), nn.Dropout(0.0), nn.Linear(dim * 4, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    """Self-attention, then cross-attention (self-attention again without a context), then
    a GEGLU feed-forward; each pre-normed and residual."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int | None):
        super().__init__()
        self.attn1 = Attention(dim, heads, head_dim)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, heads, head_dim, context_dim)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim) for _ in range(3))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """Attention over the pixels of each frame, with cross-attention to the text."""

    def __init__(self, ch: int, heads: int, head_dim: int, depth: int, context_dim: int):
        super().__init__()
        inner = heads * head_dim
        self.norm = GroupNorm32(GROUPS, ch, eps=1e-6)
        self.proj_in = nn.Linear(ch, inner)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(inner, heads, head_dim, context_dim) for _ in range(depth))
        self.proj_out = nn.Linear(inner, ch)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))
        for block in self.transformer_blocks:
            y = block(y, context)
        return x + self.proj_out(y).transpose(1, 2).reshape(n, c, h, w)


class TemporalTransformer(nn.Module):
    """Self-attention over the frames of each pixel (both attentions of each block are
    self-attention: lvdm's ``temporal_selfatt_only``). ``linear`` picks Linear projections
    (the UNet's levels) or 1x1 Conv1d ones (lvdm's ``init_attn``)."""

    def __init__(self, ch: int, heads: int, head_dim: int, depth: int, linear: bool):
        super().__init__()
        inner = heads * head_dim
        self.linear = linear
        self.norm = GroupNorm32(GROUPS, ch, eps=1e-6)
        self.proj_in = nn.Linear(ch, inner) if linear else nn.Conv1d(ch, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(inner, heads, head_dim, None) for _ in range(depth))
        self.proj_out = nn.Linear(inner, ch) if linear else nn.Conv1d(inner, ch, 1)

    def project(self, layer: nn.Module, y: torch.Tensor) -> torch.Tensor:
        """Apply a projection to tokens (N, T, C), whichever kind it is."""
        return layer(y) if self.linear else layer(y.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bt, c, h, w = x.shape
        y = self.norm(x.unflatten(0, (bt // frames, frames)).transpose(1, 2))  # B C T H W: the
        y = y.permute(0, 3, 4, 2, 1).reshape(-1, frames, c)  # statistics span frames; (B H W) T C
        y = self.project(self.proj_in, y)
        for block in self.transformer_blocks:
            y = block(y)
        y = self.project(self.proj_out, y)
        y = y.reshape(bt // frames, h, w, frames, c).permute(0, 3, 4, 1, 2).reshape(bt, c, h, w)
        return x + y


class TemporalConv(nn.Module):
    """Four residual (3, 1, 1) convolutions over time (lvdm's ``TemporalConvBlock``)."""

    def __init__(self, ch: int):
        super().__init__()
        def conv() -> nn.Conv3d:
            return nn.Conv3d(ch, ch, (3, 1, 1), padding=(1, 0, 0))
        self.conv1 = nn.Sequential(GroupNorm32(GROUPS, ch), nn.SiLU(), conv())
        for i in (2, 3, 4):
            setattr(self, f"conv{i}", nn.Sequential(GroupNorm32(GROUPS, ch), nn.SiLU(),
                                                    nn.Dropout(0.0), conv()))

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bt, c, h, w = x.shape
        y = x.unflatten(0, (bt // frames, frames)).transpose(1, 2)   # B C T H W
        z = self.conv4(self.conv3(self.conv2(self.conv1(y))))
        return (y + z).transpose(1, 2).reshape(bt, c, h, w)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with the time embedding added in between, a skip
    connection, then the temporal convolutions."""

    def __init__(self, ch: int, out: int, emb_dim: int):
        super().__init__()
        self.in_layers = nn.Sequential(GroupNorm32(GROUPS, ch), nn.SiLU(),
                                       nn.Conv2d(ch, out, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, out))
        self.out_layers = nn.Sequential(GroupNorm32(GROUPS, out), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(out, out, 3, padding=1))
        self.skip_connection = nn.Identity() if out == ch else nn.Conv2d(ch, out, 1)
        self.temopral_conv = TemporalConv(out)  # lvdm's spelling: it is the checkpoint's key

    def forward(self, x: torch.Tensor, emb: torch.Tensor, frames: int) -> torch.Tensor:
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None].to(x.dtype)
        h = self.skip_connection(x) + self.out_layers(h)
        return self.temopral_conv(h, frames)


class Downsample(nn.Module):
    """Stride-2 3x3 convolution (key ``op``)."""

    def __init__(self, ch: int):
        super().__init__()
        self.op = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest x2 then a 3x3 convolution (key ``conv``)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.ModuleList):
    """One entry of input_blocks / middle_block / output_blocks: layers applied in order,
    each given what it needs."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor,
                frames: int) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb, frames)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, TemporalTransformer):
                x = layer(x, frames)
            else:
                x = layer(x)
        return x


class VideoUNet(nn.Module):
    """lvdm's 3D UNet: eps prediction for latents (B, C, T, H, W), text cross-attention,
    timestep and fps embeddings summed."""

    def __init__(self, s: UNetSizes):
        super().__init__()
        self.sizes = s
        mc, emb_dim = s.model_channels, s.model_channels * 4
        self.time_embed = mlp_embed(mc, emb_dim)
        if s.fps_cond:
            self.fps_embedding = mlp_embed(mc, emb_dim)
        self.init_attn = Stage([TemporalTransformer(mc, INIT_ATTN_HEADS, s.head_channels,
                                                    s.depth, linear=False)])

        def attention(ch: int) -> list[nn.Module]:
            heads = ch // s.head_channels
            return [SpatialTransformer(ch, heads, s.head_channels, s.depth, s.context_dim),
                    TemporalTransformer(ch, heads, s.head_channels, s.depth, linear=True)]

        self.input_blocks = nn.ModuleList([Stage([nn.Conv2d(s.in_channels, mc, 3, padding=1)])])
        skips, ch = [mc], mc
        for level, mult in enumerate(s.channel_mult):
            for _ in range(s.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, mult * mc, emb_dim)]
                ch = mult * mc
                if level in s.attention_levels:
                    layers += attention(ch)
                self.input_blocks.append(Stage(layers))
                skips.append(ch)
            if level != len(s.channel_mult) - 1:
                self.input_blocks.append(Stage([Downsample(ch)]))
                skips.append(ch)
        self.middle_block = Stage([ResBlock(ch, ch, emb_dim), *attention(ch),
                                   ResBlock(ch, ch, emb_dim)])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(s.channel_mult))):
            for i in range(s.num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), mult * mc, emb_dim)]
                ch = mult * mc
                if level in s.attention_levels:
                    layers += attention(ch)
                if level and i == s.num_res_blocks:
                    layers.append(Upsample(ch))
                self.output_blocks.append(Stage(layers))
        self.out = nn.Sequential(GroupNorm32(GROUPS, ch), nn.SiLU(),
                                 nn.Conv2d(mc, s.out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                fps: int) -> torch.Tensor:
        """eps for x (B, C, T, H, W) at integer timesteps t (B,), text context (B, L, D)."""
        b, _, frames, h, w = x.shape
        dtype = self.time_embed[0].weight.dtype
        mc = self.sizes.model_channels
        emb = self.time_embed(sinusoid(t, mc).to(dtype))
        if self.sizes.fps_cond:
            emb = emb + self.fps_embedding(sinusoid(torch.full_like(t, fps), mc).to(dtype))
        emb = emb.repeat_interleave(frames, dim=0)
        context = context.to(dtype).repeat_interleave(frames, dim=0)
        hid = x.to(dtype).transpose(1, 2).reshape(b * frames, -1, h, w)
        skips = []
        for i, stage in enumerate(self.input_blocks):
            hid = stage(hid, emb, context, frames)
            if i == 0:
                hid = self.init_attn(hid, emb, context, frames)
            skips.append(hid)
        hid = self.middle_block(hid, emb, context, frames)
        for stage in self.output_blocks:
            hid = stage(torch.cat([hid, skips.pop()], dim=1), emb, context, frames)
        out = self.out(hid)
        return out.reshape(b, frames, -1, h, w).transpose(1, 2)
