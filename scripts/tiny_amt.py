"""A tiny random AMT-S in the published format, for tests and benchmarks: ``amt-s.pth`` in
models/vbench/, AMT's checkpoint layout (the model's state dict under ``state_dict``, official
key names), read by the loader as the real file is. Only widths shrink (AMT-S's code fixes
them as constants, but each shows in the file's shapes); the four-level pyramid and the
correlation's radius 3 and 4 levels are fixed in the code and show in the file only as a
product the loader checks, so they stay as published, as do the three flows per pixel."""

from __future__ import annotations

from pathlib import Path

import torch

TINY = dict(channels=(4, 5, 6, 7), skip=4, flows=3, feat_layers=(4, 8, 12), feat_dim=8,
            hidden=8, flow_dim=4, corr_dim=6, fc_dim=5)
"""Distinct widths, so that a width read off the wrong key shows; bottleneck widths are
multiples of 4 (each block narrows to a quarter) and ``skip`` is below every decoder's width,
as AMT's blocks need."""


def build(seed: int = 0) -> torch.nn.Module:
    """A random tiny AMT-S (PyTorch's default initialisation, seeded)."""
    from comfyui_avits.verifiers.vbench.amt import AMTS, Architecture

    torch.manual_seed(seed)
    return AMTS(Architecture(**TINY)).eval()


def write(models_dir: Path, seed: int = 0) -> Path:
    """``models_dir/vbench/amt-s.pth``: the official file name."""
    path = Path(models_dir) / "vbench" / "amt-s.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": build(seed).state_dict()}, path)
    return path
