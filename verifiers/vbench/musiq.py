"""MUSIQ (Ke et al., ICCV 2021), the multi-scale image quality transformer, as pyiqa runs the
converted official checkpoints that VBench scores imaging quality with: our own modules under
pyiqa's parameter names, so ``musiq_spaq_ckpt-358bb6af.pth`` loads strictly, with the sizes read
off the file. An image becomes patches of itself at two fixed sizes and at its own size
(``musiq_patches``); a ResNet stem embeds each patch, a transformer reads them all with a
learned class token, and a linear head on that token gives the score (SPAQ's 0..100 scale)."""

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
from .musiq_patches import SCALES, Tokens, musiq_patches, same_pad

HEAD_DIM = 64
"""Width of one attention head (head counts leave no trace in a state dict): the published
MUSIQ has 6 heads of 64 in a 384-wide transformer."""
STEM_STRIDE = 4
"""A patch shrinks 4 times in the stem (a stride-2 convolution, a stride-2 max-pool)."""
MASKED = -1e3
"""The attention logit of a pair that involves padding (pyiqa's and the TF original's value)."""


@dataclass(frozen=True)
class Architecture:
    """The sizes of a MUSIQ state dict (defaults: the published model)."""

    patch: int = 32
    stem: int = 64
    hidden: int = 384
    mlp: int = 1152
    layers: int = 14
    heads: int = 6
    scales: int = SCALES
    grid: int = 10


class StdConv(nn.Conv2d):
    """A bias-free convolution with weight standardisation and TF's 'SAME' padding (BiT)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(same_pad(x, self.kernel_size[0], self.stride[0]), w, None, self.stride)


class Bottleneck(nn.Module):
    """The stem's one residual block, ``width`` -> ``out`` channels at stride 1."""

    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.conv1 = StdConv(width, width, 1, bias=False)
        self.gn1 = nn.GroupNorm(32, width, eps=1e-4)
        self.conv2 = StdConv(width, width, 3, bias=False)
        self.gn2 = nn.GroupNorm(32, width, eps=1e-4)
        self.conv3 = StdConv(width, out, 1, bias=False)
        self.gn3 = nn.GroupNorm(32, out, eps=1e-4)
        self.conv_proj = StdConv(width, out, 1, bias=False)
        self.gn_proj = nn.GroupNorm(32, out, eps=1e-4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.gn_proj(self.conv_proj(x))
        x = F.relu(self.gn1(self.conv1(x)))
        x = F.relu(self.gn2(self.conv2(x)))
        return F.relu(self.gn3(self.conv3(x)) + skip)


class Attention(nn.Module):
    """Multi-head self-attention in which padding neither attends nor is attended to."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.query, self.key, self.value))
        logits = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        weights = logits.masked_fill(~pairs, MASKED).softmax(-1)
        return self.out((weights @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """The layer's feed-forward part (exact GELU)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """A pre-norm transformer layer."""

    def __init__(self, dim: int, mlp: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attention = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp)

    def forward(self, x: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), pairs)
        return x + self.mlp(self.norm2(x))


class PositionEmbedding(nn.Module):
    """One learned vector per cell of a ``grid`` x ``grid`` hash of patch positions."""

    def __init__(self, grid: int, dim: int) -> None:
        super().__init__()
        self.position_emb = nn.Parameter(torch.zeros(1, grid * grid, dim))


class ScaleEmbedding(nn.Module):
    """One learned vector per scale of the multi-scale input."""

    def __init__(self, scales: int, dim: int) -> None:
        super().__init__()
        self.scale_emb = nn.Parameter(torch.zeros(scales, dim))


class Encoder(nn.Module):
    """Position and scale embeddings, the class token, the layers, the final norm."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.posembed_input = PositionEmbedding(arch.grid, arch.hidden)
        self.scaleembed_input = ScaleEmbedding(arch.scales, arch.hidden)
        self.cls = nn.Parameter(torch.zeros(1, 1, arch.hidden))
        self.encoder_norm = nn.LayerNorm(arch.hidden, eps=1e-6)
        self.transformer = nn.ModuleDict({f"encoderblock_{i}": Block(arch.hidden, arch.mlp, arch.heads)
                                          for i in range(arch.layers)})

    def forward(self, x: torch.Tensor, tokens: Tokens) -> torch.Tensor:
        """[B, L, hidden] patch embeddings -> [B, hidden], the class token's output."""
        x = (x + self.posembed_input.position_emb[0, tokens.spatial]
             + self.scaleembed_input.scale_emb[tokens.scale])
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
        valid = torch.cat([tokens.mask.new_ones(1), tokens.mask])
        pairs = valid[:, None] & valid[None, :]
        for block in self.transformer.values():
            x = block(x, pairs)
        return self.encoder_norm(x[:, 0])


class MUSIQ(nn.Module):
    """Quality scores of images: ``forward`` takes float [B, 3, H, W] in 0..1 (one size for the
    batch) and gives float32 [B] on the checkpoint's scale (SPAQ: about 0..100)."""

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        self.conv_root = StdConv(3, arch.stem, 7, 2, bias=False)
        self.gn_root = nn.GroupNorm(32, arch.stem, eps=1e-6)
        self.block1 = Bottleneck(arch.stem, 4 * arch.stem)
        token = arch.patch // STEM_STRIDE
        self.embedding = nn.Linear(4 * arch.stem * token * token, arch.hidden)
        self.transformer_encoder = Encoder(arch)
        self.head = nn.Linear(arch.hidden, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = musiq_patches((images - 0.5) * 2, self.arch.patch, self.arch.grid)
        b, n = tokens.patches.shape[:2]
        x = tokens.patches.flatten(0, 1).to(self.head.weight.dtype)
        x = F.relu(self.gn_root(self.conv_root(x)))
        x = self.block1(F.max_pool2d(same_pad(x, 3, 2), 3, 2))
        x = self.embedding(x.permute(0, 2, 3, 1).reshape(b, n, -1))  # TF's channel-last order
        return self.head(self.transformer_encoder(x, tokens))[:, 0].float()


def architecture(state: Mapping[str, torch.Tensor], source: str | Path) -> Architecture:
    """The sizes a MUSIQ state dict implies; an error naming the key if it is not one this
    loader builds (one score per image: SPAQ, KonIQ, PaQ-2-PiQ; not AVA's 10-class head)."""
    shape = partial(shape_of, state, source=source,
                    what="a MUSIQ state dict as pyiqa converted them")

    if "head.0.weight" in state:
        raise CheckpointError(f"{source}: 'head.0.weight' is a {state['head.0.weight'].shape[0]}-class "
                              "score distribution head (AVA); imaging quality needs a one-score head "
                              "('head.weight', MUSIQ trained on SPAQ)")
    if shape("head.weight")[0] != 1:
        raise CheckpointError(f"{source}: 'head.weight' gives {shape('head.weight')[0]} outputs; "
                              "MUSIQ on SPAQ gives one score")
    stem = shape("conv_root.weight")[0]
    hidden, embedded = shape("embedding.weight")
    token = math.isqrt(embedded // (4 * stem))
    if token * token * 4 * stem != embedded:
        raise CheckpointError(f"{source}: 'embedding.weight' takes {embedded} features, not "
                              f"{4 * stem} channels on a square grid of stem outputs")
    if hidden % HEAD_DIM:
        raise CheckpointError(f"{source}: the transformer is {hidden} wide, not a multiple of "
                              f"MUSIQ's head width {HEAD_DIM}")
    cells = shape("transformer_encoder.posembed_input.position_emb")[1]
    if math.isqrt(cells) ** 2 != cells:
        raise CheckpointError(f"{source}: 'transformer_encoder.posembed_input.position_emb' holds {cells} "
                              "positions, not a square hash grid")
    scales = shape("transformer_encoder.scaleembed_input.scale_emb")[0]
    if scales != SCALES:
        raise CheckpointError(f"{source}: 'transformer_encoder.scaleembed_input.scale_emb' has {scales} "
                              f"scales; the multi-scale input this loader builds has {SCALES}")
    layers = {int(m.group(1)) for m in map(re.compile(r"transformer_encoder\.transformer\.encoderblock_(\d+)\.").match,
                                            state) if m}
    return Architecture(
        patch=token * STEM_STRIDE, stem=stem, hidden=hidden,
        mlp=shape("transformer_encoder.transformer.encoderblock_0.mlp.fc1.weight")[0],
        layers=max(layers) + 1, heads=hidden // HEAD_DIM,
        scales=scales, grid=math.isqrt(cells))


def load_musiq(path: str | Path, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> MUSIQ:
    """MUSIQ in eval mode with the weights of ``path`` (a state dict read with weights_only, as
    pyiqa reads it: no wrapping key, a DataParallel 'module.' prefix dropped)."""
    state = {k.removeprefix("module."): v for k, v in read_file(path).items()}
    model = MUSIQ(architecture(state, path))
    load_strict(model, state, path, "the MUSIQ architecture its shapes imply")
    return model.to(device=device, dtype=dtype).eval()
