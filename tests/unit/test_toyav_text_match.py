"""ToyTextMatch reads ToyAV attributes off pixels and audio: it must rank correct renders above
wrong ones, agree with the ToyAV oracle on samples, and stay finite on degenerate media."""

from __future__ import annotations

import pytest
import torch

from comfyui_avits.generators.toyav import COLORS, SHAPES, SOUNDS, ToyAVGenerator, prompt_set
from comfyui_avits.generators.toyav import latent
from comfyui_avits.generators.toyav.vocabulary import parse_prompt
from comfyui_avits.core.verifier import Verifier
from comfyui_avits.core.batch import AVBatch
from comfyui_avits.generators.toyav import ToyTextMatch


def render(gen: ToyAVGenerator, combos: list[tuple[str, str, str]], phase: float = 0.25) -> AVBatch:
    """Decoded finished latents with the given (color, shape, sound) attributes, in sync."""
    index = [torch.tensor([values.index(c[i]) for c in combos])
             for i, values in enumerate((COLORS, SHAPES, SOUNDS))]
    phases = torch.full((len(combos),), phase)
    return gen.decode(list(latent.encode(*index, phases, phases, period=0.5)))


def other(values: tuple[str, ...], value: str) -> str:
    return values[(values.index(value) + 1) % len(values)]


def test_is_a_named_verifier() -> None:
    verifier = ToyTextMatch()
    assert isinstance(verifier, Verifier) and verifier.name == "toy_text_match"
    assert ToyTextMatch(name="tm2").name == "tm2"


@pytest.mark.parametrize("prompt", prompt_set(12, seed=5))
def test_ranks_the_correct_render_above_wrong_ones(prompt: str) -> None:
    gen = ToyAVGenerator(prompt)
    named = parse_prompt(prompt)
    c, s, t = named["color"], named["shape"], named["sound"]
    combos = [(c, s, t), (other(COLORS, c), s, t), (c, other(SHAPES, s), t), (c, s, other(SOUNDS, t))]
    scores = ToyTextMatch()(render(gen, combos), [prompt])
    assert scores.shape == (4,) and scores.dtype == torch.float32
    assert scores[0] > 0.95
    assert (scores[1:] < scores[0] - 0.25).all(), scores


def test_scores_only_the_attributes_the_prompt_names() -> None:
    gen = ToyAVGenerator("a blue object")
    batch = render(gen, [("blue", "cube", "drum"), ("red", "cube", "drum")])
    scores = ToyTextMatch()(batch, ["a blue object", "a blue object"])
    assert scores[0] > 0.95 and scores[1] < 0.05


def test_works_at_another_resolution() -> None:
    gen = ToyAVGenerator("a green pyramid, whistle sound", width=96, height=80)
    scores = ToyTextMatch()(render(gen, [("green", "pyramid", "whistle"), ("green", "ball", "whistle")]),
                            [gen.prompt])
    assert scores[0] > 0.95 and scores[1] < 0.75


def test_black_frames_and_silence_score_low_and_finite() -> None:
    batch = AVBatch(torch.zeros(3, 8, 32, 32, 3), 24.0, torch.zeros(3, 2, 5333), 16000)
    scores = ToyTextMatch()(batch, ["a red ball bouncing, bell sound"])
    assert scores.shape == (3,) and torch.isfinite(scores).all() and (scores < 0.05).all()
    constant = AVBatch(torch.full((1, 8, 32, 32, 3), 0.7), 24.0, torch.full((1, 1, 5333), 0.1), 16000)
    assert torch.isfinite(ToyTextMatch()(constant, ["a drum"])).all()


def test_prompt_count_must_match() -> None:
    gen = ToyAVGenerator("a red ball")
    batch = render(gen, [("red", "ball", "bell")] * 3)
    with pytest.raises(ValueError):
        ToyTextMatch()(batch, ["a red ball", "a red ball"])


def test_agrees_with_the_oracle_on_samples() -> None:
    stats = pytest.importorskip("scipy.stats")
    oracle, scores = [], []
    for prompt in prompt_set(3, seed=2):
        gen = ToyAVGenerator(prompt)
        out, _ = gen.denoise(gen.initial_noise(range(16)), 0, 30)
        oracle += [r["text_match"] for r in gen.oracle(out, prompt)]
        scores += ToyTextMatch()(gen.decode(out), [prompt]).tolist()
    assert len(set(oracle)) >= 3  # the samples do differ in how well they match
    assert stats.spearmanr(oracle, scores).statistic > 0.8
