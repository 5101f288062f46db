"""Synchformer's audio feature extractor (an Audio Spectrogram Transformer over each 0.64 s
log-mel segment, then an attention pooling over frequency per time step), under the parameter
names of the official state dict (``afeat_extractor.*``, transformers' AST naming)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .video_encoder import ClsPooling

MELS, MEL_FRAMES, PATCH, STRIDE = 128, 66, 16, 10
"""A segment's log-mel is 128 x 66, cut into 16 x 16 patches every 10 bins and 10 frames."""
FREQ_TOKENS = (MELS - PATCH) // STRIDE + 1
TIME_TOKENS = (MEL_FRAMES - PATCH) // STRIDE + 1
LN_EPS = 1e-12


class PatchEmbeddings(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(1, dim, PATCH, STRIDE)


class Embeddings(nn.Module):
    """Patches (frequency-major), a CLS and a distillation token, learned positions."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.patch_embeddings = PatchEmbeddings(dim)
        self.position_embeddings = nn.Parameter(torch.zeros(1, FREQ_TOKENS * TIME_TOKENS + 2, dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # [N, 128, 66]
        x = self.patch_embeddings.projection(mel[:, None]).flatten(2).transpose(1, 2)
        aux = torch.cat([self.cls_token, self.distillation_token], 1).expand(x.shape[0], -1, -1)
        return torch.cat([aux, x], 1) + self.position_embeddings


class Linear(nn.Module):
    """A module holding one ``dense`` layer, as transformers names them."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.query, self.key, self.value))
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attention = SelfAttention(dim, heads)
        self.output = Linear(dim, dim)


class Layer(nn.Module):
    """Pre-norm: attention then the GELU MLP, each residual."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attention = Attention(dim, heads)
        self.intermediate = Linear(dim, hidden)
        self.output = Linear(hidden, dim)
        self.layernorm_before = nn.LayerNorm(dim, eps=LN_EPS)
        self.layernorm_after = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention.output.dense(self.attention.attention(self.layernorm_before(x)))
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))


class Encoder(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(dim, heads, hidden) for _ in range(depth))


class ASTModel(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.embeddings = Embeddings(dim)
        self.encoder = Encoder(dim, depth, heads, hidden)
        self.layernorm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(mel)
        for layer in self.encoder.layer:
            x = layer(x)
        return self.layernorm(x)


class AST(nn.Module):
    """[B, S, 1, 128, 66] log-mel segments -> [B, S, 6, dim] features (one per time step)."""

    def __init__(self, dim: int, depth: int, heads: int, hidden: int, pool_hidden: int) -> None:
        super().__init__()
        self.ast = ASTModel(dim, depth, heads, hidden)
        self.freq_attn_agg = ClsPooling(dim, heads, pool_hidden)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        b, s = mel.shape[:2]
        x = self.ast(mel.reshape(b * s, MELS, MEL_FRAMES))[:, 2:]  # [BS, f*t, D], frequency-major
        d = x.shape[-1]
        x = x.reshape(b * s, FREQ_TOKENS, TIME_TOKENS, d).transpose(1, 2)  # [BS, t, f, D]
        x = self.freq_attn_agg(x.reshape(b * s * TIME_TOKENS, FREQ_TOKENS, d))
        return x.view(b, s, TIME_TOKENS, d)
