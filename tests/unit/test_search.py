"""The search engines against a counting fake generator: exact cost, schedule, selection."""

from __future__ import annotations

import json

import pytest
import torch

from comfyui_avits.search.aggregation import ARW, RewardError, WeightedSum
from comfyui_avits.search.engine import SearchError, pareto_front
from comfyui_avits.search.strategies import (BestOfNConfig, EvoSearchConfig, best_of_n, evosearch,
                                             naive)

from fakes import CountingGenerator, Mean, NaNAfter


def verifiers(scale=1.0):
    return [Mean("video", "video"), Mean("audio", "audio", scale)]


def test_best_of_n_is_one_batch_and_exact_nfe():
    gen, vs = CountingGenerator(), verifiers()
    res = best_of_n(gen, vs, WeightedSum(), BestOfNConfig(n=6, seed=3))
    assert res.nfe == gen.nfe == 6 * 30
    assert gen.calls == [(6, 0, 30)]
    assert [v.calls for v in vs] == [[6], [6]]  # every verifier once, batched
    assert [c.seed for c in res.candidates] == list(range(3, 9))
    best = max(res.candidates, key=lambda c: c.score)
    assert res.best.id == best.id and res.report()["best"] == best.id
    assert gen.decoded == 6


def test_naive_is_one_candidate():
    res = naive(CountingGenerator(), verifiers(), WeightedSum(), seed=5)
    assert res.method == "naive" and len(res.candidates) == 1 and res.nfe == 30


def test_reference_config_costs_300_not_400_with_11_distinct_candidates():
    gen = CountingGenerator()
    cfg = EvoSearchConfig()
    res = evosearch(gen, verifiers(), ARW(), cfg)
    assert cfg.planned_nfe(30) == 300 and res.nfe == gen.nfe == 300
    assert gen.calls == [(5, 0, 30), (3, 0, 30), (3, 10, 30)]
    assert len(res.candidates) == 11 and gen.decoded == 11
    finals = torch.stack([c.state for c in res.candidates])
    assert len(torch.unique(finals, dim=0)) == 11  # all distinct
    assert [c.generation for c in res.candidates] == [0] * 5 + [1] * 3 + [2] * 3


def test_stochastic_sampler_redoes_elites():
    gen = CountingGenerator(deterministic=False)
    res = evosearch(gen, verifiers(), ARW(), EvoSearchConfig())
    assert res.nfe == 400 and len(res.candidates) == 15


@pytest.mark.parametrize("sizes,elites", [((4, 6, 3), 2), ((3, 3, 3, 3), 1), ((6, 2), 1)])
def test_population_schedule(sizes, elites):
    evo = (0, 10, 20)[: len(sizes) - 1]
    cfg = EvoSearchConfig(evolution_steps=evo, population_sizes=sizes, elites=elites)
    gen = CountingGenerator()
    res = evosearch(gen, verifiers(), ARW(), cfg)
    per_gen = [sum(c.generation == g for c in res.candidates) for g in range(len(sizes))]
    assert per_gen == [sizes[0]] + [p - elites for p in sizes[1:]]
    assert res.nfe == cfg.planned_nfe(30) == sum(
        n * (30 - s) for n, s in zip(per_gen, (0, *evo)))


def test_elites_carried_unchanged_and_children_mutated_from_the_pool():
    gen = CountingGenerator()
    cfg = EvoSearchConfig(evolution_steps=(0,), population_sizes=(5, 5), elites=2)
    res = evosearch(gen, verifiers(), ARW(), cfg)
    gen0 = res.candidates[:5]
    top2 = sorted(gen0, key=lambda c: -c.score)[:2]
    # the elites are not re-run: only 3 new candidates, each a child of a generation-0 candidate
    children = res.candidates[5:]
    assert len(children) == 3 and all(c.parent in {g.id for g in gen0} for c in children)
    # a child's noise is sqrt(1 - 0.04) * parent noise + 0.2 * eps(seed): its finished state
    # follows from that noise through the same deterministic steps
    for c in children:
        parent_noise = gen.initial_noise([res.candidates[c.parent].seed])[0]
        eps = torch.randn(2, generator=torch.Generator().manual_seed(c.seed))
        child_noise = (1 - 0.04) ** 0.5 * parent_noise + 0.2 * eps
        expect, _ = CountingGenerator().denoise([child_noise], 0, 30)
        assert torch.allclose(c.state, expect[0])
    assert all(t.id in {c.id for c in res.candidates} for t in top2)


def test_intermediate_mutation_uses_sigma_of_the_step():
    gen = CountingGenerator()
    cfg = EvoSearchConfig(evolution_steps=(10,), population_sizes=(4, 4), elites=1)
    res = evosearch(gen, verifiers(), ARW(), cfg)
    for c in res.candidates[4:]:
        at10, _ = CountingGenerator().denoise(gen.initial_noise([res.candidates[c.parent].seed]), 0, 10)
        eps = torch.randn(2, generator=torch.Generator().manual_seed(c.seed))
        expect, _ = CountingGenerator().denoise([at10[0] + (1 - 10 / 30) * eps], 10, 30)
        assert torch.allclose(c.state, expect[0])


def test_tournament_ratio_one_always_picks_the_pool_best():
    gen = CountingGenerator()
    cfg = EvoSearchConfig(evolution_steps=(0,), population_sizes=(6, 6), elites=1, tournament_ratio=1.0)
    res = evosearch(gen, verifiers(), WeightedSum(), cfg)
    best0 = max(res.candidates[:6], key=lambda c: c.score)
    assert {c.parent for c in res.candidates[6:]} == {best0.id}


def test_tournament_size_is_int_pool_times_ratio(monkeypatch):
    import random
    sizes = []
    real = random.Random.sample
    monkeypatch.setattr(random.Random, "sample", lambda self, pop, k: sizes.append(k) or real(self, pop, k))
    evosearch(CountingGenerator(), verifiers(), ARW(), EvoSearchConfig())
    # pool at step 0: 5 states -> int(2.5) = 2; at step 10: 5 + 3 distinct = 8 -> 4
    assert sizes == [2, 2, 2, 4, 4, 4]


def test_same_seed_same_search():
    a = evosearch(CountingGenerator(), verifiers(), ARW(), EvoSearchConfig(seed=7)).report()
    b = evosearch(CountingGenerator(), verifiers(), ARW(), EvoSearchConfig(seed=7)).report()
    c = evosearch(CountingGenerator(), verifiers(), ARW(), EvoSearchConfig(seed=8)).report()
    for r in (a, b, c):
        r.pop("timings")
    assert a == b and a != c


def test_arw_history_grows_by_the_candidates_scored_and_rescoring_uses_newest_scales():
    agg = ARW()
    res = evosearch(CountingGenerator(), verifiers(scale=100.0), agg, EvoSearchConfig())
    assert agg.history_size == 11
    assert [s["history_size"] for s in res.aggregator["scales_over_time"]] == [5, 8, 11]
    newest = agg.score({k: torch.tensor([c.rewards[k] for c in res.candidates])
                        for k in ("video", "audio")})
    assert [c.score for c in res.candidates] == pytest.approx(newest.tolist())
    report = json.loads(res.report_json())
    assert report["aggregator"]["name"] == "arw" and set(report["aggregator"]["sigmas"]) == {"video", "audio"}
    assert set(report["timings"]) >= {"generate", "decode", "verify", "aggregate", "total"}
    assert report["config"]["population_sizes"] == [5, 5, 5]


def test_progress_covers_the_whole_plan_and_interrupt_stops_within_a_step():
    seen = []
    gen = CountingGenerator()
    evosearch(gen, verifiers(), ARW(), EvoSearchConfig(), on_progress=lambda d, t, p: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] == 300 + 2 * 11
    assert all(t == 322 for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)

    class Stop(Exception):
        pass

    def interrupt(done, total, preview):
        if done >= 170:  # during the second generation's denoising
            raise Stop

    agg, gen = ARW(), CountingGenerator()
    with pytest.raises(Stop):
        evosearch(gen, verifiers(), agg, EvoSearchConfig(), on_progress=interrupt)
    assert gen.nfe <= 170 - 10 + 3  # stopped within one step (3 members) of reaching 170
    assert agg.history_size == 5  # only the finished generation entered the history
    json.dumps(agg.state_dict())


@pytest.mark.parametrize("cfg,match", [
    (EvoSearchConfig(elites=5), "elites"),
    (EvoSearchConfig(population_sizes=(5, 5, 2), elites=2), "elites"),
    (EvoSearchConfig(evolution_steps=(0, 30)), "0..29"),
    (EvoSearchConfig(evolution_steps=(10, 0)), "increasing"),
    (EvoSearchConfig(population_sizes=(5, 5)), "need 3 population sizes"),
    (EvoSearchConfig(mutation_rate=0), "mutation rate"),
    (EvoSearchConfig(tournament_ratio=1.5), "tournament"),
])
def test_bad_evo_configs_fail_before_any_work(cfg, match):
    gen, agg = CountingGenerator(), ARW()
    with pytest.raises(SearchError, match=match):
        evosearch(gen, verifiers(), agg, cfg)
    assert gen.nfe == 0 and agg.history_size == 0


def test_bad_best_of_n_and_verifier_sets():
    with pytest.raises(SearchError, match="n >= 1"):
        best_of_n(CountingGenerator(), verifiers(), ARW(), BestOfNConfig(n=0))
    with pytest.raises(SearchError, match="empty"):
        best_of_n(CountingGenerator(), [], ARW(), BestOfNConfig(n=2))
    with pytest.raises(SearchError, match="share a name"):
        best_of_n(CountingGenerator(), [Mean("a", "video"), Mean("a", "audio")], ARW(), BestOfNConfig(2))


def test_nan_verifier_is_a_clear_error_and_leaves_the_aggregator_unchanged():
    agg = ARW()
    vs = [Mean("video", "video"), NaNAfter()]
    best_of_n(CountingGenerator(), vs, agg, BestOfNConfig(n=3))
    before = json.dumps(agg.state_dict())
    with pytest.raises(RewardError, match="verifier 'broken'.*non-finite"):
        best_of_n(CountingGenerator(), vs, agg, BestOfNConfig(n=3))
    assert json.dumps(agg.state_dict()) == before


def test_pareto_front():
    r = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.5, 0.5], [1.0, 1.0], [0.0, 3.0]])
    assert pareto_front(r).tolist() == [True, True, False, True, True]
