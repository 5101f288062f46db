"""What every frame-reading verifier shares: the reference pipelines read 8-bit frames from a
video file, and the CLIP image statistics both ImageBind and Qwen2-VL normalise with."""

from __future__ import annotations

import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def quantise(frames: torch.Tensor) -> torch.Tensor:
    """uint8 of floats in 0..1, on their device, as ComfyUI's video writers store them (scale by
    255, clamp, truncate; NaN as 0): the values a reference pipeline reads back from the file."""
    return torch.nan_to_num(frames.detach().float() * 255).clamp(0, 255).to(torch.uint8)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """[..., H, W, 3] floats in 0..1 as [..., 3, H, W] uint8 on the CPU (``quantise``)."""
    return quantise(frames.detach().cpu()).movedim(-1, -3)


def clip_normalise(x: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """(x - mean) / std per RGB channel along ``channel_dim`` of 0..1 images."""
    shape = [1] * x.ndim
    shape[channel_dim] = 3
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(shape)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(shape)
    return (x - mean) / std
