"""Aggregators against hand-computed values, their invariants, and ARW against a direct
re-computation of the reference loss with autograd and torch's Adam."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from comfyui_avits.search.aggregation import (ARW, AGGREGATORS, MinMax, Rank, RewardError,
                                              RunningStats, WeightedSum, ZScore, average_ranks,
                                              make_aggregator, resolve_weights)

R = {"text": torch.tensor([1.0, 2.0, 4.0]), "sync": torch.tensor([0.3, 0.1, 0.2])}


def test_weighted_sum_by_hand():
    s = WeightedSum({"text": 0.2, "sync": 0.8}).score(R)
    assert s.tolist() == pytest.approx([0.2 * 1 + 0.8 * 0.3, 0.2 * 2 + 0.8 * 0.1, 0.2 * 4 + 0.8 * 0.2])
    # default weights are equal, 1/K
    assert WeightedSum().score(R).tolist() == pytest.approx([0.65, 1.05, 2.1])
    # a sequence is matched to the verifiers in order
    assert WeightedSum([1.0, 0.0]).score(R).tolist() == pytest.approx([1, 2, 4])


def test_rank_by_hand():
    # text ranks 0,1,2 -> 0, .5, 1; sync ranks 2,0,1 -> 1, 0, .5
    assert Rank().score(R).tolist() == pytest.approx([0.5, 0.25, 0.75])
    assert Rank().score({"a": torch.tensor([3.0])}).tolist() == [0.5]


def test_rank_gives_ties_their_average_rank():
    assert average_ranks(torch.tensor([1.0, 1.0])).tolist() == [0.5, 0.5]
    assert average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [3, 0, 3, 1, 3]
    # the case that used to pick a loser: v1 ties, v2 prefers candidate 0
    s = Rank([0.8, 0.2]).score({"v1": torch.tensor([1.0, 1.0]), "v2": torch.tensor([2.0, 1.0])})
    assert s.tolist() == pytest.approx([0.6, 0.4])


def test_min_max_by_hand():
    # text (r-1)/3 -> 0, 1/3, 1 ; sync (r-.1)/.2 -> 1, 0, .5
    assert MinMax().score(R).tolist() == pytest.approx([0.5, 1 / 6, 0.75])
    assert MinMax().score({"a": torch.tensor([2.0, 2.0])}).tolist() == [0.5, 0.5]


def test_z_score_modes_by_hand():
    stats = {"text": (2.0, 2.0), "sync": (0.2, 0.1)}
    fixed = ZScore("fixed", stats=stats).score(R)
    assert fixed.tolist() == pytest.approx([0.5 * (-0.5) + 0.5 * 1, 0.5 * 0 + 0.5 * (-1), 0.5 * 1 + 0])
    cand = ZScore("candidate").score(R)
    mu, sd = 7 / 3, math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 3)
    smu, ssd = 0.2, math.sqrt(0.02 / 3)
    expect = [0.5 * (t - mu) / sd + 0.5 * (s - smu) / ssd for t, s in zip([1, 2, 4], [0.3, 0.1, 0.2])]
    assert cand.tolist() == pytest.approx(expect)
    hist = ZScore("history")
    assert hist.score(R).tolist() == pytest.approx([0.65, 1.05, 2.1])  # no history: raw
    hist.observe({"text": torch.tensor([0.0, 2.0]), "sync": torch.tensor([1.0, 1.0])})
    # text history mean 1 sd 1; sync sd 0 -> raw
    assert hist.score(R).tolist() == pytest.approx([0.5 * 0 + 0.15, 0.5 * 1 + 0.05, 0.5 * 3 + 0.1])
    assert hist.history_size == 2
    with pytest.raises(RewardError, match="no statistics"):
        ZScore("fixed").score(R)


def test_reference_fixed_stats_are_the_defaults():
    z = ZScore("fixed").score({"videoreward_ta": torch.tensor([-0.4779]), "javisscore": torch.tensor([0.2646])})
    assert z.tolist() == pytest.approx([0.5 * 0 + 0.5 * 1.0])


@pytest.mark.parametrize("name", AGGREGATORS)
def test_non_finite_rewards_rejected_and_never_stored(name):
    agg = make_aggregator(name, stats={"text": (0, 1), "sync": (0, 1)})
    agg.observe(R)
    before = json.dumps(agg.state_dict())
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(RewardError, match="verifier 'sync'.*candidate 1"):
            agg.observe({"text": torch.tensor([1.0, 2.0]), "sync": torch.tensor([0.0, bad])})
        with pytest.raises(RewardError, match="'sync'"):
            agg.score({"text": torch.tensor([1.0, 2.0]), "sync": torch.tensor([0.0, bad])})
    assert json.dumps(agg.state_dict()) == before


def test_mismatched_verifiers_and_lengths():
    agg = ARW()
    agg.observe(R)
    with pytest.raises(RewardError, match=r"learned from the rewards \['sync', 'text'\], this search "
                                          r"gives \['text'\]: reset the state or use another state name"):
        agg.observe({"text": torch.tensor([1.0])})
    with pytest.raises(RewardError, match="returned 1 rewards"):
        agg.observe({"text": torch.tensor([1.0, 2.0]), "sync": torch.tensor([1.0])})
    with pytest.raises(RewardError, match="empty"):
        agg.observe({})
    with pytest.raises(RewardError, match="unknown aggregator"):
        make_aggregator("mean")
    with pytest.raises(RewardError, match="optimizer"):
        ARW(optimizer="lbfgs")


# ---- invariants ---------------------------------------------------------------------------

finite = st.floats(-100, 100, allow_nan=False, width=32)
rewards_st = st.integers(2, 12).flatmap(
    lambda n: st.tuples(st.lists(finite, min_size=n, max_size=n), st.lists(finite, min_size=n, max_size=n)))


@settings(max_examples=60, deadline=None)
@given(rewards_st, st.floats(0.01, 100), st.floats(-50, 50))
def test_rank_min_max_z_invariant_to_affine_rescaling(pair, a, b):
    text, sync = (torch.tensor(x, dtype=torch.float64) for x in pair)
    assume(sync.std() > 1e-3 and (a * sync + b).std() > 1e-3)
    base = {"text": text, "sync": sync}
    moved = {"text": text, "sync": a * sync + b}
    for agg in (Rank(), MinMax(), ZScore("candidate")):
        s0, s1 = agg.score(base), agg.score(moved)
        if isinstance(agg, Rank):
            # ranks change only where rescaling in floating point merges or splits ties
            same = torch.unique(sync).numel() == torch.unique(a * sync + b).numel()
            if same:
                assert torch.equal(s0, s1)
        else:
            assert torch.allclose(s0, s1, atol=1e-6 * (1 + s0.abs().max()))
    hist0, hist1 = ZScore("history"), ZScore("history")
    hist0.observe(base)
    hist1.observe(moved)
    assert torch.allclose(hist0.score(base), hist1.score(moved), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(rewards_st, st.floats(-1000, 1000))
def test_arw_ranking_invariant_to_adding_a_constant(pair, c):
    text, sync = (torch.tensor(x, dtype=torch.float64) for x in pair)
    a0, a1 = ARW(), ARW()
    a0.observe({"text": text, "sync": sync})
    a1.observe({"text": text, "sync": sync + c})
    assert a0.sigmas() == pytest.approx(a1.sigmas(), rel=1e-5)
    s0, s1 = a0.score({"text": text, "sync": sync}), a1.score({"text": text, "sync": sync + c})
    # the same shift for every candidate, so the same order
    shift = s1 - s0
    assert torch.allclose(shift, shift[0].expand_as(shift), atol=1e-6 * (1 + abs(c)) * 10)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=4, max_size=60),
       st.floats(0.05, 2))
def test_arw_sigma_squared_converges_to_population_variance(values, scale):
    r = torch.tensor(values, dtype=torch.float64) * scale
    var = r.var(correction=0).item()
    if var < 1e-3:
        return
    agg = ARW(iters=3000)  # Adam from s = 0 needs ~2000 steps for a variance of 100
    agg.observe({"k": r})
    assert agg.sigmas()["k"] ** 2 == pytest.approx(var + 1e-6, rel=1e-2)


def _reference_fit(history: dict[str, torch.Tensor], s: torch.Tensor, opt, iters: int):
    """The reference loop: autograd through the loss over the whole history."""
    for _ in range(iters):
        opt.zero_grad()
        loss = 0
        for i, h in enumerate(history.values()):
            h = h.float()
            loss = loss + (0.5 * torch.exp(-s[i]) * ((h - h.mean()) ** 2 + 1e-6) + 0.5 * s[i]).mean()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_arw_matches_reference_loss_and_optimizer_updates(optimizer):
    g = torch.Generator().manual_seed(0)
    batches = [{"vr": torch.randn(5, generator=g) * 0.9 - 0.5, "js": torch.rand(5, generator=g) * 0.2}
               for _ in range(3)]
    ours = ARW(optimizer=optimizer, iters=7)
    s = torch.zeros(2, requires_grad=True)
    cls = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}[optimizer]
    opt = cls([s], lr=0.05)  # created once and kept across fits, as the reference does
    history = {"vr": torch.empty(0), "js": torch.empty(0)}
    for b in batches:
        ours.observe(b)
        history = {k: torch.cat([history[k], b[k]]) for k in history}
        _reference_fit(history, s, opt, 7)
        assert list(ours.log_var.values()) == pytest.approx(s.tolist(), abs=2e-6)
    # score = sum_k w_k r / (exp(0.5 s) + 1e-6) with default w = 0.5
    r = batches[0]
    expect = 0.5 * r["vr"] / (torch.exp(0.5 * s[0]) + 1e-6) + 0.5 * r["js"] / (torch.exp(0.5 * s[1]) + 1e-6)
    assert ours.score(r).tolist() == pytest.approx(expect.tolist(), rel=1e-5)


def test_arw_first_adam_step_by_hand():
    agg = ARW(iters=1)
    agg.observe({"a": torch.tensor([0.0, 4.0])})  # population variance 4
    # gradient at s=0: 0.5 - 0.5 * (4 + 1e-6) = -1.5; Adam's first step is -lr * g / (|g| + 1e-8)
    assert agg.log_var["a"] == pytest.approx(0.05 * 1.5 / (1.5 + 1e-8), rel=1e-6)


def test_arw_fit_needs_two_values_and_window():
    agg = ARW()
    agg.observe({"a": torch.tensor([3.0])})
    assert agg.log_var == {"a": 0.0}
    agg = ARW(history_size=3)
    for v in range(5):
        agg.observe({"a": torch.tensor([float(v)])})
    assert agg.history()["a"].tolist() == [2.0, 3.0, 4.0]


def test_arw_state_round_trips_through_json_and_keeps_learning_identically():
    a = ARW(weights={"text": 0.2, "sync": 0.8})
    a.observe(R)
    b = ARW()
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    nxt = {"text": torch.tensor([5.0, -1.0]), "sync": torch.tensor([0.5, 0.0])}
    a.observe(nxt)
    b.observe(nxt)
    assert a.log_var == b.log_var
    assert a.score(R).tolist() == b.score(R).tolist()
    assert b.history_size == 5
    with pytest.raises(RewardError, match="optimizer"):
        ARW(optimizer="sgd").load_state_dict(a.state_dict())
    with pytest.raises(RewardError, match="'arw' aggregator given to 'rank'"):
        Rank().load_state_dict(a.state_dict())


def test_running_statistics_equal_the_whole_history():
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(n, generator=g, dtype=torch.float64) * 3 + 7 for n in (1, 5, 100, 2)]
    stats = RunningStats()
    for b in batches:
        stats = stats.merged(b)
    whole = torch.cat(batches)
    assert stats.count == 108 and stats.mean == pytest.approx(whole.mean().item(), rel=1e-12)
    assert stats.variance == pytest.approx(whole.var(correction=0).item(), rel=1e-12)


def test_weights_by_name_and_their_checks():
    assert resolve_weights({"b": 1, "a": 3}, ["a", "b"]) == {"a": 3.0, "b": 1.0}
    assert resolve_weights([3, 1], ["a", "b"]) == {"a": 3.0, "b": 1.0}
    assert resolve_weights([3, 1], ["b", "a"]) == {"b": 3.0, "a": 1.0}
    for bad, match in [({"a": 1, "x": 1}, "name every reward"), ([1], "1 weights for the 2"),
                       ([float("nan"), 1], "finite"), ([1, float("inf")], "finite"),
                       ([-1, 1], r"\[0, 1e\+06\]"), ([0, 0], "every weight is 0")]:
        with pytest.raises(RewardError, match=match):
            resolve_weights(bad, ["a", "b"])


def test_a_positional_weight_list_is_kept_by_name_once_bound():
    agg = ARW(weights=[0.2, 0.8])
    agg.bind(["sync", "text"])
    assert agg.state_dict()["weights"] == {"sync": 0.2, "text": 0.8}
    agg.observe(R)
    agg.bind(["text", "sync"])  # another order later: the same weight per name
    assert agg.weights() == {"text": 0.8, "sync": 0.2}


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": float("nan")}, "lr must be a finite"), ({"lr": float("inf")}, "lr must be a finite"),
    ({"lr": 0}, "lr must lie"), ({"iters": -1}, "iterations"), ({"iters": 2.5}, "whole"),
    ({"history_size": 1}, "window"), ({"optimizer": "lbfgs"}, "optimizer"),
    ({"weights": [float("nan"), 1.0]}, "finite"),
])
def test_arw_settings_are_checked(kwargs, match):
    with pytest.raises(RewardError, match=match):
        ARW(**kwargs)


def test_a_diverging_fit_is_an_error_and_changes_nothing():
    agg = ARW(lr=1.0, iters=10_000, optimizer="sgd")
    agg.observe({"a": torch.tensor([0.0, 1.0])})
    before = json.dumps(agg.state_dict())
    with pytest.raises(RewardError, match="diverged"):
        agg.observe({"a": torch.tensor([1e30, -1e30])})
    assert json.dumps(agg.state_dict()) == before


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.update(log_var={"text": 5000.0, "sync": 0.0}), r"log_var\['text'\] must lie"),
    (lambda s: s.update(log_var={"text": 0.0}), "log_var must hold one entry for each"),
    (lambda s: s.update(log_var="abc"), "log_var must hold"),
    (lambda s: s["optimizer_state"].update(exp_avg={"text": 0.0}), "exp_avg must give a number"),
    (lambda s: s["optimizer_state"].update(step="x"), "step must be a number"),
    (lambda s: s["stats"]["text"].update(m2=-1.0), r"m2 must lie"),
    (lambda s: s["stats"]["text"].update(mean=float("nan")), "mean must be a finite"),
    (lambda s: s.update(lr=float("nan")), "lr must be a finite"),
    (lambda s: s.update(iters="50"), "iterations must be a number"),
    (lambda s: s.update(weights={"text": -1.0}), "weight of 'text'"),
    (lambda s: s.update(verifiers="ab"), "verifiers must be a list"),
])
def test_bad_saved_values_are_our_error_and_leave_the_arw_as_it_was(edit, match):
    good = ARW()
    good.observe(R)
    state = json.loads(json.dumps(good.state_dict()))
    edit(state)
    target = ARW()
    target.observe({"x": torch.tensor([1.0, 2.0])})
    before = json.dumps(target.state_dict())
    with pytest.raises(RewardError, match=match):
        target.load_state_dict(state)
    assert json.dumps(target.state_dict()) == before
