"""VBench's aesthetic quality: LAION's aesthetic predictor (a linear head on L2-normalised CLIP
ViT-L/14 image features) on every frame, divided by 10, averaged over the clip's frames."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ...core.batch import AVBatch
from ...core.checkpoints import load_strict, read_file, shape_of
from .clip_image import ClipImage, load_clip_image
from .features import CHUNK, frame_features
from .files import identity, require
from .frames import clip_input

NAME = "aesthetic_quality"
CLIP_FILE, HEAD_FILE = "clip-vit-large-patch14.safetensors", "sa_0_4_vit_l_14_linear.pth"
FILES: tuple[tuple[str, str], ...] = (
    (CLIP_FILE, "https://huggingface.co/openai/clip-vit-large-patch14/resolve/main/model.safetensors "
                "(saved under this name)"),
    (HEAD_FILE, f"https://github.com/LAION-AI/aesthetic-predictor/raw/main/{HEAD_FILE}"),)
LICENCE = ("OpenAI CLIP: MIT (github.com/openai/CLIP, LICENSE); LAION aesthetic predictor: MIT "
           "(github.com/LAION-AI/aesthetic-predictor, LICENSE)")
SCALE = 10.0
"""VBench divides the predictor's 1..10 rating by 10."""


class AestheticQuality:
    """Tensor[N], about 0..1, higher is better."""

    name = NAME

    def __init__(self, clip: ClipImage, head: torch.nn.Linear, identity: str,
                 chunk: int = CHUNK) -> None:
        self.clip, self.head, self.identity, self.chunk = clip, head, identity, chunk

    def models(self) -> list[torch.nn.Module]:
        return [self.clip, self.head]

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        features = F.normalize(frame_features(self.clip, batch, clip_input, self.chunk), dim=-1, p=2)
        w = self.head.weight
        with torch.no_grad():
            scores = self.head(features.to(w.device, w.dtype)).squeeze(-1).float().cpu()
        return (scores / SCALE).double().mean(dim=1)


def load_head(path: str | Path, width: int) -> torch.nn.Linear:
    """LAION's predictor (a Linear(width, 1) state dict) in fp32, as VBench runs it."""
    state = read_file(path)
    shape_of(state, "weight", path, "LAION's aesthetic predictor (a Linear state dict)")
    head = torch.nn.Linear(width, 1)
    load_strict(head, state, path, f"LAION's predictor on {width}-wide CLIP features")
    return head.eval()


def load(folder: str | Path, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> AestheticQuality:
    """Aesthetic quality on ``folder``'s CLIP ViT-L/14 (``dtype``; VBench's runs in fp16 on a
    GPU) and predictor (fp32)."""
    paths = require(folder, FILES)
    clip = load_clip_image(paths[CLIP_FILE], device, dtype)
    head = load_head(paths[HEAD_FILE], clip.tower.config.projection_dim).to(device)
    return AestheticQuality(clip, head, identity(NAME, paths, dtype))
