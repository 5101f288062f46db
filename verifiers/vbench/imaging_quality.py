"""VBench's imaging quality: MUSIQ trained on SPAQ scores every frame of the 8-bit video (frames
whose longer side exceeds 512 px first shrunk to 512, VBench's default 'longer' mode); a clip's
score is the mean over its frames, divided by 100 as VBench divides its dimension score, so the
mean over clips is VBench's number (0..1, higher is better)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.transforms import functional as TF

from ...core.batch import AVBatch, MediaError
from ...core.checkpoints import CheckpointError, fingerprint
from .frames import uint8_frames
from .musiq import MUSIQ, load_musiq

NAME = "imaging_quality"
FILE = "musiq_spaq_ckpt-358bb6af.pth"
PUBLISHED = f"https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/{FILE}"
FILES: tuple[tuple[str, str], ...] = ((FILE, PUBLISHED),)
LICENCE = ("MUSIQ: Google Research, Apache-2.0 (google-research/musiq); this file is pyiqa's "
           "conversion, published by IQA-PyTorch (code under PolyForm Noncommercial 1.0.0), "
           "with no licence stated for the weights")
LONGER_SIDE = 512
"""VBench's 'longer' mode: a frame whose longer side exceeds this is shrunk to it."""
SCALE = 100.0
"""VBench divides the SPAQ score (about 0..100) by this."""


def load(folder: str | Path, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> "ImagingQuality":
    """The dimension with ``folder/musiq_spaq_ckpt-358bb6af.pth`` (the ComfyUI models folder
    "vbench"), its sizes read off the file, loaded strictly."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise CheckpointError(f"VBench's imaging quality needs {FILE} (MUSIQ trained on SPAQ) in "
                              f"{Path(folder)}; download it from {PUBLISHED} into that folder")
    return ImagingQuality(load_musiq(path, device, dtype), f"{NAME}:musiq_spaq {fingerprint(path)}")


def vbench_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [M, 3, H, W] frames of one size as VBench feeds MUSIQ: float32 in 0..1, shrunk
    (bilinear, no antialiasing, rounded back to 8 bits) to a longer side of 512 if it is longer."""
    h, w = frames.shape[-2:]
    if max(h, w) > LONGER_SIDE:
        scale = LONGER_SIDE / max(h, w)
        size = [int(scale * h), int(scale * w)]
        if min(size) < 1:
            raise MediaError(f"a {h}x{w} frame is too thin for imaging quality: VBench shrinks it to "
                             f"{size[0]}x{size[1]}")
        frames = TF.resize(frames, size, antialias=False)
    return frames / 255.0


class ImagingQuality:
    """VBench's imaging quality of each clip (Tensor[N], float64, about 0..1), frames scored
    ``chunk`` at a time on the model's device and dtype."""

    name = NAME

    def __init__(self, model: MUSIQ, identity: str, chunk: int = 16) -> None:
        self.model, self.identity, self.chunk = model, identity, chunk

    def models(self) -> list[torch.nn.Module]:
        return [self.model]

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        n, t = batch.video.shape[:2]
        frames = vbench_frames(uint8_frames(batch.video).flatten(0, 1))
        device = self.model.head.weight.device
        with torch.no_grad():
            scores = torch.cat([self.model(part.to(device)).cpu() for part in frames.split(self.chunk)])
        return scores.double().view(n, t).mean(1) / SCALE
