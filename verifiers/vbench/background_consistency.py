"""VBench's background consistency: CLIP ViT-B/32 image features of every frame (short side
224, centre crop), the consistency rule of consistency.py. 1 for a still clip."""

from __future__ import annotations

from pathlib import Path

import torch

from .clip_image import load_clip_image
from .consistency import Consistency
from .files import identity, require
from .frames import clip_input

NAME = "background_consistency"
FILES: tuple[tuple[str, str], ...] = (
    ("clip-vit-base-patch32.safetensors",
     "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors "
     "(saved under this name)"),)
LICENCE = "OpenAI CLIP weights and code: MIT (github.com/openai/CLIP, LICENSE)"


def load(folder: str | Path, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> Consistency:
    """Background consistency on ``folder``'s CLIP ViT-B/32 (VBench's runs in fp16 on a GPU)."""
    paths = require(folder, FILES)
    clip = load_clip_image(paths[FILES[0][0]], device, dtype)
    return Consistency(NAME, clip, clip_input, identity(NAME, paths, dtype))
