"""The machinery every search shares: denoise, decode once, score with every verifier in one
batched call per generation, feed the aggregator, re-score, time each phase, drive one progress
bar, and hold candidates as latents."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Sequence

import torch

from ..verifiers.base import Verifier
from ..verifiers.batch import AVBatch
from .aggregation import Aggregator, RewardError, check_rewards
from .generator import Generator, HasOracle, State
from .result import Candidate, SearchResult

ProgressCallback = Callable[[int, int, "AVBatch | None"], None]
"""(units done, units planned, preview of the best clip so far or None). It may raise to stop
the search (an interrupt); the search leaves no half-done state behind."""


class SearchError(ValueError):
    """A search configuration or verifier set that cannot run; raised before any work."""


def check_verifiers(verifiers: Sequence[Verifier]) -> None:
    if not verifiers:
        raise SearchError("the verifier set is empty: connect at least one verifier")
    names = [v.name for v in verifiers]
    if len(set(names)) != len(names):
        raise SearchError(f"two verifiers share a name in {names}; give each a distinct name")


class SearchRun:
    """One prompt's search in progress: its candidates, their raw rewards, and the costs."""

    PHASES = ("generate", "decode", "verify", "aggregate", "oracle")

    def __init__(self, generator: Generator, verifiers: Sequence[Verifier], aggregator: Aggregator,
                 planned_units: int, on_progress: ProgressCallback | None = None,
                 after_observe: Callable[[], None] | None = None) -> None:
        check_verifiers(verifiers)
        self.generator, self.verifiers, self.aggregator = generator, list(verifiers), aggregator
        self.on_progress, self.after_observe = on_progress, after_observe
        self.planned, self.done = planned_units, 0
        self.candidates: list[Candidate] = []
        self.rewards: dict[str, torch.Tensor] = {v.name: torch.empty(0, dtype=torch.float64)
                                                 for v in verifiers}
        self.scores = torch.empty(0, dtype=torch.float64)
        self.scales: list[dict] = []
        self.timings = dict.fromkeys(self.PHASES, 0.0)
        self._front_av: dict[int, AVBatch] = {}  # decoded clips of candidates that can still win
        self._nfe0 = generator.nfe
        self._t0 = time.perf_counter()

    @contextmanager
    def timed(self, phase: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] += time.perf_counter() - t

    def advance(self, units: int, preview: AVBatch | None = None) -> None:
        self.done += units
        if self.on_progress is not None:
            self.on_progress(self.done, self.planned, preview)

    def denoise(self, states: list[State], start: int, end: int, record: Sequence[int] = ()):
        with self.timed("generate"):
            return self.generator.denoise(states, start, end, record, on_step=self.advance)

    def add_candidates(self, finals: list[State], generation: int, parents: list[int | None],
                       seeds: list[int]) -> list[Candidate]:
        """Decode, verify and score a generation's new finished states (each exactly once)."""
        with self.timed("decode"):
            av = self.generator.decode(finals)
        self.advance(len(finals))
        with self.timed("verify"):
            prompts = [self.generator.prompt] * len(finals)
            raw = {}
            for v in self.verifiers:
                r = torch.as_tensor(v(av, prompts)).detach().reshape(-1)
                if len(r) != len(finals):
                    raise RewardError(f"verifier '{v.name}' returned {len(r)} rewards for "
                                      f"{len(finals)} candidates")
                raw[v.name] = r
            new = check_rewards(raw)
        self.advance(len(finals))
        with self.timed("oracle"):  # evaluation only: kept out of the search's own costs
            oracle = (self.generator.oracle(finals, self.generator.prompt)
                      if isinstance(self.generator, HasOracle) else [None] * len(finals))
        with self.timed("aggregate"):
            self.aggregator.observe(new)
            if self.after_observe is not None:
                self.after_observe()
            self.scales.append({"candidates": len(self.candidates) + len(finals),
                                "history_size": self.aggregator.history_size,
                                "sigmas": self.aggregator.sigmas()})
        added = []
        for j, state in enumerate(finals):
            c = Candidate(len(self.candidates), generation, parents[j], seeds[j],
                          self.generator.store(state), {k: float(t[j]) for k, t in new.items()},
                          oracle=oracle[j])
            self.candidates.append(c)
            self._front_av[c.id] = av.clip(j)
            added.append(c)
        self.rewards = {k: torch.cat([self.rewards[k], new[k]]) for k in self.rewards}
        self.rescore()
        self.advance(0, self._front_av[self.best_index()])
        return added

    def rescore(self) -> None:
        """Score every candidate of this prompt with the aggregator's newest state, so early
        candidates are judged on the same scale as late ones."""
        with self.timed("aggregate"):
            self.scores = self.aggregator.score(self.rewards)
            for c, s in zip(self.candidates, self.scores.tolist()):
                c.score = s
        front = pareto_front(torch.stack(list(self.rewards.values()), 1))
        self._front_av = {i: av for i, av in self._front_av.items() if front[i]}

    def best_index(self) -> int:
        """The highest score among candidates no other candidate beats on every verifier (with
        non-negative weights every aggregator is monotone, so the winner is always one of them;
        only their decoded clips are kept)."""
        masked = self.scores.masked_fill(~torch.tensor([i in self._front_av for i in
                                                        range(len(self.candidates))]), -torch.inf)
        return int(masked.argmax())

    def finish(self, method: str, config: dict) -> SearchResult:
        total = time.perf_counter() - self._t0
        timings = {**self.timings, "total": total,
                   "bookkeeping": max(total - sum(self.timings.values()), 0.0)}
        best = self.candidates[self.best_index()]
        agg = {"name": self.aggregator.name, "sigmas": self.aggregator.sigmas(),
               "history_size": self.aggregator.history_size, "scales_over_time": self.scales}
        return SearchResult(method, self.generator.prompt, self.candidates, best,
                            self._front_av[best.id], self.generator.nfe - self._nfe0, timings,
                            agg, config)


def pareto_front(rewards: torch.Tensor) -> torch.Tensor:
    """Bool[N]: True where no other row is >= on every column and > on one ([N, K] rewards)."""
    ge = (rewards[:, None, :] >= rewards[None, :, :]).all(-1)  # ge[j, i]: j >= i everywhere
    gt = (rewards[:, None, :] > rewards[None, :, :]).any(-1)
    return ~(ge & gt).any(0)
