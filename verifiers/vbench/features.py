"""Per-frame features of many clips at once: every frame of the batch through one image model,
``chunk`` frames at a time on the model's device and dtype, VBench's preprocessing applied on
that device."""

from __future__ import annotations

from typing import Callable

import torch

from ...core.batch import AVBatch
from .frames import uint8_frames

CHUNK = 32
"""Frames per forward pass (VBench's aesthetic batch size)."""


def frame_features(model: torch.nn.Module, batch: AVBatch,
                   prepare: Callable[[torch.Tensor], torch.Tensor], chunk: int = CHUNK) -> torch.Tensor:
    """float32 [N, T, D] on the CPU: ``model`` on ``prepare``(uint8 frames [B, 3, H, W]) of
    every frame of ``batch``."""
    frames = uint8_frames(batch.video).flatten(0, 1)
    p = next(model.parameters())
    out = []
    with torch.no_grad():
        for part in frames.split(chunk):
            out.append(model(prepare(part.to(p.device)).to(p.dtype)).float().cpu())
    return torch.cat(out).view(*batch.video.shape[:2], -1)
