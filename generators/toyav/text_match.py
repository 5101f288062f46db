"""ToyTextMatch: how well a clip shows the ToyAV attributes its prompt names, read off the pixels
and the waveform alone (never off latents), so it judges any generator's output the same way."""

from __future__ import annotations

import torch

from ...core.batch import AVBatch
from .vocabulary import COLORS, FILL_RATIO, PALETTE, SHAPES, SOUNDS, parse_prompt

SOUND_CENTROID_HZ: dict[str, float] = {"bell": 900.0, "drum": 430.0, "whistle": 2400.0}
"""Where each timbre's spectral centroid lies: a bell rings in the middle, a drum thuds low, a
whistle is a high tone (measured on ToyAV's renders; the unit tests check they still agree)."""

_COLOR_SIGMA = 0.15  # RGB distance; the palette's colors are >= 0.7 apart
_FILL_SIGMA = 0.07  # the fill ratios are >= 0.2 apart
_CENTROID_SIGMA = 0.35  # octaves; the centroids are >= 1 octave apart
_MIN_CONTRAST = 0.1  # an object must differ from the background by this much (0..1 scale)
_MIN_AREA = 4  # pixels for a frame's object to count towards the shape
_SILENCE = 1e-8  # mean square below which audio is silent
_MAX_FRAMES = 16  # frames analysed per clip: enough for a robust median, and fast


def _similarities(distance_sq: torch.Tensor, sigma: float, present: torch.Tensor) -> torch.Tensor:
    """Soft assignment [N, K] to K prototypes from squared distances; zeros where not present."""
    return torch.softmax(-distance_sq / (2 * sigma ** 2), dim=-1) * present[:, None]


class ToyTextMatch:
    """Mean, over the attributes the prompt names, of the soft probability that the clip shows the
    named value: color from the object's mean pixel color, shape from how much of its bounding box
    it fills, sound from the waveform's spectral centroid. 0..1, higher is better."""

    def __init__(self, name: str = "toy_text_match") -> None:
        self.name = name
        self._palette = torch.tensor([PALETTE[c] for c in COLORS])
        self._fill = torch.tensor([FILL_RATIO[s] for s in SHAPES])
        self._centroid = torch.log2(torch.tensor([SOUND_CENTROID_HZ[s] for s in SOUNDS]))

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        n = len(batch)
        if len(prompts) not in (1, n):
            raise ValueError(f"need one prompt or one per clip ({n}), got {len(prompts)}")
        named = [parse_prompt(p) for p in (prompts * n if len(prompts) == 1 else prompts)]
        stride = -(-batch.video.shape[1] // _MAX_FRAMES)
        video = batch.video[:, ::stride].detach().float().cpu()
        color, shape = self._color_shape(video)
        sound = self._sound(batch.audio.detach().float().cpu(), batch.sample_rate)
        table = {"color": (color, COLORS), "shape": (shape, SHAPES), "sound": (sound, SOUNDS)}
        scores = [sum(float(table[a][0][i, table[a][1].index(v)]) for a, v in attrs.items()) / len(attrs)
                  for i, attrs in enumerate(named)]
        return torch.tensor(scores, dtype=torch.float32)

    def _color_shape(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Color [N, 4] and shape [N, 3] similarities of the object (the pixels that differ from
        the clip's median color, which is the background when the object is small)."""
        n = video.shape[0]
        background = video[:, :, ::2, ::2].reshape(n, -1, 3).median(dim=1).values  # [N, 3]
        diff = (video - background[:, None, None, None]).abs().amax(-1)  # [N, T, H, W]
        peak = diff.reshape(n, -1).amax(-1)  # [N]
        present = peak > _MIN_CONTRAST
        level = peak.clamp(min=_MIN_CONTRAST)[:, None, None, None]
        core = (diff > 0.8 * level).float()  # fully covered pixels carry the true color
        mean_color = (video * core[..., None]).sum((1, 2, 3)) / core.sum((1, 2, 3)).clamp(min=1)[:, None]
        color = _similarities(torch.cdist(mean_color, self._palette).square(), _COLOR_SIGMA, present)

        mask = diff > 0.5 * level  # [N, T, H, W]
        area = mask.sum((2, 3)).float()
        box = mask.any(3).sum(2).float() * mask.any(2).sum(2).float()  # rows x columns touched
        valid = area >= _MIN_AREA
        fill = torch.where(valid, area / box.clamp(min=1), torch.nan).nanmedian(dim=1).values
        has_shape = present & valid.any(1)
        fill = torch.where(has_shape, fill, 0.0)
        shape = _similarities((fill[:, None] - self._fill).square(), _FILL_SIGMA, has_shape)
        return color, shape

    def _sound(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Sound similarities [N, 3] from the spectral centroid (in octaves) of the mono mix."""
        mono = audio.mean(1).double()  # [N, S]
        power = torch.view_as_real(torch.fft.rfft(mono)).square().sum(-1)
        freqs = torch.fft.rfftfreq(mono.shape[-1], 1 / sample_rate).double()
        centroid = (power * freqs).sum(-1) / power.sum(-1).clamp(min=1e-20)
        octaves = torch.log2(centroid.clamp(min=1.0)).float()
        audible = mono.square().mean(-1) > _SILENCE
        return _similarities((octaves[:, None] - self._centroid).square(), _CENTROID_SIGMA, audible)
