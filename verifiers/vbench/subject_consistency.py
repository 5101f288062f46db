"""VBench's subject consistency: DINO ViT-B/16 features of every frame (short side 224, aspect
kept), the consistency rule of consistency.py. 1 for a still clip."""

from __future__ import annotations

from pathlib import Path

import torch

from ...core.batch import AVBatch
from .consistency import consistency
from .dino import DinoViT, load_dino
from .features import CHUNK, frame_features
from .files import identity, require
from .frames import dino_input

NAME = "subject_consistency"
FILES: tuple[tuple[str, str], ...] = (
    ("dino_vitbase16_pretrain.pth",
     "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth"),)
LICENCE = "DINO weights and code: Apache-2.0 (github.com/facebookresearch/dino, LICENSE)"


class SubjectConsistency:
    """Tensor[N] in 0..1, higher is better."""

    name = NAME

    def __init__(self, dino: DinoViT, identity: str, chunk: int = CHUNK) -> None:
        self.dino, self.identity, self.chunk = dino, identity, chunk

    def models(self) -> list[torch.nn.Module]:
        return [self.dino]

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        return consistency(frame_features(self.dino, batch, dino_input, self.chunk))


def load(folder: str | Path, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> SubjectConsistency:
    """Subject consistency on ``folder``'s DINO file (VBench runs DINO in fp32)."""
    paths = require(folder, FILES)
    dino = load_dino(paths[FILES[0][0]], device, dtype)
    return SubjectConsistency(dino, identity(NAME, paths, dtype))
