"""Searches on intermediate rewards: pruned Best-of-N and particle resampling, on a generator
whose x0 prediction is known exactly."""

from __future__ import annotations

import json

import pytest
import torch

from comfyui_avits.search.aggregation import ARW, WeightedSum
from comfyui_avits.search.engine import SearchError
from comfyui_avits.search.pruning import (ParticleConfig, PrunedBestOfNConfig, particle_search,
                                          pruned_best_of_n)
from comfyui_avits.search.strategies import BestOfNConfig, best_of_n
from fakes import CountingGenerator, Mean, PredictingGenerator

VERIFIERS = lambda: [Mean("v", "video"), Mean("a", "audio")]  # noqa: E731


def by_seed(result):
    return {c.seed: c for c in result.candidates if c.pruned_at is None}


def test_without_a_schedule_pruned_best_of_n_is_best_of_n():
    ref = best_of_n(PredictingGenerator(), VERIFIERS(), ARW(), BestOfNConfig(6, seed=3))
    got = pruned_best_of_n(PredictingGenerator(), VERIFIERS(), ARW(), PrunedBestOfNConfig(6, (), seed=3))
    assert [c.to_json() for c in got.candidates] == [c.to_json() for c in ref.candidates]
    assert got.best.id == ref.best.id and got.nfe == ref.nfe == 6 * 30


@pytest.mark.parametrize("n, schedule", [(10, ((6, 0.5), (12, 0.5))), (7, ((3, 0.3),)),
                                         (5, ((1, 0.01), (29, 1.0))), (1, ((10, 0.5),))])
def test_the_nfe_is_the_closed_form_and_survivors_are_unchanged(n, schedule):
    gen = PredictingGenerator()
    result = pruned_best_of_n(gen, VERIFIERS(), WeightedSum(), PrunedBestOfNConfig(n, schedule, seed=0))
    marks, alive, expect = [0] + [k for k, _ in schedule] + [30], [n], 0
    for _, keep in schedule:
        alive.append(max(1, -(-alive[-1] * keep // 1)) if keep < 1 else alive[-1])
    alive = [int(a) for a in alive]
    expect = sum(a * (b - s) for a, s, b in zip(alive, marks, marks[1:]))
    assert result.nfe == gen.nfe == expect
    assert result.config["nfe_saved"] == n * 30 - expect
    plain = by_seed(best_of_n(PredictingGenerator(), VERIFIERS(), WeightedSum(), BestOfNConfig(n, seed=0)))
    survivors = by_seed(result)
    assert len(survivors) == alive[-1]
    for seed, c in survivors.items():  # pruning only stops candidates; a survivor is unchanged
        assert torch.allclose(c.state, plain[seed].state, atol=1e-6)
    pruned = [c for c in result.candidates if c.pruned_at is not None]
    assert len(pruned) == n - alive[-1] and all(c.score is None and c.rewards == {} for c in pruned)
    report = json.loads(result.report_json())
    assert all("pruned_at" in c and c["intermediate"] for c in report["candidates"])


def test_the_best_intermediate_scores_survive():
    gen = PredictingGenerator()
    result = pruned_best_of_n(gen, VERIFIERS(), WeightedSum(), PrunedBestOfNConfig(8, ((5, 0.25),), seed=1))
    step_scores = {c.seed: c.intermediate[5] for c in result.candidates}
    survivors = set(by_seed(result))
    assert survivors == set(sorted(step_scores, key=lambda s: -step_scores[s])[:2])


def test_intermediate_scores_never_reach_the_arw_history():
    arw = ARW()
    result = pruned_best_of_n(PredictingGenerator(), VERIFIERS(), arw, PrunedBestOfNConfig(10, seed=0))
    finished = len(by_seed(result))
    assert arw.history_size == finished == 2
    shared = ARW()
    particle_search(PredictingGenerator(), VERIFIERS(), shared, ParticleConfig(6, (10, 20), seed=0))
    assert shared.history_size == 6  # the final particles only, not the 2 x 6 intermediate reads


def test_a_proxy_set_reads_the_intermediate_rewards_by_rank():
    arw = ARW()
    proxy = [Mean("proxy", "video", scale=100.0)]
    result = pruned_best_of_n(PredictingGenerator(), VERIFIERS(), arw, PrunedBestOfNConfig(6, ((5, 0.5),)),
                              proxy=proxy)
    scores = sorted(c.intermediate[5] for c in result.candidates)
    assert scores == pytest.approx([i / 5 for i in range(6)])  # ranks of 6 distinct values
    assert arw.history_size == 3 and result.config["proxy"] == ["proxy"]


def test_particles_without_resampling_are_best_of_n_and_resampling_keeps_the_count():
    ref = best_of_n(PredictingGenerator(), VERIFIERS(), ARW(), BestOfNConfig(5, seed=2))
    got = particle_search(PredictingGenerator(), VERIFIERS(), ARW(), ParticleConfig(5, (), seed=2))
    assert [c.to_json() for c in got.candidates] == [c.to_json() for c in ref.candidates]
    gen = PredictingGenerator()
    res = particle_search(gen, VERIFIERS(), WeightedSum(), ParticleConfig(8, (10, 20), temperature=1e-6, seed=0))
    assert len(res.candidates) == 8 and res.nfe == gen.nfe == 8 * 30
    assert all(set(c.intermediate) == {10, 20} for c in res.candidates)
    # a cold softmax resamples the best particle: every finished particle descends from it
    first = {c.intermediate[10] for c in res.candidates}
    assert len(first) == 1


def test_a_generator_without_predictions_is_refused_and_bad_schedules_too():
    with pytest.raises(SearchError, match="no clean-sample prediction"):
        pruned_best_of_n(CountingGenerator(), VERIFIERS(), WeightedSum(), PrunedBestOfNConfig(4))
    for schedule, message in ((((12, 0.5), (6, 0.5)), "strictly increasing"), (((0, 0.5),), "pruning step"),
                              (((30, 0.5),), "pruning step"), (((5, 0.0),), "kept fraction"),
                              (((5, float("nan")),), "kept fraction")):
        with pytest.raises(SearchError, match=message):
            pruned_best_of_n(PredictingGenerator(), VERIFIERS(), WeightedSum(), PrunedBestOfNConfig(4, schedule))


def test_an_interrupt_while_pruning_raises_and_leaves_the_arw_untouched():
    arw = ARW()
    pruned_best_of_n(PredictingGenerator(), VERIFIERS(), arw, PrunedBestOfNConfig(4, seed=50))
    before = json.dumps(arw.state_dict(), sort_keys=True)

    class Stop(Exception):
        pass

    def progress(done, total, preview):
        if done > 20:
            raise Stop

    with pytest.raises(Stop):
        pruned_best_of_n(PredictingGenerator(), VERIFIERS(), arw, PrunedBestOfNConfig(10), on_progress=progress)
    assert json.dumps(arw.state_dict(), sort_keys=True) == before


@pytest.mark.parametrize("steps, pruned_at, evolved_at, resampled_at",
                         [(8, [2, 3], [0, 3], [3, 5]), (30, [6, 10], [0, 10], [10, 20])])
def test_the_default_fraction_schedules_fit_an_8_step_and_a_30_step_model(steps, pruned_at,
                                                                           evolved_at, resampled_at):
    """The defaults on a distilled 8-step and a 30-step model."""
    from comfyui_avits.search.strategies import EvoSearchConfig, evosearch

    def gen():
        return PredictingGenerator(steps=steps)

    pruned = pruned_best_of_n(gen(), VERIFIERS(), ARW(), PrunedBestOfNConfig(n=5))
    assert [k for k, _ in pruned.config["schedule"]] == pruned_at
    assert sorted({c.pruned_at for c in pruned.candidates} - {None}) == pruned_at
    assert pruned.nfe == PrunedBestOfNConfig(n=5).planned_nfe(steps) < 5 * steps
    evo = evosearch(gen(), VERIFIERS(), ARW(), EvoSearchConfig(population_sizes=(3, 3, 3), elites=1))
    assert evo.config["evolution_steps"] == evolved_at
    particles = particle_search(gen(), VERIFIERS(), ARW(), ParticleConfig(n=3))
    assert particles.config["resample_steps"] == resampled_at


@pytest.mark.parametrize("schedule, message", [(((0.25, 0.5), (0.3, 0.5)), "strictly increasing.*8-step"),
                                               (((2.5, 0.5),), "neither a whole step"),
                                               (((8, 0.5),), "pruning step")])
def test_fractions_that_collide_or_steps_out_of_range_are_refused_before_any_work(schedule, message):
    gen = PredictingGenerator(steps=8)
    with pytest.raises(SearchError, match=message):
        pruned_best_of_n(gen, VERIFIERS(), ARW(), PrunedBestOfNConfig(4, schedule))
    assert gen.nfe == 0


def test_the_default_pruning_schedule_runs_on_the_30_step_toyav():
    from comfyui_avits.generators.toyav import ToyAVGenerator, ToyTextMatch

    gen = ToyAVGenerator("a large bright red ball bouncing, low whistle", world="continuous")
    result = pruned_best_of_n(gen, [ToyTextMatch()], ARW(), PrunedBestOfNConfig(n=4))
    assert gen.steps == 30 and result.config["schedule"] == [[6, 0.5], [10, 0.4]]
    assert result.nfe == 4 * 6 + 2 * 4 + 1 * 20
