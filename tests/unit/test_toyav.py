"""ToyAV: protocol conformance, exact sampler bookkeeping, rendering, oracle, and the failure modes
(wrong attributes, out of sync) that make it a useful testbed for search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from comfyui_avits.generators.toyav import (COLORS, DIM, PALETTE, SHAPES, SOUNDS, ToyAVGenerator,
                                            compose_prompt, parse_prompt, prompt_set, split)
from comfyui_avits.generators.toyav import latent
from comfyui_avits.core.generator import Generator, HasOracle
from comfyui_avits.core.batch import AVBatch

PROMPT = "a red ball bouncing, bell sound"
FARNEBACK = (None, 0.5, 3, 15, 3, 5, 1.2, 0)  # the sync checks' Farneback parameters


@pytest.fixture
def gen() -> ToyAVGenerator:
    return ToyAVGenerator(PROMPT)


def hand_built(color: str = "red", shape: str = "ball", sound: str = "bell", video_phase: float = 0.125,
               audio_phase: float | None = None) -> torch.Tensor:
    """One finished latent with the given attributes and phases (seconds)."""
    audio_phase = video_phase if audio_phase is None else audio_phase
    return latent.encode(torch.tensor([COLORS.index(color)]), torch.tensor([SHAPES.index(shape)]),
                         torch.tensor([SOUNDS.index(sound)]), torch.tensor([video_phase]),
                         torch.tensor([audio_phase]), period=0.5)[0]


def test_conforms_to_the_generator_protocol(gen: ToyAVGenerator) -> None:
    assert isinstance(gen, Generator)
    assert isinstance(gen, HasOracle)
    assert gen.prompt == PROMPT and gen.steps == 30 and gen.nfe == 0 and gen.deterministic


def test_initial_noise_is_reproducible_per_seed(gen: ToyAVGenerator) -> None:
    a, b = gen.initial_noise([3, 4]), gen.initial_noise([4, 3])
    assert torch.equal(a[0], b[1]) and torch.equal(a[1], b[0])
    assert not torch.equal(a[0], a[1])
    assert a[0].shape == (DIM,) and a[0].dtype == torch.float32
    video, audio = split(a[0])
    assert video.numel() + audio.numel() == DIM


def test_mutation_follows_the_reference_and_is_reproducible_from_its_seed(gen: ToyAVGenerator) -> None:
    state = gen.initial_noise([0])[0]
    eps = torch.randn(state.shape, generator=torch.Generator().manual_seed(7))
    assert torch.equal(gen.mutate(state, 0, 0.2, 7, "reference"), gen.mutate(state, 0, 0.2, 7, "reference"))
    assert torch.allclose(gen.mutate(state, 0, 0.2, 7, "reference"), 0.96 ** 0.5 * state + 0.2 * eps)
    assert torch.allclose(gen.mutate(state, 10, 0.2, 7, "reference"), state + gen.sigma(10) * eps)
    assert torch.allclose(gen.mutate(state, 10, 0.2, 7, "variance_preserving"),
                          0.96 ** 0.5 * state + 0.2 * gen.sigma(10) * eps)
    with pytest.raises(ValueError, match="mutation must be one of"):
        gen.mutate(state, 10, 0.2, 7, "other")


def test_sigma_runs_from_one_to_zero(gen: ToyAVGenerator) -> None:
    sigmas = [gen.sigma(i) for i in range(gen.steps + 1)]
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    with pytest.raises(ValueError):
        gen.sigma(gen.steps + 1)


def test_the_winner_is_a_comfyui_latent_and_the_schedule_is_reported(gen: ToyAVGenerator) -> None:
    x = gen.initial_noise([1, 2])
    latent = gen.to_latent(x)
    assert latent["samples"].shape == (2, DIM) and torch.equal(latent["samples"][1], x[1])
    assert gen.sigmas() == [gen.sigma(i) for i in range(gen.steps + 1)]
    assert gen.clip_bytes() == 4 * (48 * 64 * 64 * 3 + 32000)


def test_nfe_counts_one_per_state_per_step(gen: ToyAVGenerator) -> None:
    calls: list[int] = []
    gen.denoise(gen.initial_noise(range(4)), 0, 30, on_step=calls.append)
    assert gen.nfe == 120 and calls == [4] * 30
    gen.denoise(gen.initial_noise(range(3)), 5, 12)
    assert gen.nfe == 120 + 21
    gen.denoise(gen.initial_noise(range(3)), 12, 12)
    assert gen.nfe == 141


def test_split_rollout_equals_full_rollout(gen: ToyAVGenerator) -> None:
    noise = gen.initial_noise(range(6))
    full, _ = gen.denoise(noise, 0, 30)
    half, _ = gen.denoise(noise, 0, 10)
    rest, _ = gen.denoise(half, 10, 30)
    assert all(torch.equal(a, b) for a, b in zip(full, rest))


def test_a_state_denoises_the_same_alone_or_in_a_batch(gen: ToyAVGenerator) -> None:
    noise = gen.initial_noise(range(5))
    batched, _ = gen.denoise(noise, 0, 30)
    alone, _ = gen.denoise(noise[2:3], 0, 30)
    assert torch.equal(batched[2], alone[0])


def test_record_returns_the_states_at_the_requested_steps(gen: ToyAVGenerator) -> None:
    noise = gen.initial_noise(range(3))
    out, recorded = gen.denoise(noise, 0, 30, record=[0, 10, 30])
    assert sorted(recorded) == [0, 10, 30]
    at10, _ = gen.denoise(noise, 0, 10)
    assert all(torch.equal(a, b) for a, b in zip(recorded[0], noise))
    assert all(torch.equal(a, b) for a, b in zip(recorded[10], at10))
    assert all(torch.equal(a, b) for a, b in zip(recorded[30], out))


def test_denoise_rejects_bad_ranges(gen: ToyAVGenerator) -> None:
    noise = gen.initial_noise([0])
    for start, end, record in ((5, 4, ()), (-1, 3, ()), (0, 31, ()), (0, 10, (11,))):
        with pytest.raises(ValueError):
            gen.denoise(noise, start, end, record=record)
    assert gen.denoise([], 0, 30, record=[30]) == ([], {30: []})


@pytest.mark.parametrize("kwargs", [dict(steps=0), dict(guidance=-1.0), dict(coupling=1.5),
                                    dict(caption_noise=0.0), dict(width=8), dict(fps=0.0),
                                    dict(guidance=float("nan")), dict(fps=float("inf")),
                                    dict(duration=float("nan")), dict(steps=2.5)])
def test_invalid_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ToyAVGenerator(PROMPT, **kwargs)


def test_prompts_need_an_attribute() -> None:
    with pytest.raises(ValueError, match="names no ToyAV attribute"):
        ToyAVGenerator("a cat playing the piano")
    with pytest.raises(ValueError, match="two colors"):
        parse_prompt("a red and blue ball")


def test_prompt_language_round_trips() -> None:
    assert compose_prompt("red", "ball", "bell") == PROMPT
    assert parse_prompt(PROMPT) == {"color": "red", "shape": "ball", "sound": "bell"}
    assert parse_prompt("Two yellow Spheres") == {"color": "yellow", "shape": "ball"}
    assert parse_prompt(compose_prompt(None, "cube", None)) == {"shape": "cube"}
    prompts = prompt_set(12, seed=3)
    assert prompts == prompt_set(12, seed=3) and len(set(prompts)) == 12
    assert prompt_set(12, seed=4) != prompts
    with pytest.raises(ValueError):
        prompt_set(37)
    with pytest.raises(ValueError):
        compose_prompt("purple", "ball", "bell")


def test_store_keeps_cpu_states(gen: ToyAVGenerator) -> None:
    state = gen.initial_noise([0])[0]
    assert gen.store(state) is state


def test_decode_shapes_and_ranges(gen: ToyAVGenerator) -> None:
    out, recorded = gen.denoise(gen.initial_noise(range(3)), 0, 30, record=[15])
    for states in (out, recorded[15]):  # intermediate states decode to blends
        batch = gen.decode(states)
        assert isinstance(batch, AVBatch)
        assert batch.video.shape == (3, 48, 64, 64, 3) and batch.audio.shape == (3, 1, 32000)
        assert batch.fps == 24 and batch.sample_rate == 16000
        assert 0 <= batch.video.min() and batch.video.max() <= 1
        assert torch.isfinite(batch.audio).all() and batch.audio.abs().max() <= 1


@pytest.mark.parametrize("color", COLORS)
def test_frames_show_the_latent_color(gen: ToyAVGenerator, color: str) -> None:
    video = gen.decode([hand_built(color=color)]).video[0]
    object_pixels = video[(video - video[0, 0, 0]).abs().amax(-1) > 0.5]
    assert len(object_pixels) > 100
    assert torch.allclose(object_pixels.median(0).values, torch.tensor(PALETTE[color]), atol=0.02)


def test_sound_starts_with_a_sharp_attack_at_each_impact(gen: ToyAVGenerator) -> None:
    audio = gen.decode([hand_built(video_phase=0.125)]).audio[0, 0]
    onset = int(0.125 * 16000)
    assert audio[:onset].abs().max() == 0
    envelope = audio.abs().unfold(0, 80, 80).amax(-1)  # 5 ms windows
    for impact in (0.125, 0.625, 1.125, 1.625):
        window = int(impact * 16000) // 80
        assert envelope[window] > 0.3 and envelope[window] > 3 * envelope[window - 1]


def test_flow_peaks_at_impacts() -> None:
    cv2 = pytest.importorskip("cv2")
    gen = ToyAVGenerator(PROMPT)
    impacts = [3 + 12 * j for j in range(4)]  # phase 0.125 s at 24 fps, period 12 frames
    for shape in SHAPES:
        frames = gen.decode([hand_built(shape=shape)]).video[0].numpy()
        gray = [cv2.cvtColor((f * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in frames]
        flow = np.array([np.linalg.norm(cv2.calcOpticalFlowFarneback(a, b, *FARNEBACK), axis=-1).mean()
                         for a, b in zip(gray, gray[1:])])
        peaks = [i for i in range(1, len(flow) - 1)
                 if flow[i] > max(flow[i - 1], flow[i + 1]) and flow[i] >= 0.1]
        # pair i spans frames i and i + 1; a peak must touch the impact frame or a neighbour
        near = [any(abs(i - f) <= 1 or abs(i + 1 - f) <= 1 for i in peaks) for f in impacts]
        assert all(near), (shape, peaks)


def test_oracle_reads_attributes_and_sync(gen: ToyAVGenerator) -> None:
    states = [hand_built(), hand_built(color="blue"), hand_built(color="blue", sound="drum"),
              hand_built(video_phase=0.0, audio_phase=0.375)]
    results = gen.oracle(states, PROMPT)
    assert [r["text_match"] for r in results] == pytest.approx([1, 2 / 3, 1 / 3, 1])
    assert [r["sync_error_s"] for r in results] == pytest.approx([0, 0, 0, 0.125], abs=1e-6)
    assert gen.oracle(states[1:2], "a blue object")[0]["text_match"] == 1


def test_naive_sampling_leaves_room_for_search() -> None:
    matches, errors, best = [], [], []
    for prompt in prompt_set(4, seed=0):
        gen = ToyAVGenerator(prompt)
        out, _ = gen.denoise(gen.initial_noise(range(32)), 0, 30)
        results = gen.oracle(out, prompt)
        matches += [r["text_match"] for r in results]
        errors += [r["sync_error_s"] for r in results]
        for i in range(0, 32, 8):  # an attribute counts more than a quarter period out of sync
            best.append(max(results[i:i + 8], key=lambda r: r["text_match"] - 2 * r["sync_error_s"]))
    assert 0.4 < np.mean(matches) < 0.85
    assert np.mean(errors) > 0.03
    assert np.mean([b["text_match"] for b in best]) > 0.95
    assert np.mean([b["sync_error_s"] for b in best]) < 0.6 * np.mean(errors)


def test_mutations_change_outcomes(gen: ToyAVGenerator) -> None:
    noise = gen.initial_noise(range(32))
    out, recorded = gen.denoise(noise, 0, 30, record=[10])
    late = [gen.mutate(s, 10, 0.2, k, "reference") for k, s in enumerate(recorded[10])]
    early = [gen.mutate(s, 0, 0.2, 100 + k, "reference") for k, s in enumerate(noise)]
    changed = [sum(not torch.allclose(a, b, atol=1e-3)
                   for a, b in zip(out, gen.denoise(mutants, start, 30)[0]))
               for mutants, start in ((late, 10), (early, 0))]
    assert changed[0] >= 12 and 0 < changed[1] < 32


def test_full_coupling_is_always_in_sync() -> None:
    gen = ToyAVGenerator(PROMPT, coupling=1.0)
    out, _ = gen.denoise(gen.initial_noise(range(16)), 0, 30)
    assert all(r["sync_error_s"] < 1e-6 for r in gen.oracle(out, PROMPT))
    assert gen.oracle([], PROMPT) == []
