"""VBench's subject consistency: DINO ViT-B/16 features of every frame (short side 224, aspect
kept), the consistency rule of consistency.py. 1 for a still clip."""

from __future__ import annotations

from pathlib import Path

import torch

from .consistency import Consistency
from .dino import load_dino
from .files import identity, require
from .frames import dino_input

NAME = "subject_consistency"
FILES: tuple[tuple[str, str], ...] = (
    ("dino_vitbase16_pretrain.pth",
     "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth"),)
LICENCE = "DINO weights and code: Apache-2.0 (github.com/facebookresearch/dino, LICENSE)"


def load(folder: str | Path, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> Consistency:
    """Subject consistency on ``folder``'s DINO file (VBench runs DINO in fp32)."""
    paths = require(folder, FILES)
    dino = load_dino(paths[FILES[0][0]], device, dtype)
    return Consistency(NAME, dino, dino_input, identity(NAME, paths, dtype))
