"""VBench's consistency rule, shared by subject and background consistency: each frame after
the first scores the mean of its cosine similarity to the previous frame and to the first, each
clipped at 0; a clip's score is the mean over those frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...core.batch import MediaError


def consistency(features: torch.Tensor) -> torch.Tensor:
    """float64 [N] of per-frame features [N, T, D] (T >= 2), as VBench's per-video result."""
    if features.shape[1] < 2:
        raise MediaError(f"consistency compares frames: a clip needs 2 frames at least, got "
                         f"{features.shape[1]}")
    f = F.normalize(features.float(), dim=-1, p=2)
    previous = F.cosine_similarity(f[:, :-1], f[:, 1:], dim=-1).clamp(min=0)
    first = F.cosine_similarity(f[:, :1], f[:, 1:], dim=-1).clamp(min=0)
    return ((previous.double() + first.double()) / 2).mean(dim=1)
