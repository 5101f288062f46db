"""JavisDiT's sampling schedule: rectified-flow timesteps 1000 (1 - i / steps), each moved by
the reference's resolution- and length-dependent shift (``timestep_transform``), then 0. As
sigmas (t / 1000) they are exactly what its Euler loop steps through; ComfyUI's ``simple``
scheduler would snap them to a 1/1000 grid."""

from __future__ import annotations

import math

BASE_RESOLUTION = 512 * 512


def shift_ratio(height: int, width: int, num_frames: int) -> float:
    """sqrt(H W / 512^2) * sqrt(latent frames), with latent frames = num_frames // 17 * 5 (1 for
    a single image), from the pixel size and frame count. 3.4206 at 240 x 426 x 102."""
    frames = 1 if num_frames == 1 else num_frames // 17 * 5
    return math.sqrt(height * width / BASE_RESOLUTION) * math.sqrt(frames)


def shift(s: float, ratio: float) -> float:
    """The transform of a normalised timestep s in [0, 1]: r s / (1 + (r - 1) s)."""
    return ratio * s / (1 + (ratio - 1) * s)


def sigmas(steps: int, ratio: float) -> list[float]:
    """steps + 1 sigmas: shift(1 - i / steps) for i < steps, then 0."""
    if steps < 1:
        raise ValueError(f"need at least 1 step, got {steps}")
    return [shift(1 - i / steps, ratio) for i in range(steps)] + [0.0]
