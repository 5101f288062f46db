"""ToyAV's decoder: frames and waveform from latents, continuous in the latent so that partly
denoised states decode to blends (of colors, shapes, timbres) instead of failing, and so that
the continuous attributes (size, brightness, bounce height, pitch, loudness) vary smoothly."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import latent
from .vocabulary import COLORS, FLOOR_MARGIN, PALETTE, SCALES, SHAPES, SOUNDS

BACKGROUND = (0.05, 0.05, 0.08)


@dataclass(frozen=True)
class Clip:
    """The clip format and the bounce period (seconds between floor impacts)."""

    width: int = 64
    height: int = 64
    fps: float = 24.0
    duration: float = 2.0
    sample_rate: int = 16000
    period: float = 0.5

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"frames must be at least 16x16, got {self.width}x{self.height}")
        if not (self.fps > 0 and self.duration > 0 and self.sample_rate > 0 and self.period > 0):
            raise ValueError("fps, duration, sample_rate and period must be positive")
        if self.frames < 2 or self.samples < 2:
            raise ValueError(f"a {self.duration} s clip is too short for {self.fps} fps / "
                             f"{self.sample_rate} Hz")
        if self.period * self.sample_rate < 64:
            raise ValueError(f"a period of {self.period} s is too short to hold a sound")

    @property
    def frames(self) -> int:
        return round(self.duration * self.fps)

    @property
    def samples(self) -> int:
        return round(self.duration * self.sample_rate)


def _weights(coords: torch.Tensor) -> torch.Tensor:
    """Blend weights from attribute coordinates [N, K]: relu, normalised (all zero if none > 0)."""
    w = coords.clamp(min=0)
    return w / w.sum(-1, keepdim=True).clamp(min=1e-6)


def _signed_distance(shape: str, dx: torch.Tensor, dy: torch.Tensor,
                     a: torch.Tensor) -> torch.Tensor:
    """Distance in pixels outside (> 0) or inside (< 0) the edge of ``shape`` of half-extent
    ``a``, at offsets (dx, dy) from its center (y down); 0.5 minus it is the pixel coverage."""
    if shape == "ball":
        return torch.sqrt(dx ** 2 + dy ** 2) - a
    if shape == "cube":
        return torch.maximum(dx.abs(), dy.abs()) - a
    return torch.maximum(dy - a, (2 * dx.abs() - dy - a) / math.sqrt(5))  # pyramid, apex up


def _one_shot(name: str, n: int, sample_rate: int, pitch: torch.Tensor, peak: torch.Tensor,
              ) -> torch.Tensor:
    """[P, n] samples of one impact's sound for P (pitch factor, peak amplitude) pairs, attack
    at sample 0 (a 1 ms ramp). A pitch factor plays the sound that much faster, so it scales
    every tonal frequency (and shortens the ring) alike; factor 1 and peak 0.8 is the base sound."""
    on = pitch.device
    t = torch.arange(n, dtype=torch.float64, device=on) / sample_rate * pitch.double()[:, None]  # [P, n]
    attack = (t / 1e-3).clamp(max=1.0)
    if name == "bell":  # inharmonic partials, long ring
        ratios, amps, decays = (1.0, 2.32, 4.25, 6.63), (1.0, 0.6, 0.4, 0.25), (0.35, 0.25, 0.15, 0.1)
        wave = sum(a * torch.exp(-t / d) * torch.sin(2 * math.pi * 600.0 * r * t)
                   for r, a, d in zip(ratios, amps, decays))
    elif name == "drum":  # low sine gliding down plus a noise burst (not pitched), short
        glide = 2 * math.pi * (60.0 * t + 90.0 * 0.03 * (1 - torch.exp(-t / 0.03)))
        real = torch.arange(n, dtype=torch.float64, device=on) / sample_rate
        noise = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(on)
        wave = torch.exp(-t / 0.08) * torch.sin(glide) + 0.5 * torch.exp(-real / 0.015) * noise
    else:  # whistle: high pure tone with a slight vibrato
        wave = torch.exp(-t / 0.15) * torch.sin(2 * math.pi * 2400.0 * t
                                                + 40.0 / 6.0 * torch.sin(2 * math.pi * 6.0 * t))
    wave = attack * wave
    return (peak[:, None] * wave / wave.abs().amax(-1, keepdim=True)).to(torch.float32)


class Renderer:
    """Renders latents [N, dim] of one layout for one clip format; caches the pixel grid."""

    def __init__(self, clip: Clip, device: torch.device | str = "cpu",
                 layout: latent.Layout = latent.DISCRETE) -> None:
        self.clip, self.layout = clip, layout
        h, w = clip.height, clip.width
        self.ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5).view(1, 1, h, 1)
        self.dx = (torch.arange(w, dtype=torch.float32, device=device) + 0.5 - w / 2).view(1, 1, 1, w)
        self.times = torch.arange(clip.frames, dtype=torch.float32, device=device) / clip.fps
        self.palette = torch.tensor([PALETTE[c] for c in COLORS], device=device)
        self.background = torch.tensor(BACKGROUND, device=device)
        self.cycle = round(clip.period * clip.sample_rate)

    def _physical(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each continuous attribute's physical quantity [N] (float64, then cast once)."""
        values = latent.values(states.double(), self.layout)
        return {a: SCALES[a].physical(v) for a, v in values.items()}

    def video(self, states: torch.Tensor) -> torch.Tensor:
        """Frames [N, T, H, W, 3] in 0..1."""
        layout, (h, w), period = self.layout, (self.clip.height, self.clip.width), self.clip.period
        physical = self._physical(states)
        size = (physical["size"] * min(h, w)).float()[:, None, None, None]  # half the extent
        bounce = (physical["height"] * h).float()[:, None]  # apex above the resting position
        floor = (h - FLOOR_MARGIN * h - physical["size"] * min(h, w)).float()[:, None]  # center at impact
        video_phase, _ = latent.phases(states, period, layout)
        u = torch.remainder(self.times[None] - video_phase[:, None], period) / period  # [N, T]
        center = floor - bounce * 4 * u * (1 - u)
        dy = self.ys - center[:, :, None, None]  # [N, T, H, 1]
        shape_w = _weights(states[:, layout.shape])
        mask = torch.zeros_like(dy * self.dx)
        for i, shape in enumerate(SHAPES):
            if shape_w[:, i].any():  # a finished sample has a single shape: skip the others
                coverage = (0.5 - _signed_distance(shape, self.dx, dy, size)).clamp(0, 1)
                mask += shape_w[:, i, None, None, None] * coverage
        gain = physical["brightness"].float()[:, None]
        # sums, not BLAS products: MKL's result for tiny matrices depends on their memory
        # alignment, and one bit can flip a pixel's 8-bit rounding between two processes
        color = gain * (_weights(states[:, layout.color])[:, :, None] * self.palette).sum(1)  # [N, 3]
        frames = self.background + mask[..., None] * (color[:, None, None, None] - self.background)
        return frames.clamp(0, 1)

    def audio(self, states: torch.Tensor) -> torch.Tensor:
        """Mono waveform [N, 1, S]: the blended timbre restarted at every impact of the audio
        part's own phase, silence before the first."""
        _, audio_phase = latent.phases(states, self.clip.period, self.layout)
        physical = self._physical(states)
        onset = torch.round(audio_phase * self.clip.sample_rate).long()  # [N]
        n = torch.arange(self.clip.samples, device=states.device)
        since = n[None] - onset[:, None]  # [N, S]
        index = torch.remainder(since, self.cycle)
        sound_w = _weights(states[:, self.layout.sound])  # [N, 3]
        timbres = torch.stack([_one_shot(s, self.cycle, self.clip.sample_rate, physical["pitch"],
                                         physical["loudness"]) for s in SOUNDS], 1)  # [N, 3, cycle]
        blend = (sound_w[:, :, None] * timbres.to(states.device)).sum(1)  # a sum, as for the color
        wave = blend.gather(1, index) * (since >= 0)
        return wave[:, None]
