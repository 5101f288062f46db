"""The frames VBench's dimensions see: VBench reads 8-bit video files (decord) into float
tensors of 0..255, then resizes them as floats; these helpers give our float clips the same
8-bit values and the two resizes its DINO and CLIP dimensions use."""

from __future__ import annotations

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..frames import CLIP_MEAN, CLIP_STD, quantise

SIZE = 224
"""VBench's n_px: the short side for DINO, the crop for CLIP."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def uint8_frames(video: torch.Tensor) -> torch.Tensor:
    """uint8 [N, T, 3, H, W] of float clips [N, T, H, W, 3] in 0..1, as a file ComfyUI wrote
    holds them (verifiers.frames.quantise). Stays on ``video``'s device."""
    if video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(f"video must be [N, T, H, W, 3], got {tuple(video.shape)}")
    return quantise(video).permute(0, 1, 4, 2, 3)


def _normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """VBench's ``x.float().div(255)`` then ``Normalize(mean, std)``."""
    return TF.normalize(x.div(255.0), mean, std)


def dino_input(frames: torch.Tensor) -> torch.Tensor:
    """float32 [B, 3, h, w] for DINO from uint8 [B, 3, H, W]: VBench's ``dino_transform(224)``,
    the short side bilinearly resized to 224 without antialiasing (the aspect ratio kept, no
    crop), then ImageNet normalisation."""
    x = TF.resize(frames.float(), SIZE, interpolation=InterpolationMode.BILINEAR, antialias=False)
    return _normalise(x, IMAGENET_MEAN, IMAGENET_STD)


def clip_input(frames: torch.Tensor) -> torch.Tensor:
    """float32 [B, 3, 224, 224] for CLIP from uint8 [B, 3, H, W]: VBench's
    ``clip_transform(224)``, the short side bicubically resized to 224 without antialiasing
    (values may overshoot 0..255, as VBench leaves them), centre crop, CLIP normalisation."""
    x = TF.resize(frames.float(), SIZE, interpolation=InterpolationMode.BICUBIC, antialias=False)
    return _normalise(TF.center_crop(x, SIZE), CLIP_MEAN, CLIP_STD)
