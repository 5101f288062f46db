"""A counting fake generator and simple verifiers for testing the search engines exactly."""

from __future__ import annotations

import torch

from comfyui_avits.core.generator import mutate_flow_state
from comfyui_avits.verifiers import AVBatch


class CountingGenerator:
    """States are 2-vectors; one step maps x -> 0.8 x + 0.1 (plus, unless deterministic, noise
    drawn from the candidate's seed and the step), so the finished sample depends continuously
    on the noise. Logs every denoise and decode call."""

    def __init__(self, steps: int = 30, deterministic: bool = True, prompt: str = "p"):
        self.steps, self.deterministic, self.prompt = steps, deterministic, prompt
        self.nfe = 0
        self.calls: list[tuple[int, int, int]] = []  # (batch, start, end)
        self.seen_seeds: list[list[int]] = []
        self.decoded = 0
        self.decode_calls: list[int] = []

    def initial_noise(self, seeds):
        return [torch.randn(2, generator=torch.Generator().manual_seed(s)) for s in seeds]

    def mutate(self, state, step, beta, seed, mode):
        eps = torch.randn(2, generator=torch.Generator().manual_seed(seed))
        return mutate_flow_state(state, eps, step, 1 - step / self.steps, beta, mode)

    def denoise(self, states, start, end, seeds, record=(), on_step=None):
        x = torch.stack(states)
        self.calls.append((len(states), start, end))
        self.seen_seeds.append(list(seeds))
        rec = {}
        for i in range(start, end + 1):
            if i in record:
                rec[i] = list(x.clone())
            if i == end:
                break
            x = 0.8 * x + 0.1
            if not self.deterministic:
                x = x + 0.01 * torch.stack([torch.randn(2, generator=torch.Generator().manual_seed(
                    1000 * s + i)) for s in seeds])
            self.nfe += len(states)
            if on_step:
                on_step(len(states))
        return list(x), rec

    def decode(self, states):
        x = torch.stack(states)
        self.decoded += len(states)
        self.decode_calls.append(len(states))
        video = x[:, 0].reshape(-1, 1, 1, 1, 1).expand(-1, 4, 2, 2, 3).clone()
        audio = x[:, 1].reshape(-1, 1, 1).expand(-1, 1, 400).clone()
        return AVBatch(video, 4.0, audio, 400)

    def store(self, state):
        return state

    def to_latent(self, states):
        return {"samples": torch.stack(states)}


class Fixed:
    """Rewards given in advance: the k-th clip this verifier scores gets ``values[k]``."""

    def __init__(self, name: str, values):
        self.name, self.values, self.k = name, list(values), 0

    def __call__(self, batch, prompts):
        out = torch.tensor(self.values[self.k:self.k + len(batch)], dtype=torch.float64)
        self.k += len(batch)
        return out


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


class PredictingGenerator(CountingGenerator):
    """CountingGenerator with x0 predictions: the exact sample the state before the last step
    leads to (a perfect predictor), at no extra step."""

    def denoise_predicting(self, states, start, end, seeds, on_step=None):
        before, _ = self.denoise(states, start, end - 1, seeds, on_step=on_step) if end - 1 > start else (states, {})
        finals, _ = self.denoise(before, end - 1, end, seeds, on_step=on_step)
        left = self.steps - (end - 1)
        x0 = [0.5 + (x - 0.5) * 0.8 ** left for x in before]
        return finals, x0
