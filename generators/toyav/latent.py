"""The ToyAV latent layout: one float32 vector per candidate, a video part then an audio part,
each carrying its own copy of the bounce phase so that the two can disagree (be out of sync).

video part: [s_c * onehot(color) (4), s_s * onehot(shape) (3), s_p * (cos phi, sin phi) (2)]
audio part: [s_t * onehot(sound) (3), s_p * (cos phi, sin phi) (2)]
with phi = 2 pi phase / period, the phase being the time of the first floor impact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .vocabulary import COLORS, SHAPES, SOUNDS

COLOR = slice(0, 4)
SHAPE = slice(4, 7)
VIDEO_PHASE = slice(7, 9)
SOUND = slice(9, 12)
AUDIO_PHASE = slice(12, 14)
VIDEO = slice(0, 9)
AUDIO = slice(9, 14)
DIM = 14


@dataclass(frozen=True)
class Scales:
    """Norms of the latent's parts; they set how far apart the dataset items are, hence how early
    in sampling each attribute is decided."""

    color: float = 1.25
    shape: float = 1.25
    sound: float = 1.25
    phase: float = 1.0


def split(state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(video part, audio part) of one latent or of a batch [..., DIM]."""
    return state[..., VIDEO], state[..., AUDIO]


def encode(color: torch.Tensor, shape: torch.Tensor, sound: torch.Tensor, video_phase: torch.Tensor,
           audio_phase: torch.Tensor, period: float, scales: Scales = Scales()) -> torch.Tensor:
    """Latents [N, DIM] from attribute indices [N] and phases in seconds [N]."""
    n = color.shape[0]
    out = torch.zeros(n, DIM, dtype=torch.float32)
    rows = torch.arange(n)
    out[rows, COLOR.start + color] = scales.color
    out[rows, SHAPE.start + shape] = scales.shape
    out[rows, SOUND.start + sound] = scales.sound
    for part, phase in ((VIDEO_PHASE, video_phase), (AUDIO_PHASE, audio_phase)):
        phi = 2 * math.pi * phase.to(torch.float32) / period
        out[:, part] = scales.phase * torch.stack([phi.cos(), phi.sin()], dim=-1)
    return out


def phases(states: torch.Tensor, period: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(video phase, audio phase) in seconds, in [0, period), of latents [N, DIM]."""
    def one(part: slice) -> torch.Tensor:
        phi = torch.atan2(states[..., part.stop - 1], states[..., part.start])
        return torch.remainder(phi / (2 * math.pi) * period, period)
    return one(VIDEO_PHASE), one(AUDIO_PHASE)


def attributes(states: torch.Tensor) -> dict[str, torch.Tensor]:
    """The attribute index each latent of [N, DIM] shows most strongly."""
    return {"color": states[..., COLOR].argmax(-1), "shape": states[..., SHAPE].argmax(-1),
            "sound": states[..., SOUND].argmax(-1)}


def dataset(num_phases: int, period: float,
            scales: Scales = Scales()) -> tuple[torch.Tensor, torch.Tensor]:
    """Every color x shape x sound x phase, in sync: (latents [M, DIM], attribute indices [M, 3])."""
    grid = torch.cartesian_prod(torch.arange(len(COLORS)), torch.arange(len(SHAPES)),
                                torch.arange(len(SOUNDS)), torch.arange(num_phases))
    phase = grid[:, 3].to(torch.float32) * period / num_phases
    items = encode(grid[:, 0], grid[:, 1], grid[:, 2], phase, phase, period, scales)
    return items, grid[:, :3]
