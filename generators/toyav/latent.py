"""The ToyAV latent layout: one float32 vector per candidate, a video part then an audio part,
each carrying its own copy of the bounce phase so that the two can disagree (be out of sync).

video part: [s_c * onehot(color) (4), s_s * onehot(shape) (3), s_p * (cos phi, sin phi) (2),
             continuous video attributes (continuous world: brightness, size, height)]
audio part: [s_t * onehot(sound) (3), s_p * (cos phi, sin phi) (2),
             continuous audio attributes (continuous world: pitch, loudness)]
with phi = 2 pi phase / period, the phase being the time of the first floor impact. A continuous
attribute's coordinate z is LOGIT_SCALE times the logit of its value v, so any real z is a
valid value and the data distribution over z can be a Gaussian mixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .vocabulary import AUDIO_CONTINUOUS, COLORS, SCALES, SHAPES, SOUNDS, VIDEO_CONTINUOUS


LOGIT_SCALE = 6.0
"""Continuous coordinates are this many times larger than the logits of their values: data well
above the unit noise make sampling settle a value early, so that a mutation of an intermediate
state moves it only a little (as the item norms do for the categories)."""


@dataclass(frozen=True)
class Layout:
    """Where each attribute sits in a latent of one world; the discrete world has no continuous
    coordinates, and its clips show every continuous attribute at its Scale's center."""

    video_continuous: tuple[str, ...] = ()
    audio_continuous: tuple[str, ...] = ()

    @property
    def color(self) -> slice:
        return slice(0, 4)

    @property
    def shape(self) -> slice:
        return slice(4, 7)

    @property
    def video_phase(self) -> slice:
        return slice(7, 9)

    @property
    def video(self) -> slice:
        return slice(0, 9 + len(self.video_continuous))

    @property
    def sound(self) -> slice:
        return slice(self.video.stop, self.video.stop + 3)

    @property
    def audio_phase(self) -> slice:
        return slice(self.sound.stop, self.sound.stop + 2)

    @property
    def audio(self) -> slice:
        return slice(self.video.stop, self.dim)

    @property
    def dim(self) -> int:
        return self.audio_phase.stop + len(self.audio_continuous)

    @property
    def continuous(self) -> dict[str, int]:
        """Continuous attribute -> its column."""
        video = {a: 9 + i for i, a in enumerate(self.video_continuous)}
        audio = {a: self.audio_phase.stop + i for i, a in enumerate(self.audio_continuous)}
        return {**video, **audio}


LAYOUTS: dict[str, Layout] = {"discrete": Layout(),
                              "continuous": Layout(VIDEO_CONTINUOUS, AUDIO_CONTINUOUS)}
DISCRETE = LAYOUTS["discrete"]
COLOR, SHAPE, VIDEO_PHASE = DISCRETE.color, DISCRETE.shape, DISCRETE.video_phase
SOUND, AUDIO_PHASE = DISCRETE.sound, DISCRETE.audio_phase
VIDEO, AUDIO, DIM = DISCRETE.video, DISCRETE.audio, DISCRETE.dim


@dataclass(frozen=True)
class Scales:
    """Norms of the latent's parts; they set how far apart the dataset items are, hence how early
    in sampling each attribute is decided."""

    color: float = 1.25
    shape: float = 1.25
    sound: float = 1.25
    phase: float = 1.0


def split(state: torch.Tensor, layout: Layout = DISCRETE) -> tuple[torch.Tensor, torch.Tensor]:
    """(video part, audio part) of one latent or of a batch [..., dim]."""
    return state[..., layout.video], state[..., layout.audio]


def encode(color: torch.Tensor, shape: torch.Tensor, sound: torch.Tensor, video_phase: torch.Tensor,
           audio_phase: torch.Tensor, period: float, scales: Scales = Scales(),
           layout: Layout = DISCRETE, values: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Latents [N, dim] from attribute indices [N], phases in seconds [N] and, for the layout's
    continuous attributes, values v in (0, 1) [N] (absent ones at v = 0.5)."""
    n = color.shape[0]
    out = torch.zeros(n, layout.dim, dtype=torch.float32)
    rows = torch.arange(n)
    out[rows, layout.color.start + color] = scales.color
    out[rows, layout.shape.start + shape] = scales.shape
    out[rows, layout.sound.start + sound] = scales.sound
    for part, phase in ((layout.video_phase, video_phase), (layout.audio_phase, audio_phase)):
        phi = 2 * math.pi * phase.to(torch.float32) / period
        out[:, part] = scales.phase * torch.stack([phi.cos(), phi.sin()], dim=-1)
    unknown = sorted(set(values or {}) - set(layout.continuous))
    if unknown:
        raise ValueError(f"this layout has no continuous attribute {unknown}")
    for attribute, v in (values or {}).items():
        out[:, layout.continuous[attribute]] = LOGIT_SCALE * torch.logit(v.to(torch.float32))
    return out


def phases(states: torch.Tensor, period: float,
           layout: Layout = DISCRETE) -> tuple[torch.Tensor, torch.Tensor]:
    """(video phase, audio phase) in seconds, in [0, period), of latents [N, dim]."""
    def one(part: slice) -> torch.Tensor:
        phi = torch.atan2(states[..., part.stop - 1], states[..., part.start])
        return torch.remainder(phi / (2 * math.pi) * period, period)
    return one(layout.video_phase), one(layout.audio_phase)


def attributes(states: torch.Tensor, layout: Layout = DISCRETE) -> dict[str, torch.Tensor]:
    """The attribute index each latent of [N, dim] shows most strongly."""
    return {"color": states[..., layout.color].argmax(-1), "shape": states[..., layout.shape].argmax(-1),
            "sound": states[..., layout.sound].argmax(-1)}


def values(states: torch.Tensor, layout: Layout = DISCRETE) -> dict[str, torch.Tensor]:
    """Every continuous attribute's value v in 0..1 [N]: from its coordinate, or its
    Scale's center where the layout has none (the discrete world)."""
    return {a: (torch.sigmoid(states[..., layout.continuous[a]] / LOGIT_SCALE) if a in layout.continuous
                else torch.full(states.shape[:-1], SCALES[a].center, dtype=states.dtype,
                                device=states.device))
            for a in SCALES}


def dataset(num_phases: int, period: float, scales: Scales = Scales(),
            timing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Every color x shape x sound x phase, in sync, in the discrete layout: (latents [M, DIM],
    attribute indices [M, 3]). The phases sit ``timing`` (0..1) of a slot (period / num_phases)
    after the slots' starts: a caption's clips bounce on their own grid
    (vocabulary.timing), so the phase that sampling settles on from a given noise, and the
    audio-video disagreement, depend on the prompt and not only on the seed. The continuous
    world adds its continuous coordinates (a Gaussian mixture each) in the sampler."""
    grid = torch.cartesian_prod(torch.arange(len(COLORS)), torch.arange(len(SHAPES)),
                                torch.arange(len(SOUNDS)), torch.arange(num_phases))
    phase = ((grid[:, 3].to(torch.float64) + timing) * period / num_phases).to(torch.float32)
    items = encode(grid[:, 0], grid[:, 1], grid[:, 2], phase, phase, period, scales)
    return items, grid[:, :3]
