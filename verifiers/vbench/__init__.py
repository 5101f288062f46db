"""VBench's quality dimensions as verifiers, each on the user's copy of the weights VBench uses
(all in one folder, ComfyUI's models/vbench/), computed as VBench computes them: one module per
dimension with NAME, FILES (name, where to get it), LICENCE and load(folder, device, dtype)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch

from ...core.verifier import Verifier
from . import (aesthetic_quality, background_consistency, imaging_quality, motion_smoothness,
               subject_consistency)

DIMENSIONS: dict[str, ModuleType] = {m.NAME: m for m in (
    subject_consistency, background_consistency, motion_smoothness, aesthetic_quality, imaging_quality)}
"""VBench's dimension name (the reward's name) -> its module, in the order of VBench's quality
score."""


def load(names: list[str] | tuple[str, ...], folder: str | Path, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> list[Verifier]:
    """The verifiers of the named dimensions on ``folder``'s files, in the order named."""
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown VBench dimension(s) {unknown}; known: {', '.join(DIMENSIONS)}")
    return [DIMENSIONS[n].load(folder, device, dtype) for n in names]
