"""The search engines against a counting fake generator: exact cost, schedule, selection."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from comfyui_avits.search.aggregation import AGGREGATORS, ARW, Rank, RewardError, WeightedSum, make_aggregator
from comfyui_avits.search.engine import SearchError, SearchLimits, pareto_front
from comfyui_avits.search.strategies import (BestOfNConfig, EvoSearchConfig, best_of_n, evosearch,
                                             naive)

from fakes import CountingGenerator, Fixed, Mean, NaNAfter


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
    # the elites are not re-run: only 3 new candidates, each a child of a generation-0 candidate
    children = res.candidates[5:]
    assert len(children) == 3 and all(c.parent in {g.id for g in gen0} for c in children)
    # a child's noise is sqrt(1 - 0.04) * parent noise + 0.2 * eps(seed): its finished state
    # follows from that noise through the same deterministic steps
    for c in children:
        parent_noise = gen.initial_noise([res.candidates[c.parent].seed])[0]
        eps = torch.randn(2, generator=torch.Generator().manual_seed(c.seed))
        child_noise = (1 - 0.04) ** 0.5 * parent_noise + 0.2 * eps
        expect, _ = CountingGenerator().denoise([child_noise], 0, 30, [c.seed])
        assert torch.allclose(c.state, expect[0])


def test_stochastic_elites_are_the_pool_best_rolled_out_again_with_new_noise():
    gen = CountingGenerator(deterministic=False)
    cfg = EvoSearchConfig(evolution_steps=(0,), population_sizes=(5, 5), elites=2)
    res = evosearch(gen, verifiers(), WeightedSum(), cfg)
    gen0, gen1 = res.candidates[:5], res.candidates[5:]
    top2 = {c.id for c in sorted(gen0, key=lambda c: (-c.score, c.id))[:2]}
    assert len(gen1) == 5
    reruns = [c for c in gen1[:2]]  # elites come first in the new population
    assert {c.parent for c in reruns} == top2
    for c in reruns:  # unmutated: the parent's own initial noise, sampled with a new seed
        noise = gen.initial_noise([res.candidates[c.parent].seed])
        expect, _ = CountingGenerator(deterministic=False).denoise(noise, 0, 30, [c.seed])
        assert c.seed not in {g.seed for g in gen0} and torch.allclose(c.state, expect[0])


def test_intermediate_mutation_uses_sigma_of_the_step():
    gen = CountingGenerator()
    cfg = EvoSearchConfig(evolution_steps=(10,), population_sizes=(4, 4), elites=1)
    res = evosearch(gen, verifiers(), ARW(), cfg)
    for c in res.candidates[4:]:
        at10, _ = CountingGenerator().denoise(gen.initial_noise([res.candidates[c.parent].seed]), 0, 10, [0])
        eps = torch.randn(2, generator=torch.Generator().manual_seed(c.seed))
        expect, _ = CountingGenerator().denoise([at10[0] + (1 - 10 / 30) * eps], 10, 30, [c.seed])
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
    assert seen[-1] == (1000, 1000) and all(t == 1000 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # the bar never moves back

    class Stop(Exception):
        pass

    def interrupt(done, total, preview):
        if gen.nfe >= 170:  # during the second generation's denoising
            raise Stop

    agg, gen = ARW(), CountingGenerator()
    with pytest.raises(Stop):
        evosearch(gen, verifiers(), agg, EvoSearchConfig(), on_progress=interrupt)
    assert gen.nfe < 170 + 3  # stopped in the step (3 members) that reached 170
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
    with pytest.raises(SearchError, match=r"Best-of-N's n must lie in \[1, inf\), got 0"):
        best_of_n(CountingGenerator(), verifiers(), ARW(), BestOfNConfig(n=0))
    with pytest.raises(SearchError, match="empty"):
        best_of_n(CountingGenerator(), [], ARW(), BestOfNConfig(n=2))
    with pytest.raises(SearchError, match="reward named .a."):
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


# ---- selection: the winner is the argmax of the reported scores ---------------------------

def test_rank_ties_the_winner_is_the_argmax_of_the_reported_scores():
    # v1 ties, v2 prefers candidate 0: average ranks give 0 the higher score, and it wins
    vs = [Fixed("v1", [1.0, 1.0]), Fixed("v2", [2.0, 1.0])]
    res = best_of_n(CountingGenerator(), vs, Rank([0.8, 0.2]), BestOfNConfig(n=2))
    scores = [c.score for c in res.candidates]
    assert scores == pytest.approx([0.8 * 0.5 + 0.2 * 1, 0.8 * 0.5 + 0.2 * 0])
    assert res.best.id == 0 == max(range(2), key=lambda i: (scores[i], -i))


def test_a_winner_whose_clip_was_dropped_is_decoded_again():
    # candidate 1 beats 0 on every reward, so 0's clip is dropped; with weight 0 on 'b' both
    # score 1 and the tie goes to the lowest id: 0, decoded again from its stored latent
    gen = CountingGenerator()
    vs = [Fixed("a", [1.0, 1.0]), Fixed("b", [0.0, 5.0])]
    res = best_of_n(gen, vs, WeightedSum({"a": 1.0, "b": 0.0}), BestOfNConfig(n=2))
    assert [c.score for c in res.candidates] == [1.0, 1.0] and res.best.id == 0
    assert gen.decode_calls == [2, 1]
    again = CountingGenerator().decode([res.candidates[0].state])
    assert torch.equal(res.best_av.video, again.video) and torch.equal(res.best_av.audio, again.audio)


reward_sets = st.integers(1, 9).flatmap(lambda n: st.lists(
    st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]), min_size=n, max_size=n), min_size=2, max_size=3))


@settings(max_examples=80, deadline=None)
@given(reward_sets, st.sampled_from(AGGREGATORS), st.integers(1, 4))
def test_best_is_the_argmax_of_the_scores_for_every_aggregator(table, name, chunk):
    """Random reward sets full of ties, any aggregator, any chunking: best = argmax(score) with
    ties to the lowest id, and the clip returned is the winner's."""
    names = [f"r{k}" for k in range(len(table))]
    vs = [Fixed(n, col) for n, col in zip(names, table)]
    stats = {n: (0.5, 0.7) for n in names}
    agg = make_aggregator(name, stats=stats)
    gen = CountingGenerator()
    res = best_of_n(gen, vs, agg, BestOfNConfig(n=len(table[0])), limits=SearchLimits(chunk_size=chunk))
    scores = torch.tensor([c.score for c in res.candidates], dtype=torch.float64)
    assert res.best.id == int(torch.argmax(scores)) and res.best.score == scores.max().item()
    again = CountingGenerator().decode([res.best.state])
    assert torch.equal(res.best_av.video, again.video)


@settings(max_examples=40, deadline=None)
@given(st.permutations(["a", "b", "c"]), st.lists(st.floats(0, 3), min_size=3, max_size=3))
def test_same_weights_and_scales_per_name_under_any_verifier_order(order, w):
    assume(sum(w) > 0)
    table = {"a": [0.1, 0.9, 0.4], "b": [3.0, 1.0, 2.0], "c": [-1.0, 0.0, 5.0]}
    weights = dict(zip("abc", w))
    results = []
    for names in (["a", "b", "c"], list(order)):
        vs = [Fixed(n, table[n]) for n in names]
        agg = ARW(weights=[weights[n] for n in names])  # positional, read in this set's order
        res = best_of_n(CountingGenerator(), vs, agg, BestOfNConfig(n=3))
        results.append(({k: round(v, 12) for k, v in agg.weights().items()}, agg.sigmas(),
                        [round(c.score, 9) for c in res.candidates], res.best.id))
    assert results[0][0] == results[1][0]
    assert results[0][1] == pytest.approx(results[1][1])
    assert results[0][2:] == results[1][2:]


# ---- contracts ----------------------------------------------------------------------------

def test_chunks_bound_every_batch_and_interrupts_are_checked_between_chunks():
    gen, vs = CountingGenerator(), verifiers()
    seen = []
    res = best_of_n(gen, vs, WeightedSum(), BestOfNConfig(n=10), limits=SearchLimits(chunk_size=4),
                    on_progress=lambda d, t, p: seen.append(d))
    assert gen.calls == [(4, 0, 30), (4, 0, 30), (2, 0, 30)]
    assert gen.seen_seeds == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert gen.decode_calls == [4, 4, 2] and [v.calls for v in vs] == [[4, 4, 2]] * 2
    assert len(res.candidates) == 10 and res.nfe == 300
    # one update per denoising step of each chunk, then after its decode and its verification
    assert len(seen) == 3 * (30 + 2) + 1 and seen == sorted(seen) and seen[-1] == 1000


def test_progress_weighs_each_phase_by_its_seconds_so_far():
    """Slow verifiers count as slow: 300 quick steps and 10 quick decodes done, 5 of 10 slow
    verifications done is 62 % of the time, not 315 / 320 units."""
    from comfyui_avits.search.engine import SearchRun

    run = SearchRun(CountingGenerator(), verifiers(), WeightedSum(), 300, 10)
    run.done = {"generate": 300, "decode": 10, "verify": 5}
    run.timings.update(generate=3.0, decode=0.1, verify=5.0)
    assert run.fraction_done() == pytest.approx((3 + 0.1 + 5) / (3 + 0.1 + 10))
    run.done["verify"], run.timings["verify"] = 0, 0.0  # not timed yet: the mean rate of the others
    assert run.fraction_done() == pytest.approx(3.1 / (3.1 + 10 * 0.01))


def test_the_plan_is_checked_against_the_limits_before_any_work():
    gen, agg = CountingGenerator(), ARW()
    with pytest.raises(SearchError, match="100006 candidates.*max_candidates = 1024"):
        evosearch(gen, verifiers(), agg, EvoSearchConfig(population_sizes=(100000, 5, 5)))
    with pytest.raises(SearchError, match="max_nfe = 100"):
        best_of_n(gen, verifiers(), agg, BestOfNConfig(n=4), limits=SearchLimits(max_nfe=100))
    gen.clip_bytes = lambda: 10**9  # 1 GB per decoded clip
    with pytest.raises(SearchError, match="chunk of 8 decoded clips needs 8.00 GB.*max_chunk_gb = 4"):
        best_of_n(gen, verifiers(), agg, BestOfNConfig(n=24), limits=SearchLimits(max_chunk_gb=4))
    assert gen.nfe == 0 and gen.calls == [] and agg.history_size == 0
    for bad in ({"chunk_size": 0}, {"max_candidates": float("nan")}, {"max_chunk_gb": float("inf")}):
        with pytest.raises(SearchError):
            SearchLimits(**bad)


def test_a_stochastic_sampler_does_not_depend_on_who_shares_the_batch():
    gen = CountingGenerator(deterministic=False)
    noise = gen.initial_noise([1, 2, 3])
    together, _ = gen.denoise(noise, 0, 30, [1, 2, 3])
    alone, _ = gen.denoise(noise[1:2], 0, 30, [2])
    assert torch.equal(together[1], alone[0])
    a = best_of_n(CountingGenerator(deterministic=False), verifiers(), WeightedSum(), BestOfNConfig(6))
    b = best_of_n(CountingGenerator(deterministic=False), verifiers(), WeightedSum(), BestOfNConfig(6),
                  limits=SearchLimits(chunk_size=2))
    assert all(torch.equal(x.state, y.state) for x, y in zip(a.candidates, b.candidates))


def test_verifiers_read_the_search_prompt_when_given():
    class Echo:
        name = "echo"

        def __init__(self):
            self.prompts = []

        def __call__(self, batch, prompts):
            self.prompts += prompts
            return torch.zeros(len(batch))

    echo = Echo()
    res = best_of_n(CountingGenerator(prompt=""), [echo], WeightedSum(), BestOfNConfig(2),
                    prompt="a dog barking")
    assert echo.prompts == ["a dog barking"] * 2 and res.report()["prompt"] == "a dog barking"
    echo.prompts.clear()
    best_of_n(CountingGenerator(prompt="from the generator"), [echo], WeightedSum(), BestOfNConfig(1))
    assert echo.prompts == ["from the generator"]


def test_a_verifier_may_give_several_named_rewards_from_one_pass():
    class Pair:
        name, rewards = "pair", ("pair_video", "pair_audio")

        def __init__(self, keys=None):
            self.calls, self.keys = 0, keys

        def __call__(self, batch, prompts):
            self.calls += 1
            v, a = batch.video.flatten(1).mean(1), batch.audio.flatten(1).mean(1)
            return dict(zip(self.keys or self.rewards, (v, a)))

    pair = Pair()
    res = best_of_n(CountingGenerator(), [pair], ARW(), BestOfNConfig(n=3))
    assert pair.calls == 1 and set(res.candidates[0].rewards) == {"pair_video", "pair_audio"}
    assert set(res.aggregator["sigmas"]) == {"pair_video", "pair_audio"}
    with pytest.raises(RewardError, match="returned rewards .'x', 'y'., promised"):
        best_of_n(CountingGenerator(), [Pair(keys=("x", "y"))], ARW(), BestOfNConfig(n=2))
    with pytest.raises(SearchError, match="reward named 'pair_video'"):
        best_of_n(CountingGenerator(), [pair, Mean("pair_video", "video")], ARW(), BestOfNConfig(2))


def test_the_models_of_each_phase_are_placed_before_it_runs():
    module = torch.nn.Linear(1, 1)

    class WithModel(Mean):
        def models(self):
            return [module]

    placed = []
    best_of_n(CountingGenerator(), [WithModel("video", "video")], WeightedSum(), BestOfNConfig(5),
              limits=SearchLimits(chunk_size=2), place=lambda phase, mods: placed.append((phase, mods)))
    assert placed == [("verify", [module])] * 3  # once per chunk; the fake generator has none


def test_the_winner_comes_back_as_a_comfyui_latent():
    res = best_of_n(CountingGenerator(), verifiers(), WeightedSum(), BestOfNConfig(n=3))
    assert res.best_latent["samples"].shape == (1, 2)
    assert torch.equal(res.best_latent["samples"][0], res.best.state)
