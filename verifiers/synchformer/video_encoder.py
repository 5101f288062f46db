"""Synchformer's video feature extractor (MotionFormer: a ViT-B/16 with divided space-time
attention over 16-frame segments, then a per-frame attention pooling), under the parameter names
of the official state dict (``vfeat_extractor.*``), so ``synchformer_state_dict.pth`` loads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FRAMES, SIZE, PATCH, TUBELET = 16, 224, 16, 2
"""A segment: 16 frames of 224 x 224, cut into 2-frame 16 x 16 tubes (8 x 14 x 14 tokens)."""
GRID = SIZE // PATCH
LN_EPS = 1e-6


class PatchEmbed(nn.Module):
    """A projection by one convolution whose stride is its kernel."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.proj = conv


class DividedAttention(nn.Module):
    """Attention along one axis (time or space) of the (frame, position) token grid; the CLS
    query attends to every token, and every other query also sees the CLS key and value."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, along_time: bool) -> torch.Tensor:
        b, n, d = x.shape
        h, positions = self.heads, (n - 1) // frames
        q, k, v = (t.view(b, n, h, d // h).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)  # [b, h, 1, hd]

        def group(t: torch.Tensor) -> torch.Tensor:  # [b, h, f*p, hd] -> [b*h*groups, len, hd]
            t = t.reshape(b, h, frames, positions, d // h)
            if along_time:
                t = t.transpose(2, 3)  # each position over its frames
            return t.reshape(-1, t.shape[3], d // h)

        groups = positions if along_time else frames
        qg, kg, vg = group(q[:, :, 1:]), group(k[:, :, 1:]), group(v[:, :, 1:])
        kc = k[:, :, :1].expand(b, h, groups, d // h).reshape(-1, 1, d // h)
        vc = v[:, :, :1].expand(b, h, groups, d // h).reshape(-1, 1, d // h)
        out = F.scaled_dot_product_attention(qg, torch.cat([kc, kg], 1), torch.cat([vc, vg], 1))
        out = out.reshape(b, h, groups, -1, d // h)
        if along_time:
            out = out.transpose(2, 3)
        out = torch.cat([cls_out, out.reshape(b, h, n - 1, d // h)], dim=2)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DividedSpaceTimeBlock(nn.Module):
    """Time attention, then space attention, then the MLP, each pre-normed and residual."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim, eps=LN_EPS) for _ in range(3))
        self.attn, self.timeattn = DividedAttention(dim, heads), DividedAttention(dim, heads)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), frames, along_time=True)
        x = x + self.attn(self.norm1(x), frames, along_time=False)
        return x + self.mlp(self.norm2(x))


class ClsPooling(nn.TransformerEncoderLayer):
    """One pre-norm encoder layer over a learned CLS token and a set of tokens; gives the CLS
    output (Synchformer pools each frame's positions, or each time step's frequencies, so)."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__(dim, heads, dim_feedforward=hidden, dropout=0.0, activation=nn.GELU(),
                         layer_norm_eps=LN_EPS, batch_first=True, norm_first=True)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return super().forward(x)[:, 0]


class MotionFormer(nn.Module):
    """[B, S, 3, 16, 224, 224] segments -> [B, S, 8, dim] features (one per 2-frame step)."""

    def __init__(self, dim: int, depth: int, heads: int, hidden: int, pool_hidden: int) -> None:
        super().__init__()
        steps = FRAMES // TUBELET
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, GRID * GRID + 1, dim))
        self.temp_embed = nn.Parameter(torch.zeros(1, steps, dim))
        # the 2D patch embedding is in the published file but never used by the forward pass
        self.patch_embed = PatchEmbed(nn.Conv2d(3, dim, PATCH, PATCH))
        self.patch_embed_3d = PatchEmbed(nn.Conv3d(3, dim, (TUBELET, PATCH, PATCH), (TUBELET, PATCH, PATCH)))
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(dim, heads, hidden) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.spatial_attn_agg = ClsPooling(dim, heads, pool_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s = x.shape[:2]
        x = self.patch_embed_3d.proj(x.flatten(0, 1))  # [BS, D, t, h, w]
        bs, d, t, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # tokens in (t, h, w) order
        pos = self.pos_embed[:, 1:].repeat(1, t, 1) + self.temp_embed.repeat_interleave(h * w, 1)
        x = torch.cat([self.cls_token.expand(bs, -1, -1) + self.pos_embed[:, :1], x + pos], dim=1)
        for block in self.blocks:
            x = block(x, t)
        x = self.norm(x[:, 1:])  # [BS, t*h*w, D]
        x = self.spatial_attn_agg(x.reshape(bs * t, h * w, d))  # each frame's positions pooled
        return x.view(b, s, t, d)
