"""A counting fake generator and simple verifiers for testing the search engines exactly."""

from __future__ import annotations

import torch

from comfyui_avits.verifiers import AVBatch


class CountingGenerator:
    """States are 2-vectors; one step maps x -> 0.8 x + 0.1 (deterministic unless told),
    so the finished sample depends continuously on the noise. Logs every denoise call."""

    def __init__(self, steps: int = 30, deterministic: bool = True, prompt: str = "p"):
        self.steps, self.deterministic, self.prompt = steps, deterministic, prompt
        self.nfe = 0
        self.calls: list[tuple[int, int, int]] = []  # (batch, start, end)
        self.decoded = 0
        self._rng = torch.Generator().manual_seed(123)

    def initial_noise(self, seeds):
        return [torch.randn(2, generator=torch.Generator().manual_seed(s)) for s in seeds]

    def noise_like(self, state, rng):
        return torch.randn(state.shape, generator=rng)

    def sigma(self, step):
        return 1 - step / self.steps

    def combine(self, a, x, b, y):
        return a * x + b * y

    def denoise(self, states, start, end, record=(), on_step=None):
        x = torch.stack(states)
        self.calls.append((len(states), start, end))
        rec = {}
        for i in range(start, end + 1):
            if i in record:
                rec[i] = list(x.clone())
            if i == end:
                break
            x = 0.8 * x + 0.1
            if not self.deterministic:
                x = x + 0.01 * torch.randn(x.shape, generator=self._rng)
            self.nfe += len(states)
            if on_step:
                on_step(len(states))
        return list(x), rec

    def decode(self, states):
        x = torch.stack(states)
        self.decoded += len(states)
        video = x[:, 0].reshape(-1, 1, 1, 1, 1).expand(-1, 4, 2, 2, 3).clone()
        audio = x[:, 1].reshape(-1, 1, 1).expand(-1, 1, 400).clone()
        return AVBatch(video, 4.0, audio, 400)

    def store(self, state):
        return state


class Mean:
    """Reward = mean pixel (video) or mean sample (audio), times a scale."""

    def __init__(self, name: str, part: str, scale: float = 1.0):
        self.name, self.part, self.scale, self.calls = name, part, scale, []

    def __call__(self, batch, prompts):
        self.calls.append(len(batch))
        src = batch.video if self.part == "video" else batch.audio
        return src.flatten(1).mean(1) * self.scale


class NaNAfter:
    """A verifier that goes wrong: NaN for every candidate after its first call."""

    name = "broken"

    def __init__(self):
        self.n = 0

    def __call__(self, batch, prompts):
        self.n += 1
        return torch.full((len(batch),), float("nan") if self.n > 1 else 1.0)
