"""Draft, then commit: explore N seeds with a cheap draft generator (fewer steps of the same
model, the model under a cache, a cheaper decoder), score the drafts without letting ARW learn
from them, and run only the best k seeds again with the full generator; the best committed
candidate wins. Drafts may themselves be pruned on x0 rewards. A draft says something about a
seed's full run only if it starts from the same initial noise, so the two generators are
checked to draw the same noise from a seed before any work."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch

from ..core.checks import finite
from ..core.generator import X0_PREDICTION, Generator, State, unmet
from ..core.verifier import Verifier
from .aggregation import Aggregator
from .engine import SearchError, SearchRun
from .pruning import PrunedBestOfNConfig
from .result import Candidate, SearchResult
from .schedule import Step


@dataclass(frozen=True)
class DraftConfig:
    """``n`` drafts (seeds seed..seed+n-1), the best ``commit`` of them run in full; drafts are
    pruned at each (step, kept fraction) of ``schedule``, steps of the draft's schedule (a
    fraction of it where below 1)."""

    n: int = 10
    commit: int = 3
    schedule: tuple[tuple[Step, float], ...] = ()
    seed: int = 0

    def pruning(self) -> PrunedBestOfNConfig:
        """The drafts' pruning, which is pruned Best-of-N's on the draft's schedule."""
        return PrunedBestOfNConfig(self.n, self.schedule, self.seed)

    def at(self, draft_steps: int) -> "DraftConfig":
        return replace(self, schedule=self.pruning().at(draft_steps).schedule)

    def check(self) -> None:
        """Everything but the draft's step count (a node checks it when the prompt is queued)."""
        finite("drafts (n)", self.n, 1, integer=True, error=SearchError)
        finite("committed candidates", self.commit, 1, integer=True, error=SearchError)
        finite("seed", self.seed, 0, integer=True, error=SearchError)
        if self.commit > self.n:
            raise SearchError(f"cannot commit {self.commit} of {self.n} drafts: commit at most n")
        for _, keep in self.schedule:
            finite("kept fraction", keep, 0, 1, lo_open=True, error=SearchError)

    def validate(self, draft_steps: int) -> None:
        self.check()
        survivors = self.pruning().survivors()
        self.at(draft_steps)
        if survivors and survivors[-1] < self.commit:
            raise SearchError(f"the draft pruning schedule leaves {survivors[-1]} drafts, fewer "
                              f"than the {self.commit} to commit")


def _parts(state: State) -> list[torch.Tensor]:
    return list(state.unbind()) if getattr(state, "is_nested", False) else [state]


def check_same_noise(draft: Generator, full: Generator, seed: int) -> None:
    """The draft and the full generator draw the same initial noise from a seed, else an error
    that says what differs (the shapes of the streams, or their values)."""
    a, b = _parts(draft.initial_noise([seed])[0]), _parts(full.initial_noise([seed])[0])
    shapes_a, shapes_b = [tuple(t.shape) for t in a], [tuple(t.shape) for t in b]
    if shapes_a != shapes_b:
        raise SearchError(f"the draft's initial noise has shape {shapes_a}, the full generator's "
                          f"{shapes_b}: a draft must start from the same latent as the full run "
                          "(same size and length; only the steps, the cache or the decoder may "
                          "differ)")
    if not all(torch.equal(x.cpu(), y.cpu()) for x, y in zip(a, b)):
        raise SearchError(f"the draft and the full generator draw different noise from seed "
                          f"{seed} (same shape {shapes_a}): they map seeds to noise differently, "
                          "so a draft's score says nothing about its seed's full run")


def draft_then_commit(generator: Generator, verifiers: Sequence[Verifier], aggregator: Aggregator,
                      config: DraftConfig, draft: Generator | None = None,
                      proxy: Sequence[Verifier] | None = None, **options: Any) -> SearchResult:
    """Best-of-``commit`` among the seeds whose drafts scored best. With commit = n and the
    draft the full generator it is Best-of-N, candidate for candidate."""
    if draft is None:
        raise SearchError("draft-then-commit needs a draft generator (e.g. the same model with "
                          "fewer steps): connect one to 'draft'")
    config.validate(draft.steps)
    config = config.at(draft.steps)
    check_same_noise(draft, generator, config.seed)
    steps = generator.steps
    planned = config.pruning().planned_nfe(draft.steps) + config.commit * steps
    run = SearchRun(generator, verifiers, aggregator, planned, config.commit, **options)
    why = unmet(draft, X0_PREDICTION) if config.schedule else None
    if why:
        raise SearchError(f"pruning drafts needs {X0_PREDICTION} of the draft: {why}")
    seeds = [config.seed + i for i in range(config.n)]
    t0, nfe0 = time.perf_counter(), draft.nfe
    with run.timed("generate"):
        states = draft.initial_noise(seeds)
    drafts = {s: Candidate(-1, 0, None, s, None, score=None, committed=False) for s in seeds}
    alive, at = list(seeds), 0
    for step, keep in ((int(k), f) for k, f in config.schedule):
        states, x0 = run.denoise_predicting(states, alive, at, step, generator=draft)
        scores = run.intermediate_scores(x0, proxy, generator=draft).tolist()
        for s, v in zip(alive, scores):
            drafts[s].intermediate = {**(drafts[s].intermediate or {}), step: v}
        order = sorted(range(len(alive)), key=lambda i: (-scores[i], alive[i]))
        kept = sorted(order[:max(1, math.ceil(len(alive) * keep))])
        for i in set(range(len(alive))) - set(kept):
            drafts[alive[i]].pruned_at = step
        states, alive, at = [draft.store(states[i]) for i in kept], [alive[i] for i in kept], step
    finals, _ = run.denoise(states, alive, at, draft.steps, generator=draft)
    scores = run.intermediate_scores(finals, proxy, generator=draft).tolist()
    for s, v in zip(alive, scores):
        drafts[s].draft_score = v
    draft_nfe, draft_s = draft.nfe - nfe0, time.perf_counter() - t0
    if draft is not generator:
        run.other_nfe = draft_nfe
    ranked = sorted(range(len(alive)), key=lambda i: (-scores[i], alive[i]))
    chosen = sorted(alive[i] for i in ranked[:config.commit])
    t1, nfe1 = time.perf_counter(), generator.nfe
    with run.timed("generate"):
        noise = generator.initial_noise(chosen)
    full, _ = run.denoise(noise, chosen, 0, steps)
    for c in run.add_candidates(full, 0, [None] * len(chosen), chosen):
        c.draft_score, c.committed = drafts[c.seed].draft_score, True
    run.unscored += [drafts[s] for s in seeds if s not in chosen]
    phases = {"draft": {"nfe": draft_nfe, "seconds": draft_s},
              "commit": {"nfe": generator.nfe - nfe1, "seconds": time.perf_counter() - t1}}
    return run.finish("draft_then_commit", {
        "n": config.n, "commit": config.commit, "steps": steps, "draft_steps": draft.steps,
        "seed": config.seed, "schedule": [[k, f] for k, f in config.schedule],
        "survivors": config.pruning().survivors(), "phases": phases,
        "proxy": [v.name for v in proxy] if proxy else None})
