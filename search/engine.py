"""The machinery every search shares: check the plan against its limits before any work,
denoise, decode and verify in chunks, feed the aggregator once per generation, re-score, time
each phase, drive one progress bar, and hold candidates as latents with only the clips that can
still win decoded."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from ..core import verifier as verifier_api
from ..core.batch import AVBatch
from ..core.checks import finite
from ..core.generator import (X0_PREDICTION, DecodesWinnerApart, Generator, HasClipSize,
                              HasOracle, PredictsX0, State, unmet)
from ..core.verifier import Verifier, VerifierError
from .aggregation import Aggregator, Rank, RewardError, check_rewards
from .recipe import Recipe
from .result import Candidate, SearchResult

ProgressCallback = Callable[[int, int, "AVBatch | None"], None]
"""(units done, units planned, preview of the best clip so far or None). It may raise to stop
the search (an interrupt); the search leaves no half-done state behind. The units are
thousandths of the search's estimated time, so the bar moves evenly through denoising,
decoding and verifying, whichever of them is slow."""

ClipsCallback = Callable[[list[int], "AVBatch"], None]
"""(candidate ids, their decoded clips) for every chunk of finished candidates, as soon as they
are verified: where a caller keeps every candidate (the search itself keeps only the clips that
can still win)."""

PROGRESS_UNITS = 1000

Placer = Callable[[str, list[Any]], None]
"""Called before a phase ('generate', 'decode', 'verify') with the torch modules it runs, so the
caller can put them on the device (the node layer does it through ComfyUI's model management)."""

BindCallback = Callable[[dict[str, str]], None]
"""Called once before any work with {reward name: verifier identity} of the verifier set (a
shared state checks that it learned from the same verifiers)."""


class SearchError(ValueError):
    """A search configuration or verifier set that cannot run; raised before any work."""


@dataclass(frozen=True)
class SearchLimits:
    """The resource budget a search is checked against before it starts."""

    chunk_size: int = 8
    """Candidates denoised, decoded and verified at once (memory grows with it)."""
    max_candidates: int = 1024
    """Candidates one search may score."""
    max_nfe: int = 1_000_000
    """Denoiser evaluations one search may spend."""
    max_chunk_gb: float = 8.0
    """Decoded clips of one chunk may take this much memory, where the generator says how much
    a clip takes (core.generator.HasClipSize)."""

    def __post_init__(self) -> None:
        finite("chunk_size", self.chunk_size, 1, 4096, integer=True, error=SearchError)
        finite("max_candidates", self.max_candidates, 1, 1_000_000, integer=True, error=SearchError)
        finite("max_nfe", self.max_nfe, 1, 10**9, integer=True, error=SearchError)
        finite("max_chunk_gb", self.max_chunk_gb, 0.001, 1e6, error=SearchError)

    def check(self, candidates: int, nfe: int, generator: Generator) -> None:
        """Refuse a plan over budget, naming the limit it breaks."""
        if candidates > self.max_candidates:
            raise SearchError(f"this search would score {candidates} candidates, over the limit "
                              f"max_candidates = {self.max_candidates}; lower the population "
                              "sizes or n (or raise max_candidates)")
        if nfe > self.max_nfe:
            raise SearchError(f"this search would spend {nfe} denoiser evaluations, over the limit "
                              f"max_nfe = {self.max_nfe}; lower the population sizes, n or steps")
        if isinstance(generator, HasClipSize):
            need = min(self.chunk_size, candidates) * generator.clip_bytes() / 1e9
            if need > self.max_chunk_gb:
                raise SearchError(f"a chunk of {min(self.chunk_size, candidates)} decoded clips "
                                  f"needs {need:.2f} GB, over the limit max_chunk_gb = "
                                  f"{self.max_chunk_gb:g}; lower chunk_size or the clip size")


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


class SearchRun:
    """One prompt's search in progress: its candidates, their raw rewards, and the costs."""

    PHASES = ("generate", "decode", "verify", "aggregate", "oracle")

    def __init__(self, generator: Generator, verifiers: Sequence[Verifier], aggregator: Aggregator,
                 planned_nfe: int, planned_candidates: int, prompt: str | None = None,
                 limits: SearchLimits = SearchLimits(), on_progress: ProgressCallback | None = None,
                 after_observe: Callable[[], None] | None = None,
                 bind: BindCallback | None = None, place: Placer | None = None,
                 on_clips: ClipsCallback | None = None, needs: Sequence[str] = ()) -> None:
        """Checks everything that can be checked before any work: what the search needs of the
        generator (``needs``: core.generator's LATER_MUTATION, X0_PREDICTION), the verifier set,
        its reward names against the aggregator's history and weights, and the plan against
        ``limits``."""
        self.generator = generator
        for need in needs:
            self.require(need)
        try:
            identities = verifier_api.check_set(verifiers)
        except VerifierError as e:
            raise SearchError(str(e)) from None
        limits.check(planned_candidates, planned_nfe, generator)
        if bind is not None:
            bind(identities)
        else:
            aggregator.bind(list(identities))
        self.generator, self.verifiers, self.aggregator = generator, list(verifiers), aggregator
        self.prompt = prompt or generator.prompt
        self.limits, self.on_progress, self.after_observe = limits, on_progress, after_observe
        self.place, self.on_clips = place, on_clips
        self.planned = {"generate": planned_nfe, "decode": planned_candidates,
                        "verify": planned_candidates}
        self.done = dict.fromkeys(self.planned, 0)
        self.shown = 0  # thousandths shown so far (the bar never moves back)
        self.candidates: list[Candidate] = []
        self.rewards: dict[str, torch.Tensor] = {k: torch.empty(0, dtype=torch.float64)
                                                 for k in identities}
        self.scores = torch.empty(0, dtype=torch.float64)
        self.best = -1
        self.scales: list[dict[str, Any]] = []
        self.timings = dict.fromkeys(self.PHASES, 0.0)
        self._clips: dict[int, AVBatch] = {}  # decoded clips of candidates that can still win
        self.unscored: list[Candidate] = []  # pruned or never committed: reported, never scored
        self.other_nfe = 0  # denoiser evaluations of another generator (a draft's)
        self._nfe0 = generator.nfe
        self._t0 = time.perf_counter()

    def require(self, need: str) -> None:
        why = unmet(self.generator, need)
        if why:
            raise SearchError(f"this search needs {need}: {why}")

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] += time.perf_counter() - t

    def advance(self, units: int, preview: AVBatch | None = None, phase: str = "generate") -> None:
        """Count ``units`` of ``phase`` done (denoiser evaluations, clips decoded or verified)."""
        self.done[phase] += units
        if self.on_progress is not None:
            self.shown = max(self.shown, round(PROGRESS_UNITS * self.fraction_done()))
            self.on_progress(self.shown, PROGRESS_UNITS, preview)

    def fraction_done(self) -> float:
        """Work done over work planned, each phase weighted by its seconds per unit so far (a
        phase not yet timed by the mean of those that are), so slow verifiers count as slow."""
        rates = {k: self.timings[k] / self.done[k] for k in self.planned
                 if self.done[k] and self.timings[k] > 0}
        default = sum(rates.values()) / len(rates) if rates else 1.0
        cost = {k: rates.get(k, default) for k in self.planned}
        planned = sum(max(self.planned[k], self.done[k]) * cost[k] for k in cost)
        return min(1.0, sum(self.done[k] * cost[k] for k in cost) / planned) if planned else 1.0

    def _place(self, phase: str, owners: Sequence[Any]) -> None:
        mods = [m for owner in owners for m in verifier_api.models(owner)]
        if self.place is not None and mods:
            self.place(phase, mods)

    def denoise(self, states: list[State], seeds: Sequence[int], start: int, end: int,
                record: Sequence[int] = (), generator: Generator | None = None,
                ) -> tuple[list[State], dict[int, list[State]]]:
        """Denoise in chunks of ``limits.chunk_size``, each state with its own seed (by the
        search's generator, or ``generator``: a draft)."""
        gen = generator or self.generator
        finals: list[State] = []
        recorded: dict[int, list[State]] = {r: [] for r in record}
        self._place("generate", [gen])
        for part in _chunks(len(states), self.limits.chunk_size):
            with self.timed("generate"):
                out, rec = gen.denoise(states[part], start, end, list(seeds[part]),
                                       record, on_step=self.advance)
            finals += out
            for r in record:
                recorded[r] += rec[r]
        return finals, recorded

    def denoise_predicting(self, states: list[State], seeds: Sequence[int], start: int,
                           end: int, generator: Generator | None = None,
                           ) -> tuple[list[State], list[State]]:
        """Denoise in chunks, also giving each state's x0 prediction made on the last step."""
        predictor = generator or self.generator
        why = unmet(predictor, X0_PREDICTION)
        if why or not isinstance(predictor, PredictsX0):
            raise SearchError(f"this search needs {X0_PREDICTION}: {why}")
        finals: list[State] = []
        x0: list[State] = []
        self._place("generate", [predictor])
        for part in _chunks(len(states), self.limits.chunk_size):
            with self.timed("generate"):
                out, pred = predictor.denoise_predicting(states[part], start, end,
                                                         list(seeds[part]), on_step=self.advance)
            finals += out
            x0 += pred
        return finals, x0

    def intermediate_scores(self, x0: list[State], verifiers: Sequence[Verifier] | None = None,
                            generator: Generator | None = None) -> torch.Tensor:
        """Scores of x0 predictions (or of drafts), decoded by the search's generator or
        ``generator``, read by ``verifiers`` (default the final set) and ranked by the
        aggregator's current scales without entering its history (a proxy set of other rewards
        is ranked by average ranks instead). Decoded and verified in chunks."""
        gen = generator or self.generator
        verifiers = list(verifiers) if verifiers else self.verifiers
        got: dict[str, list[torch.Tensor]] = {}
        for k in ("decode", "verify"):  # reads of x0 are work the plan did not count
            self.planned[k] += len(x0)
        for part in _chunks(len(x0), self.limits.chunk_size):
            self._place("decode", [gen])
            with self.timed("decode"):
                av = gen.decode(x0[part])
            self.advance(part.stop - part.start, phase="decode")
            self._place("verify", verifiers)
            with self.timed("verify"):
                try:
                    rewards = check_rewards(verifier_api.score(verifiers, av, [self.prompt] * len(av)))
                except VerifierError as e:
                    raise RewardError(str(e)) from None
            self.advance(part.stop - part.start, phase="verify")
            for k, v in rewards.items():
                got.setdefault(k, []).append(v)
        rewards = {k: torch.cat(v) for k, v in got.items()}
        with self.timed("aggregate"):
            if set(rewards) == set(self.rewards):
                return self.aggregator.score(rewards)
            return Rank().score(rewards)

    def add_candidates(self, finals: list[State], generation: int, parents: list[int | None],
                       seeds: list[int], recipes: Sequence[Recipe] | None = None) -> list[Candidate]:
        """Decode, verify and score a generation's new finished states, each exactly once, in
        chunks; the aggregator sees the whole generation at once, as the method requires.
        ``recipes``: how each was made, where that is more than its seed."""
        first = len(self.candidates)
        new: dict[str, list[torch.Tensor]] = {k: [] for k in self.rewards}
        oracle: list[dict[str, float] | None] = []
        for part in _chunks(len(finals), self.limits.chunk_size):
            self._place("decode", [self.generator])
            with self.timed("decode"):
                av = self.generator.decode(finals[part])
            self.advance(part.stop - part.start, phase="decode")
            self._place("verify", self.verifiers)
            with self.timed("verify"):
                try:
                    got = check_rewards(verifier_api.score(self.verifiers, av,
                                                           [self.prompt] * len(av)))
                except VerifierError as e:
                    raise RewardError(str(e)) from None
            with self.timed("oracle"):  # evaluation only: kept out of the search's own costs
                oracle += (self.generator.oracle(finals[part], self.prompt)
                           if isinstance(self.generator, HasOracle) else [None] * len(av))
            for k in new:
                new[k].append(got[k])
            so_far = {k: torch.cat(v) for k, v in new.items()}
            self._keep_front(av, first + part.start, so_far)
            if self.on_clips is not None:
                self.on_clips(list(range(first + part.start, first + part.stop)), av)
            self.advance(part.stop - part.start, self._best_so_far(so_far), phase="verify")
        batch = {k: torch.cat(v) for k, v in new.items()}
        with self.timed("aggregate"):
            self.aggregator.observe(batch)
            if self.after_observe is not None:
                self.after_observe()
            self.scales.append({"candidates": first + len(finals),
                                "history_size": self.aggregator.history_size,
                                "sigmas": self.aggregator.sigmas()})
        added = []
        for j, state in enumerate(finals):
            c = Candidate(first + j, generation, parents[j], seeds[j], self.generator.store(state),
                          {k: float(t[j]) for k, t in batch.items()}, oracle=oracle[j],
                          recipe=recipes[j] if recipes is not None else None)
            self.candidates.append(c)
            added.append(c)
        self.rewards = {k: torch.cat([self.rewards[k], batch[k]]) for k in self.rewards}
        self.rescore()
        self.advance(0, self._clips.get(self.best))
        return added

    def _best_so_far(self, new: dict[str, torch.Tensor]) -> AVBatch | None:
        """The clip of the best candidate so far, this generation's verified ones included,
        ranked by the aggregator's current state without entering its history (the live
        preview shows the leader, not the newest candidate)."""
        rewards = {k: torch.cat([self.rewards[k], new[k]]) for k in self.rewards}
        with self.timed("aggregate"):
            leader = int(torch.argmax(self.aggregator.score(rewards)))
        return self._clips.get(leader)

    def _keep_front(self, av: AVBatch, first_id: int, new: dict[str, torch.Tensor]) -> None:
        """Keep the clips of this chunk that no candidate so far beats on every reward (only
        they can still win) and drop those the chunk's candidates now beat."""
        table = torch.stack([torch.cat([self.rewards[k], new[k]]) for k in self.rewards], 1)
        front = pareto_front(table)
        self._clips = {i: c for i, c in self._clips.items() if front[i]}
        for j in range(len(av)):
            if front[first_id + j]:  # a copy, so the rest of the chunk can be freed
                self._clips[first_id + j] = AVBatch(av.video[j:j + 1].clone(), av.fps,
                                                    av.audio[j:j + 1].clone(), av.sample_rate)

    def rescore(self) -> None:
        """Score every candidate of this prompt with the aggregator's newest state, so early
        candidates are judged on the same scale as late ones. The best is the argmax of these
        scores (ties: the lowest id); only its decoded clip is kept from here on."""
        with self.timed("aggregate"):
            self.scores = self.aggregator.score(self.rewards)
            for c, s in zip(self.candidates, self.scores.tolist()):
                c.score = s
        self.best = int(torch.argmax(self.scores))
        self._clips = {self.best: self._clips[self.best]} if self.best in self._clips else {}

    def finish(self, method: str, config: dict[str, Any]) -> SearchResult:
        best = self.candidates[self.best]
        clip = self._clips.get(best.id)
        gen = self.generator
        apart = gen if isinstance(gen, DecodesWinnerApart) else None
        if apart is not None and apart.decoders["winner"] != apart.decoders["score"]:
            self._place("decode", [gen])
            with self.timed("decode"):  # scored through a cheap decoder: the winner once in full
                clip = apart.decode_winner([best.state])
        elif clip is None:  # a tie went to a candidate whose clip was dropped: decode it again
            self._place("decode", [self.generator])
            with self.timed("decode"):
                clip = self.generator.decode([best.state])
        total = time.perf_counter() - self._t0
        timings = {**self.timings, "total": total,
                   "bookkeeping": max(total - sum(self.timings.values()), 0.0)}
        agg = {"name": self.aggregator.name, "sigmas": self.aggregator.sigmas(),
               "history_size": self.aggregator.history_size, "scales_over_time": self.scales}
        if hasattr(self.generator, "sigmas"):
            config = {**config, "sigmas": list(self.generator.sigmas())}
        if apart is not None:
            config = {**config, "decoders": dict(apart.decoders)}
        for j, c in enumerate(self.unscored):  # ids after the finished candidates
            c.id = len(self.candidates) + j
        return SearchResult(method, self.prompt, self.candidates + self.unscored, best, clip,
                            self.generator.to_latent([best.state]),
                            self.generator.nfe - self._nfe0 + self.other_nfe, timings, agg, config)


def pareto_front(rewards: torch.Tensor) -> torch.Tensor:
    """Bool[N]: True where no other row is >= on every column and > on one ([N, K] rewards)."""
    ge = (rewards[:, None, :] >= rewards[None, :, :]).all(-1)  # ge[j, i]: j >= i everywhere
    gt = (rewards[:, None, :] > rewards[None, :, :]).any(-1)
    return ~(ge & gt).any(0)
