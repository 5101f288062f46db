"""The whole Synchformer (both feature extractors, their projections, the offset classifier) at
any size; ``Architecture`` holds the sizes a state dict implies (the published file is
ViT-B / AST-B wide, 12 + 12 + 3 layers, 21 offset classes over 14 segments)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .audio_encoder import AST, TIME_TOKENS
from .transformer import GlobalTransformer
from .video_encoder import FRAMES, TUBELET, MotionFormer

VIDEO_TOKENS = FRAMES // TUBELET
"""Feature tokens per segment: 8 for video (one per 2 frames), 6 for audio."""


@dataclass(frozen=True)
class Architecture:
    """Widths, depths, MLP widths and head counts of the three parts; the offset classes and
    the window's number of segments."""

    video_dim: int = 768
    video_depth: int = 12
    video_heads: int = 12
    video_hidden: int = 3072
    video_pool_hidden: int = 3072
    audio_dim: int = 768
    audio_depth: int = 12
    audio_heads: int = 12
    audio_hidden: int = 3072
    audio_pool_hidden: int = 3072
    dim: int = 768
    depth: int = 3
    heads: int = 8
    hidden: int = 3072
    classes: int = 21
    segments: int = 14


class Synchformer(nn.Module):
    """Segment features of each side (``extract_vfeats`` / ``extract_afeats``) and the offset
    logits of one window of them (``compare_v_a``), as the official model computes them."""

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        self.vfeat_extractor = MotionFormer(arch.video_dim, arch.video_depth, arch.video_heads,
                                            arch.video_hidden, arch.video_pool_hidden)
        self.afeat_extractor = AST(arch.audio_dim, arch.audio_depth, arch.audio_heads,
                                   arch.audio_hidden, arch.audio_pool_hidden)
        self.vproj = nn.Linear(arch.video_dim, arch.dim)
        self.aproj = nn.Linear(arch.audio_dim, arch.dim)
        length = 2 + arch.segments * (VIDEO_TOKENS + TIME_TOKENS)
        self.transformer = GlobalTransformer(arch.dim, arch.depth, arch.heads, arch.hidden, length,
                                             arch.classes)

    def extract_vfeats(self, video: torch.Tensor) -> torch.Tensor:
        """[B, S, 16, 3, 224, 224] frames in -1..1 -> [B, S, 8, video_dim]."""
        return self.vfeat_extractor(video.transpose(2, 3))

    def extract_afeats(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, S, 1, 128, 66] normalised log-mels -> [B, S, 6, audio_dim]."""
        return self.afeat_extractor(mel)

    def compare_v_a(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Features of one window ([B, segments, 8, Dv], [B, segments, 6, Da]) -> [B, classes]."""
        v, a = self.vproj(video).flatten(1, 2), self.aproj(audio).flatten(1, 2)
        return self.transformer(v, a)
