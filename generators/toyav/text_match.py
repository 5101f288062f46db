"""ToyTextMatch: how well a clip shows the ToyAV attributes its prompt names, read off the pixels
and the waveform alone (never off latents), so it judges any generator's output the same way."""

from __future__ import annotations

import torch

from ...core.batch import AVBatch
from .vocabulary import (COLORS, FILL_RATIO, FLOOR_MARGIN, PALETTE, SCALES, SHAPES, SOUNDS, closeness,
                         parse_prompt, targets)

SOUND_CENTROID_LOG2: dict[str, tuple[float, ...]] = {
    "bell": (9.602, 9.739, 9.878, 10.018, 10.159),
    "drum": (8.439, 8.597, 8.746, 8.872, 8.998),
    "whistle": (10.932, 11.082, 11.231, 11.381, 11.531),
}
"""log2 of each timbre's spectral centroid (Hz) over the first _WINDOW_S of its first impact, at
pitch values 0, 1/4, 1/2, 3/4, 1 (measured on ToyAV's renders; the unit tests check they agree): a bell rings in the middle, a drum
thuds low, a whistle is a high tone, and the ranges their pitches span stay > 0.5 octave apart."""

_COLOR_SIGMA = 0.12  # chord between unit RGB directions; the palette's are >= 0.55 apart
_FILL_SIGMA = 0.07  # the fill ratios are >= 0.2 apart
_CENTROID_SIGMA = 0.12  # octaves from a timbre's pitch range; the ranges are >= 0.55 apart
_MIN_CONTRAST = 0.1  # an object must differ from the background by this much (0..1 scale)
_MIN_AREA = 4  # pixels for a frame's object to count towards the shape
_SILENCE = 1e-8  # mean square below which audio is silent
_MAX_FRAMES = 16  # frames analysed per clip for color, shape and size: a robust median, and fast
_MAX_MOTION_FRAMES = 96  # consecutive frames analysed for the bounce height
_ONSET = 1e-3  # of the peak amplitude: where the first sound starts
_WINDOW_S = 0.25  # seconds of the first sound analysed for the timbre and the pitch


def _similarities(distance_sq: torch.Tensor, sigma: float, present: torch.Tensor) -> torch.Tensor:
    """Soft assignment [N, K] to K prototypes from squared distances; zeros where not present."""
    return torch.softmax(-distance_sq / (2 * sigma ** 2), dim=-1) * present[:, None]


def _apex(rise: torch.Tensor) -> torch.Tensor:
    """Highest value [N] of the sampled parabolic arcs rise [N, T]: the vertex of the parabola
    through each local maximum and its two neighbours (exact for a bounce), at least the max."""
    left, mid, right = rise[:, :-2], rise[:, 1:-1], rise[:, 2:]
    curvature = left - 2 * mid + right
    offset = 0.5 * (left - right) / curvature.where(curvature < -1e-6, -1.0)
    vertex = torch.where((mid >= left) & (mid >= right) & (curvature < -1e-6),
                         mid - 0.25 * (left - right) * offset, mid)
    return torch.maximum(vertex.amax(1), rise.amax(1))


class ToyTextMatch:
    """Mean, over the attributes the prompt names, of how well the clip shows each: for color,
    shape and sound the soft probability of the named value (color from the direction of the
    object's mean RGB, shape from how much of its bounding box it fills, sound from the waveform's
    spectral centroid against each timbre's pitch range); for size, brightness, bounce height,
    pitch and loudness vocabulary.closeness of the value read back (from the object's width, its
    color's gain over the palette, the apex of its bottom edge, the centroid's place in the
    timbre's range, the peak amplitude) to the word's target. 0..1, higher is better."""

    def __init__(self, name: str = "toy_text_match") -> None:
        self.name = name
        palette = torch.tensor([PALETTE[c] for c in COLORS])
        self._palette, self._directions = palette, palette / palette.norm(dim=1, keepdim=True)
        self._fill = torch.tensor([FILL_RATIO[s] for s in SHAPES])
        self._centroid = torch.tensor([SOUND_CENTROID_LOG2[s] for s in SOUNDS])  # [3, 5]

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        n = len(batch)
        if len(prompts) not in (1, n):
            raise ValueError(f"need one prompt or one per clip ({n}), got {len(prompts)}")
        named = [parse_prompt(p) for p in (prompts * n if len(prompts) == 1 else prompts)]
        read = self.read(batch)
        scores = []
        for i, attrs in enumerate(named):
            goals = targets(attrs)
            parts = [float(closeness(read[a][i] - goal) * read[f"{a}_present"][i])
                     for a, goal in goals.items()]
            parts += [float(read[a][i, values.index(attrs[a])])
                      for a, values in (("color", COLORS), ("shape", SHAPES), ("sound", SOUNDS))
                      if a in attrs]
            scores.append(sum(parts) / len(parts))
        return torch.tensor(scores, dtype=torch.float32)

    def read(self, batch: AVBatch) -> dict[str, torch.Tensor]:
        """Everything read off a batch: "color" [N, 4], "shape" [N, 3] and "sound" [N, 3]
        similarities, each continuous attribute's value [N] on its 0..1 scale (it may stray a
        little outside) and "<attribute>_present" [N] (0 where nothing could be read)."""
        stride = -(-batch.video.shape[1] // _MAX_FRAMES)
        video = batch.video.detach().float().cpu()
        out = self._video(video[:, ::stride], video[:, :_MAX_MOTION_FRAMES])
        out.update(self._sound(batch.audio.detach().float().cpu(), batch.sample_rate))
        return out

    def _video(self, video: torch.Tensor, motion: torch.Tensor) -> dict[str, torch.Tensor]:
        """Color, shape, brightness, size and height of the object (the pixels that differ from
        the clip's median color, which is the background when the object is small); ``motion``
        holds consecutive frames for the bounce."""
        n, _, h, w, _ = video.shape
        background = video[:, :, ::2, ::2].reshape(n, -1, 3).median(dim=1).values  # [N, 3]
        diff = (video - background[:, None, None, None]).abs().amax(-1)  # [N, T, H, W]
        peak = diff.reshape(n, -1).amax(-1)  # [N]
        present = peak > _MIN_CONTRAST
        level = peak.clamp(min=_MIN_CONTRAST)[:, None, None, None]
        core = (diff > 0.8 * level).float()  # fully covered pixels carry the true color
        mean_color = (video * core[..., None]).sum((1, 2, 3)) / core.sum((1, 2, 3)).clamp(min=1)[:, None]
        direction = mean_color / mean_color.norm(dim=1, keepdim=True).clamp(min=1e-6)
        color = _similarities(torch.cdist(direction, self._directions).square(), _COLOR_SIGMA, present)
        gain = (color * (mean_color @ self._palette.T) / self._palette.square().sum(1)).sum(1)

        mask = diff > 0.5 * level  # [N, T, H, W]
        area = mask.sum((2, 3)).float()
        box = mask.any(3).sum(2).float() * mask.any(2).sum(2).float()  # rows x columns touched
        valid = area >= _MIN_AREA
        fill = torch.where(valid, area / box.clamp(min=1), torch.nan).nanmedian(dim=1).values
        has_shape = present & valid.any(1)
        fill = torch.where(has_shape, fill, 0.0)
        shape = _similarities((fill[:, None] - self._fill).square(), _FILL_SIGMA, has_shape)

        coverage = (diff / level).clamp(0, 1)  # exact for a finished sample's antialiased edges
        covered = torch.where(valid, coverage.sum((2, 3)), torch.nan).nanmedian(dim=1).values
        half = (covered.nan_to_num(0.0) / (4 * shape @ self._fill).clamp(min=1e-6)).sqrt()  # area = fill (2a)^2
        rows = (motion - background[:, None, None, None]).abs().amax(-1).div(level).clamp(0, 1).amax(3)
        extent = rows.sum(-1).clamp(min=1e-6)  # [N, T]: the object's height in pixels
        middle = (rows * (torch.arange(h) + 0.5)).sum(-1) / extent
        rise = (1 - FLOOR_MARGIN) * h - (middle + extent / 2)  # the bottom edge above the floor
        gone = (rise.shape[1] < 3) | ~has_shape
        return {"color": color, "shape": shape,
                "brightness": SCALES["brightness"].value(gain.clamp(min=1e-6)),
                "brightness_present": present.float(),
                "size": SCALES["size"].value((half / min(h, w)).clamp(min=1e-6)),
                "size_present": has_shape.float(),
                "height": SCALES["height"].value((_apex(rise) / h).clamp(min=1e-6)
                                                 if rise.shape[1] >= 3 else torch.ones(n)),
                "height_present": (~gone).float()}

    def _sound(self, audio: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """Sound similarities [N, 3], pitch and loudness from the spectral centroid (in octaves)
        and the peak of the mono mix."""
        mono = audio.mean(1).double()  # [N, S]
        peak = mono.abs().amax(-1)
        # the first impact's sound alone: the same whatever the phase (a later one is cut off
        # by the clip's end, and each rings into the next)
        start = (mono.abs() > _ONSET * peak[:, None]).double().argmax(-1)  # [N]
        index = start[:, None] + torch.arange(round(_WINDOW_S * sample_rate))
        first = mono.gather(1, index.clamp(max=mono.shape[-1] - 1)) * (index < mono.shape[-1])
        power = torch.view_as_real(torch.fft.rfft(first)).square().sum(-1)
        freqs = torch.fft.rfftfreq(first.shape[-1], 1 / sample_rate).double()
        centroid = (power * freqs).sum(-1) / power.sum(-1).clamp(min=1e-20)
        octaves = torch.log2(centroid.clamp(min=1.0)).float()  # [N]
        audible = mono.square().mean(-1) > _SILENCE
        low, high = self._centroid[:, 0], self._centroid[:, -1]  # [3]
        outside = (low - octaves[:, None]).clamp(min=0) + (octaves[:, None] - high).clamp(min=0)
        sound = _similarities(outside.square(), _CENTROID_SIGMA, audible)
        pitch = (sound * torch.stack([_invert(row, octaves) for row in self._centroid], 1)).sum(1)
        loudness = SCALES["loudness"].value(peak.float().clamp(min=1e-6))
        return {"sound": sound, "pitch": pitch, "pitch_present": audible.float(),
                "loudness": loudness, "loudness_present": audible.float()}


def _invert(table: torch.Tensor, octaves: torch.Tensor) -> torch.Tensor:
    """The pitch value [N] at which a timbre's centroid table (at evenly spaced values 0..1,
    increasing) reaches ``octaves`` [N]: piecewise linear, extended linearly past the ends."""
    steps = len(table) - 1
    k = torch.searchsorted(table.contiguous(), octaves.contiguous()).clamp(1, steps)
    lo, hi = table[k - 1], table[k]
    return (k - 1 + (octaves - lo) / (hi - lo)) / steps

