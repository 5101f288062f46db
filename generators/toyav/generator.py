"""ToyAVGenerator: the embedded default generator, a procedural bouncing-object world with a real
iterative sampler, no weights and CPU speed; it implements core.generator.Generator."""

from __future__ import annotations

from typing import Sequence

import torch

from ...core.batch import AVBatch
from ...core.checks import finite
from ...core.generator import StepCallback, mutate_flow_state
from . import latent, sampler
from .render import Clip, Renderer
from .vocabulary import (ATTRIBUTES, SOUNDS, SYNC_EASE, TENDENCIES, WORLDS, closeness, parse_prompt,
                         targets, timing)

NUM_PHASES = 4
"""Bounce phases in the dataset, evenly spaced over one period: few enough that a sample out of
sync is off by at least a quarter period (125 ms by default), which a sync verifier can see."""


class ToyAVGenerator:
    """Candidates are float32 latents [dim] of the world's layout (latent.LAYOUTS). Naive sampling
    misses the prompt (caption noise) and drifts out of sync (weak audio-video coupling); search
    over seeds fixes both. ``world="discrete"`` has only categorical attributes (color, shape,
    sound) and phases, so an outcome jumps between items as the noise moves; "continuous" adds
    size, brightness, bounce height, pitch and loudness, smooth in the noise (sampler.Mixture) and
    biased by the object's color, shape and sound (vocabulary.TENDENCIES). How far out of sync a
    naive clip drifts depends on its sound (vocabulary.SYNC_EASE) and on the prompt's timing grid
    (vocabulary.timing), so every outcome varies with the prompt as well as with the seed.
    The discrete world draws every clip at the continuous scales' centers and cannot follow a
    prompt's level words (the oracle and ToyTextMatch still grade them)."""

    deterministic = True

    def __init__(self, prompt: str, steps: int = 30, guidance: float = 3.0, coupling: float = 0.28,
                 caption_noise: float = 0.5, width: int = 64, height: int = 64, fps: float = 24.0,
                 duration: float = 2.0, sample_rate: int = 16000, device: str | torch.device = "cpu",
                 period: float = 0.5, world: str = "discrete",
                 mixture: sampler.Mixture = sampler.Mixture()) -> None:
        if world not in WORLDS:
            raise ValueError(f"world must be one of {WORLDS}, got {world!r}")
        self.world, self.layout = world, latent.LAYOUTS[world]
        self.steps = finite("steps", steps, 1, 10_000, integer=True)
        self.guidance = finite("guidance", guidance, 0, 100)
        self.coupling = finite("coupling", coupling, 0, 1)
        self.caption_noise = finite("caption_noise", caption_noise, 0, 1, lo_open=True)
        self.clip = Clip(finite("width", width, 8, 4096, integer=True),
                         finite("height", height, 8, 4096, integer=True),
                         finite("fps", fps, 0, 240, lo_open=True),
                         finite("duration", duration, 0, 600, lo_open=True),
                         finite("sample_rate", sample_rate, 1000, 192_000, integer=True),
                         finite("period", period, 0, 600, lo_open=True))
        self._prompt = prompt
        self.device = torch.device(device)
        self.nfe = 0
        named = parse_prompt(prompt)
        items, labels = latent.dataset(NUM_PHASES, self.clip.period, timing=timing(named))
        log_likelihood = sampler.caption_log_likelihood(labels, _wanted(prompt), self.caption_noise)
        ease = torch.tensor([SYNC_EASE[s] for s in SOUNDS], dtype=torch.float64)[labels[:, 2]]
        self._denoiser = sampler.GuidedDenoiser(items.to(torch.float64), log_likelihood,
                                                self.guidance, self.coupling ** ease)
        lay = self.layout  # the item coordinates, then the continuous ones, in the world's layout
        self._item_columns = [*range(lay.video_phase.stop), *range(lay.sound.start, lay.audio_phase.stop)]
        self._continuous = list(lay.continuous.values())
        wanted = targets(named)
        self._mixture = (sampler.MixtureDenoiser(mixture, [wanted.get(a) for a in lay.continuous],
                                                 self.guidance, [_shifts(a, named) for a in lay.continuous])
                         if self._continuous else None)
        self._renderer = Renderer(self.clip, self.device, lay)

    @property
    def prompt(self) -> str:
        """Fixed at construction: the sampler's caption likelihood is built from it."""
        return self._prompt

    def initial_noise(self, seeds: Sequence[int]) -> list[torch.Tensor]:
        return [torch.randn(self.layout.dim, generator=torch.Generator().manual_seed(int(s))).to(self.device)
                for s in seeds]

    def sigma(self, step: int) -> float:
        """Rectified flow's noise level t at ``step``: 1 at step 0, 0 at the end."""
        if not 0 <= step <= self.steps:
            raise ValueError(f"step {step} is outside 0..{self.steps}")
        return 1.0 - step / self.steps

    def sigmas(self) -> list[float]:
        """The schedule sampled, one noise level per step boundary (for the report)."""
        return [self.sigma(s) for s in range(self.steps + 1)]

    def mutate(self, state: torch.Tensor, step: int, beta: float, seed: int,
               mode: str) -> torch.Tensor:
        """The state is x_t itself, so the reference's mutation applies as written."""
        eps = torch.randn(state.shape, generator=torch.Generator().manual_seed(int(seed)),
                          dtype=state.dtype).to(state.device)
        return mutate_flow_state(state, eps, step, self.sigma(step), beta, mode)

    def denoise_predicting(self, states: list[torch.Tensor], start: int, end: int,
                           seeds: Sequence[int] = (), on_step: StepCallback | None = None,
                           ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """As denoise, with the denoiser's x0 of the last step (computed by that step anyway)."""
        if not 0 <= start < end <= self.steps:
            raise ValueError(f"need 0 <= start < end <= {self.steps}, got start={start}, end={end}")
        last: list[torch.Tensor] = []
        finals, _ = self.denoise(states, start, end, seeds, on_step=on_step, _x0=last)
        return finals, list(last[-1].to(self.device, torch.float32).unbind(0))

    def denoise(self, states: list[torch.Tensor], start: int, end: int, seeds: Sequence[int] = (),
                record: Sequence[int] = (), on_step: StepCallback | None = None,
                _x0: list | None = None) -> tuple[list[torch.Tensor], dict[int, list[torch.Tensor]]]:
        """Euler steps of the exact ODE: deterministic, so ``seeds`` are not needed."""
        if not 0 <= start <= end <= self.steps:
            raise ValueError(f"need 0 <= start <= end <= {self.steps}, got start={start}, end={end}")
        outside = [r for r in record if not start <= r <= end]
        if outside:
            raise ValueError(f"record steps {outside} are outside {start}..{end}")
        recorded: dict[int, list[torch.Tensor]] = {}
        if not states:
            return [], {r: [] for r in record}
        x = torch.stack([s.to(self.device, torch.float32) for s in states])
        for step in range(start, end + 1):
            if step in record:
                recorded[step] = list(x.unbind(0))
            if step == end:
                break
            t, t_next = self.sigma(step), self.sigma(step + 1)
            x64 = x.cpu().to(torch.float64)
            denoised = self._denoised(x64, t)
            if _x0 is not None:
                _x0.append(denoised)
            x = sampler.euler_step(x64, denoised, t, t_next).to(self.device, torch.float32)
            self.nfe += len(states)
            if on_step is not None:
                on_step(len(states))
        return list(x.unbind(0)), recorded

    def _denoised(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """The guided posterior mean of every coordinate: the items' and, in the continuous
        world, the independent continuous coordinates'."""
        if self._mixture is None:
            return self._denoiser(x, t)
        out = torch.empty_like(x)
        out[:, self._item_columns] = self._denoiser(x[:, self._item_columns], t)
        out[:, self._continuous] = self._mixture(x[:, self._continuous], t)
        return out

    def decode(self, states: list[torch.Tensor]) -> AVBatch:
        if not states:
            raise ValueError("decode needs at least one state")
        x = torch.stack([s.to(self.device, torch.float32) for s in states])
        return AVBatch(self._renderer.video(x), self.clip.fps, self._renderer.audio(x),
                       self.clip.sample_rate)

    def store(self, state: torch.Tensor) -> torch.Tensor:
        return state.cpu()

    def to_latent(self, states: list[torch.Tensor]) -> dict:
        return {"samples": torch.stack([s.detach().cpu() for s in states])}

    def clip_bytes(self) -> int:
        """Bytes of one decoded clip (float32 frames and waveform), for the search's budget."""
        c = self.clip
        return 4 * (c.frames * c.height * c.width * 3 + c.samples)

    def oracle(self, states: list[torch.Tensor], prompt: str) -> list[dict[str, float]]:
        """Ground truth for evaluation, never for selection, read off each finished latent.
        Higher is better: ``text_match`` (0..1), the mean over the attributes the prompt names of
        1/0 for a categorical one shown / not shown and vocabulary.closeness of a continuous one.
        Lower is better: ``sync_error_s``, the circular distance in seconds between the audio and
        video phases, and ``<attribute>_error`` for each continuous attribute the prompt names,
        |value - target| on its 0..1 scale."""
        named = parse_prompt(prompt)
        wanted, goals = _wanted(prompt), targets(named)
        if not states:
            return []
        x = torch.stack([s.detach().cpu().to(torch.float32) for s in states])
        shown = list(latent.attributes(x, self.layout).values())
        values = latent.values(x, self.layout)
        errors = {a: (values[a] - goal).abs() for a, goal in goals.items()}
        matches = [(shown[column] == index).to(torch.float32) for column, index in wanted.items()]
        matches += [closeness(e) for e in errors.values()]
        text_match = torch.stack(matches).mean(0)
        period = self.clip.period
        video_phase, audio_phase = latent.phases(x, period, self.layout)
        gap = torch.remainder(video_phase - audio_phase, period)
        sync = torch.minimum(gap, period - gap)
        return [{"text_match": float(text_match[i]), "sync_error_s": float(sync[i]),
                 **{f"{a}_error": float(e[i]) for a, e in errors.items()}} for i in range(len(x))]


def _wanted(prompt: str) -> dict[int, int]:
    """Attribute column (0 color, 1 shape, 2 sound) -> the value index the prompt asks for."""
    named = parse_prompt(prompt)
    return {column: values.index(named[attribute])
            for column, (attribute, values) in enumerate(ATTRIBUTES.items()) if attribute in named}


def _shifts(attribute: str, named: dict[str, str]) -> tuple[sampler.Shifts, sampler.Shifts]:
    """(unconditional, conditional) prior shifts of a continuous attribute: every category's that
    biases it, and the named category's alone where the prompt names one."""
    category, shift = TENDENCIES[attribute]
    every = tuple(shift.values())
    return every, ((shift[named[category]],) if category in named else every)
