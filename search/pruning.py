"""Searches on intermediate rewards: the model's clean-sample prediction (x0) at a step is
decoded and scored, so candidates that are visibly losing stop early (pruned Best-of-N) or are
replaced by copies of the winning ones (particle resampling).

Intermediate scores are kept apart from final rewards: they are ranked with the aggregator's
current scales (or by average ranks when a cheaper proxy verifier set reads them) and never
enter its history, shared or not. Every candidate of the report carries its intermediate
scores and the step it was pruned at (or null); only finished candidates have final rewards.
The x0 prediction of a step is the one the model made on the step before it, so reading it
costs no model call.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import torch

from ..core.checks import finite
from ..core.generator import LATER_MUTATION, X0_PREDICTION, Generator
from ..core.verifier import Verifier
from .aggregation import Aggregator
from .engine import SearchError, SearchRun
from .recipe import Change, Recipe
from .result import Candidate, SearchResult
from .schedule import Step, resolve_steps


@dataclass(frozen=True)
class PrunedBestOfNConfig:
    """N candidates; at each (step, keep) of ``schedule`` the survivors' x0 predictions are
    scored and the best ``keep`` fraction (at least one) goes on. A step may be a fraction of
    the schedule (search.schedule)."""

    n: int = 10
    schedule: tuple[tuple[Step, float], ...] = ((0.2, 0.5), (0.33, 0.4))
    seed: int = 0

    def at(self, steps: int) -> "PrunedBestOfNConfig":
        """This config on a ``steps``-step schedule: every step a whole step."""
        marks = resolve_steps("pruning step", [k for k, _ in self.schedule], steps)
        return replace(self, schedule=tuple(zip(marks, (f for _, f in self.schedule))))

    def validate(self, steps: int) -> None:
        finite("pruned Best-of-N's n", self.n, 1, integer=True, error=SearchError)
        finite("seed", self.seed, 0, integer=True, error=SearchError)
        self.at(steps)
        for _, keep in self.schedule:
            finite("kept fraction", keep, 0, 1, lo_open=True, error=SearchError)

    def survivors(self) -> list[int]:
        """Candidates alive after each pruning step."""
        alive, out = self.n, []
        for _, keep in self.schedule:
            alive = max(1, math.ceil(alive * keep))
            out.append(alive)
        return out

    def planned_nfe(self, steps: int) -> int:
        """n x the first pruning step, then each survivor count x its stretch to the end."""
        marks = [0] + [int(k) for k, _ in self.at(steps).schedule] + [steps]
        alive = [self.n] + self.survivors()
        return sum(a * (b - s) for a, s, b in zip(alive, marks, marks[1:]))


@dataclass(frozen=True)
class ParticleConfig:
    """N particles resampled at ``resample_steps`` by softmax(score / temperature) of their x0
    predictions; a duplicate diverges by fresh noise from its own seed (a variance-preserving
    mix of strength ``jitter``); the final choice is over all finished particles."""

    n: int = 10
    resample_steps: tuple[Step, ...] = (0.33, 0.67)
    temperature: float = 0.1
    jitter: float = 0.2
    seed: int = 0

    def at(self, steps: int) -> "ParticleConfig":
        """This config on a ``steps``-step schedule: every step a whole step."""
        return replace(self, resample_steps=tuple(resolve_steps("resampling step",
                                                                self.resample_steps, steps)))

    def validate(self, steps: int) -> None:
        finite("particles", self.n, 1, integer=True, error=SearchError)
        finite("seed", self.seed, 0, integer=True, error=SearchError)
        self.at(steps)
        finite("temperature", self.temperature, 0, 1e6, lo_open=True, error=SearchError)
        finite("jitter", self.jitter, 0, 1, lo_open=True, error=SearchError)

    def planned_nfe(self, steps: int) -> int:
        return self.n * steps


@dataclass
class _Alive:
    state: Any
    seed: int
    candidate: Candidate
    scores: dict[int, float] = field(default_factory=dict)


def pruned_best_of_n(generator: Generator, verifiers: Sequence[Verifier], aggregator: Aggregator,
                     config: PrunedBestOfNConfig, proxy: Sequence[Verifier] | None = None,
                     **options: Any) -> SearchResult:
    """Best-of-N that stops losing candidates early. With an empty schedule it is Best-of-N;
    a survivor's final sample is what the same seed gives unpruned (pruning only stops)."""
    steps = generator.steps
    config.validate(steps)
    config = config.at(steps)
    finished = config.survivors()[-1] if config.schedule else config.n
    run = SearchRun(generator, verifiers, aggregator, config.planned_nfe(steps), finished, **options,
                    needs=[X0_PREDICTION] if config.schedule else [])
    seeds = [config.seed + i for i in range(config.n)]
    with run.timed("generate"):
        alive = [_Alive(s, k, Candidate(-1, 0, None, k, None))
                 for s, k in zip(generator.initial_noise(seeds), seeds)]
    at = 0
    for step, keep in ((int(k), f) for k, f in config.schedule):
        states, x0 = run.denoise_predicting([a.state for a in alive], [a.seed for a in alive], at, step)
        scores = run.intermediate_scores(x0, proxy).tolist()
        for a, state, s in zip(alive, states, scores):
            a.state, a.scores[step] = generator.store(state), s
        order = sorted(range(len(alive)), key=lambda i: (-scores[i], alive[i].seed))
        kept = sorted(order[:max(1, math.ceil(len(alive) * keep))])
        for i in set(range(len(alive))) - set(kept):
            alive[i].candidate.pruned_at, alive[i].candidate.score = step, None
            alive[i].candidate.intermediate = alive[i].scores
            run.unscored.append(alive[i].candidate)
        alive, at = [alive[i] for i in kept], step
    finals, _ = run.denoise([a.state for a in alive], [a.seed for a in alive], at, steps)
    added = run.add_candidates(finals, 0, [None] * len(alive), [a.seed for a in alive])
    for a, c in zip(alive, added):
        c.intermediate = a.scores if config.schedule else None
    run.unscored.sort(key=lambda c: c.seed)
    result = run.finish("pruned_best_of_n", {
        "n": config.n, "steps": steps, "seed": config.seed,
        "schedule": [[k, f] for k, f in config.schedule], "survivors": config.survivors(),
        "nfe_saved": config.n * steps - config.planned_nfe(steps),
        "proxy": [v.name for v in proxy] if proxy else None})
    return result


def particle_search(generator: Generator, verifiers: Sequence[Verifier], aggregator: Aggregator,
                    config: ParticleConfig, proxy: Sequence[Verifier] | None = None,
                    **options: Any) -> SearchResult:
    """N particles, resampled on intermediate scores. Without resampling steps it is
    Best-of-N. A particle's line: its seed, then the seed of each copy made of it."""
    steps = generator.steps
    config.validate(steps)
    config = config.at(steps)
    run = SearchRun(generator, verifiers, aggregator, config.planned_nfe(steps), config.n, **options,
                    needs=[X0_PREDICTION, LATER_MUTATION] if config.resample_steps else [])
    rng = random.Random(config.seed)
    next_seed = iter(range(config.seed + config.n, config.seed + 10 ** 9))
    seeds = [config.seed + i for i in range(config.n)]
    with run.timed("generate"):
        states = generator.initial_noise(seeds)
    history: list[dict[int, float]] = [{} for _ in seeds]
    recipes = [Recipe(s) for s in seeds]
    at = 0
    for step in (int(k) for k in config.resample_steps):
        states, x0 = run.denoise_predicting(states, seeds, at, step)
        scores = run.intermediate_scores(x0, proxy)
        weights = torch.softmax(scores / config.temperature, dim=0).tolist()
        picks = sorted(rng.choices(range(len(states)), weights=weights, k=config.n))
        new_states, new_seeds, new_recipes, seen = [], [], [], set()
        new_history: list[dict[int, float]] = []
        for i in picks:
            h: dict[int, float] = {**history[i], step: float(scores[i])}
            if i in seen:  # a duplicate diverges by fresh noise from its own new seed
                seed = next(next_seed)
                with run.timed("generate"):
                    state = generator.mutate(states[i], step, config.jitter, seed, "variance_preserving")
                new_recipes.append(recipes[i].then(Change(step, seed, config.jitter, "variance_preserving")))
            else:
                seed, state = seeds[i], states[i]
                new_recipes.append(recipes[i])
                seen.add(i)
            new_states.append(generator.store(state))
            new_seeds.append(seed)
            new_history.append(h)
        states, seeds, history, recipes, at = new_states, new_seeds, new_history, new_recipes, step
    finals, _ = run.denoise(states, seeds, at, steps)
    added = run.add_candidates(finals, 0, [None] * len(finals), seeds, recipes)
    for c, h in zip(added, history):
        c.intermediate = h if config.resample_steps else None
    return run.finish("particle_search", {
        "n": config.n, "steps": steps, "seed": config.seed,
        "resample_steps": list(config.resample_steps), "temperature": config.temperature,
        "jitter": config.jitter, "proxy": [v.name for v in proxy] if proxy else None})
