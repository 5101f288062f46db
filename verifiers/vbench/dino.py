"""DINO's ViT (facebookresearch/dino, vision_transformer.py) under its parameter names, so
``dino_vitbase16_pretrain.pth`` loads strictly; its ``interpolate_pos_encoding`` reproduced
exactly, since VBench feeds it frames of the clip's own aspect ratio. Sizes come off the file."""

from __future__ import annotations

from functools import partial

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ...core.checkpoints import CheckpointError, load_strict, read_file, shape_of

HEAD_DIM = 64
"""Width of one attention head (every DINO ViT: S 384/6, B 768/12); heads leave no trace in a
state dict."""
EPS = 1e-6


@dataclass(frozen=True)
class Architecture:
    dim: int = 768
    depth: int = 12
    hidden: int = 3072
    patch: int = 16
    grid: int = 14
    """Patches per side of the pretraining size (224 / 16)."""

    @property
    def heads(self) -> int:
        return self.dim // HEAD_DIM


class PatchEmbed(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, arch.dim, arch.patch, arch.patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.heads = arch.heads
        self.qkv = nn.Linear(arch.dim, 3 * arch.dim)
        self.proj = nn.Linear(arch.dim, arch.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.fc1 = nn.Linear(arch.dim, arch.hidden)
        self.fc2 = nn.Linear(arch.hidden, arch.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(arch.dim, eps=EPS)
        self.attn = Attention(arch)
        self.norm2 = nn.LayerNorm(arch.dim, eps=EPS)
        self.mlp = Mlp(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DinoViT(nn.Module):
    """The backbone of DINO's ``dino_vitb16`` (no head): images [B, 3, H, W] to the normalised
    CLS token [B, dim]."""

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        self.patch_embed = PatchEmbed(arch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, arch.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, arch.grid ** 2 + 1, arch.dim))
        self.blocks = nn.ModuleList(Block(arch) for _ in range(arch.depth))
        self.norm = nn.LayerNorm(arch.dim, eps=EPS)

    def interpolate_pos_encoding(self, tokens: int, h: int, w: int) -> torch.Tensor:
        """DINO's: the patch grid's embeddings resized bicubically by the scale factor
        (h // patch + 0.1) / grid, as its ``interpolate_pos_encoding`` does (in float32, which
        bicubic needs on every device)."""
        n = self.pos_embed.shape[1] - 1
        if tokens - 1 == n and h == w:
            return self.pos_embed
        cls, grid = self.pos_embed[:, 0], self.pos_embed[:, 1:]
        h0, w0 = h // self.arch.patch + 0.1, w // self.arch.patch + 0.1
        side = math.sqrt(n)
        grid = F.interpolate(grid.float().reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2),
                             scale_factor=(h0 / side, w0 / side), mode="bicubic").to(grid.dtype)
        if grid.shape[-2:] != (int(h0), int(w0)):
            raise ValueError(f"the position grid came out {tuple(grid.shape[-2:])}, not "
                             f"{(int(h0), int(w0))}")
        return torch.cat([cls[:, None], grid.permute(0, 2, 3, 1).reshape(1, -1, grid.shape[1])], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1)
        x = x + self.interpolate_pos_encoding(x.shape[1], h, w)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


def architecture(state: Mapping[str, torch.Tensor], source: str | Path) -> Architecture:
    """The sizes a DINO ViT state dict implies; an error naming the key if it is not one."""
    shape = partial(shape_of, state, source=source, what="a DINO ViT state dict")

    dim, positions = shape("cls_token")[-1], shape("pos_embed")[1] - 1
    grid = math.isqrt(positions)
    if grid * grid != positions:
        raise CheckpointError(f"{source}: 'pos_embed' holds {positions + 1} positions, not 1 + a "
                              "square grid")
    if dim % HEAD_DIM:
        raise CheckpointError(f"{source}: 'cls_token' is {dim} wide, not a multiple of DINO's "
                              f"head width {HEAD_DIM}")
    blocks = {int(m.group(1)) for m in map(re.compile(r"blocks\.(\d+)\.").match, state) if m}
    return Architecture(dim=dim, depth=max(blocks) + 1 if blocks else 0,
                        hidden=shape("blocks.0.mlp.fc1.weight")[0],
                        patch=shape("patch_embed.proj.weight")[-1], grid=grid)


def load_dino(path: str | Path, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32) -> DinoViT:
    """DINO's ViT in eval mode with the weights of ``path`` (read with ``weights_only``)."""
    state = read_file(path)
    with torch.device("meta"):
        model = DinoViT(architecture(state, path))
    load_strict(model, state, path, "DINO's ViT of the sizes its shapes imply", assign=True)
    return model.to(device=device, dtype=dtype).eval()
