"""Draft, then commit: with commit = n and the draft the full generator it is Best-of-N
candidate for candidate; a committed candidate is the full generator run alone on its seed;
draft scores never enter ARW's history; a draft drawing other noise is refused before any
work, saying what differs; an interrupt mid-commit leaves ARW as it was; drafts may be pruned;
the report gives every draft's score, whether it was committed, and each phase's NFE and time."""

from __future__ import annotations

import json

import pytest
import torch

from comfyui_avits.search.aggregation import ARW
from comfyui_avits.search.draft import DraftConfig, draft_then_commit
from comfyui_avits.search.engine import SearchError
from comfyui_avits.search.strategies import BestOfNConfig, best_of_n

from fakes import CountingGenerator, Mean, PredictingGenerator


def verifiers():
    return [Mean("v", "video"), Mean("a", "audio")]


@pytest.mark.parametrize("deterministic", [True, False])
def test_commit_all_with_the_full_generator_as_draft_is_best_of_n(deterministic):
    gen = CountingGenerator(deterministic=deterministic)
    dtc = draft_then_commit(gen, verifiers(), ARW(), DraftConfig(n=6, commit=6, seed=4), draft=gen)
    bon = best_of_n(CountingGenerator(deterministic=deterministic), verifiers(), ARW(),
                    BestOfNConfig(n=6, seed=4))
    assert [c.seed for c in dtc.candidates] == [c.seed for c in bon.candidates]
    for a, b in zip(dtc.candidates, bon.candidates):
        assert torch.equal(a.state, b.state) and a.rewards == b.rewards
        assert a.score == pytest.approx(b.score, abs=1e-12) and a.committed
    assert dtc.best.id == bon.best.id


def test_a_committed_candidate_is_the_full_generator_alone_on_its_seed():
    full, draft = CountingGenerator(steps=30, deterministic=False), CountingGenerator(steps=6)
    result = draft_then_commit(full, verifiers(), ARW(), DraftConfig(n=8, commit=3, seed=2), draft=draft)
    committed = [c for c in result.candidates if c.committed]
    assert len(committed) == 3 and all(c.score is not None for c in committed)
    for c in committed:
        alone = CountingGenerator(steps=30, deterministic=False)
        want, _ = alone.denoise(alone.initial_noise([c.seed]), 0, 30, [c.seed])
        assert torch.equal(c.state, want[0])
    # the committed are the best drafts; the others are reported with their draft scores
    drafts = sorted(result.candidates, key=lambda c: -c.draft_score)
    assert {c.seed for c in drafts[:3]} == {c.seed for c in committed}
    report = json.loads(result.report_json())
    assert len(report["candidates"]) == 8 and sum(c["committed"] for c in report["candidates"]) == 3
    assert all(c["score"] is None for c in report["candidates"] if not c["committed"])
    phases = report["config"]["phases"]
    assert phases["draft"]["nfe"] == 8 * 6 and phases["commit"]["nfe"] == 3 * 30
    assert report["nfe"] == 8 * 6 + 3 * 30 and phases["draft"]["seconds"] >= 0


def test_draft_scores_never_enter_the_arw_history():
    arw = ARW()
    draft_then_commit(CountingGenerator(), verifiers(), arw, DraftConfig(n=10, commit=2),
                      draft=CountingGenerator(steps=5))
    assert arw.history_size == 2  # the committed candidates only


@pytest.mark.parametrize("draft,match", [
    (lambda: ShapeGenerator(), r"shape \[\(3,\)\], the full generator's \[\(2,\)\]"),
    (lambda: OtherNoise(), "draw different noise from seed 0"),
])
def test_a_draft_drawing_other_noise_is_refused_before_any_work(draft, match):
    full, d = CountingGenerator(), draft()
    with pytest.raises(SearchError, match=match):
        draft_then_commit(full, verifiers(), ARW(), DraftConfig(n=4, commit=2), draft=d)
    assert full.nfe == d.nfe == 0 and not full.calls and not d.calls
    with pytest.raises(SearchError, match="needs a draft generator"):
        draft_then_commit(full, verifiers(), ARW(), DraftConfig())
    with pytest.raises(SearchError, match="commit at most n"):
        draft_then_commit(full, verifiers(), ARW(), DraftConfig(n=2, commit=3), draft=full)


class ShapeGenerator(CountingGenerator):
    def initial_noise(self, seeds):
        return [torch.randn(3, generator=torch.Generator().manual_seed(s)) for s in seeds]


class OtherNoise(CountingGenerator):
    def initial_noise(self, seeds):
        return [torch.randn(2, generator=torch.Generator().manual_seed(s + 1)) for s in seeds]


def test_an_interrupt_mid_commit_leaves_arw_as_it_was():
    arw = ARW()
    draft_then_commit(CountingGenerator(), verifiers(), arw, DraftConfig(n=4, commit=2), draft=CountingGenerator(steps=5))
    before = json.dumps(arw.state_dict(), sort_keys=True)

    class Stop(Exception):
        pass

    full = CountingGenerator()

    def stop_in_commit(done, total, preview):
        if full.nfe > 10:  # the full generator runs only in the commit phase
            raise Stop

    with pytest.raises(Stop):
        draft_then_commit(full, verifiers(), arw, DraftConfig(n=4, commit=2),
                          draft=CountingGenerator(steps=5), on_progress=stop_in_commit)
    assert json.dumps(arw.state_dict(), sort_keys=True) == before


def test_drafts_are_pruned_on_x0_rewards_before_the_commit():
    draft = PredictingGenerator(steps=10)
    result = draft_then_commit(CountingGenerator(), verifiers(), ARW(),
                               DraftConfig(n=8, commit=2, schedule=((0.5, 0.5),)), draft=draft)
    pruned = [c for c in result.candidates if c.pruned_at is not None]
    assert len(pruned) == 4 and all(c.pruned_at == 5 and not c.committed for c in pruned)
    assert result.config["phases"]["draft"]["nfe"] == 8 * 5 + 4 * 5
    with pytest.raises(SearchError, match="leaves 1 drafts, fewer than the 2"):
        draft_then_commit(CountingGenerator(), verifiers(), ARW(),
                          DraftConfig(n=2, commit=2, schedule=((0.5, 0.5),)), draft=draft)
