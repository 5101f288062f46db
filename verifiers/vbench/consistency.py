"""VBench's consistency rule, shared by subject and background consistency: each frame after
the first scores the mean of its cosine similarity to the previous frame and to the first, each
clipped at 0; a clip's score is the mean over those frames. One verifier serves both; they
differ only in the image model and its transform."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ...core.batch import AVBatch, MediaError
from .features import CHUNK, frame_features


def consistency(features: torch.Tensor) -> torch.Tensor:
    """float64 [N] of per-frame features [N, T, D] (T >= 2), as VBench's per-video result."""
    if features.shape[1] < 2:
        raise MediaError(f"consistency compares frames: a clip needs 2 frames at least, got "
                         f"{features.shape[1]}")
    f = F.normalize(features.float(), dim=-1, p=2)
    previous = F.cosine_similarity(f[:, :-1], f[:, 1:], dim=-1).clamp(min=0)
    first = F.cosine_similarity(f[:, :1], f[:, 1:], dim=-1).clamp(min=0)
    return ((previous.double() + first.double()) / 2).mean(dim=1)


class Consistency:
    """A consistency dimension: Tensor[N] in 0..1, higher is better, 1 for a still clip."""

    def __init__(self, name: str, model: torch.nn.Module,
                 transform: Callable[[torch.Tensor], torch.Tensor], identity: str,
                 chunk: int = CHUNK) -> None:
        self.name, self.model, self.transform = name, model, transform
        self.identity, self.chunk = identity, chunk

    def models(self) -> list[torch.nn.Module]:
        return [self.model]

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        return consistency(frame_features(self.model, batch, self.transform, self.chunk))
