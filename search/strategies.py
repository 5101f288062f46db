"""Naive sampling, Best-of-N and EvoSearch over any Generator.

EvoSearch follows the schedule semantics of the paper's reference implementation: a
population at each evolution step, elites carried over, tournament parents, mutations of the
initial noise or of intermediate states (made by the generator, which knows its state
convention). Unlike the reference it never repeats work: with a deterministic sampler an
unmutated elite's rollout is already known, so it is neither denoised, decoded nor scored again,
and the selection pool holds each distinct state once. The default config therefore costs 300
denoiser evaluations instead of 400 for 11 distinct candidates.

Every search takes the same options beside its config: ``prompt`` (the text the verifiers read;
default the generator's), ``limits`` (the resource budget, checked before any work),
``on_progress``, ``after_observe`` (called after each update of the aggregator), ``bind``
(checks the verifier set against a shared state before any work) and ``place`` (puts a phase's
models on the device).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Sequence

from ..core.checks import finite
from ..core.generator import LATER_MUTATION, MUTATIONS, Generator
from ..core.verifier import Verifier
from .aggregation import Aggregator
from .engine import SearchError, SearchRun
from .recipe import Change, Recipe
from .result import SearchResult
from .schedule import Step, resolve_steps


@dataclass(frozen=True)
class BestOfNConfig:
    n: int = 10
    seed: int = 0

    def validate(self) -> None:
        finite("Best-of-N's n", self.n, 1, integer=True, error=SearchError)
        finite("seed", self.seed, 0, integer=True, error=SearchError)


@dataclass(frozen=True)
class EvoSearchConfig:
    evolution_steps: tuple[Step, ...] = (0, 0.33)
    """0 is the initial noise; a later step may be a fraction of the schedule (search.schedule)."""
    population_sizes: tuple[int, ...] = (5, 5, 5)
    elites: int = 2
    mutation_rate: float = 0.2
    tournament_ratio: float = 0.5
    mutation: str = "reference"
    seed: int = 0

    def at(self, steps: int) -> "EvoSearchConfig":
        """This config on a ``steps``-step schedule: every evolution step a whole step."""
        return replace(self, evolution_steps=tuple(resolve_steps(
            "evolution step", self.evolution_steps, steps, lowest=0)))

    def validate(self, steps: int) -> None:
        self.at(steps)  # every evolution step inside the schedule
        self.check()

    def check(self) -> None:
        """Everything that does not depend on the generator's step count (a node checks it
        when the prompt is queued)."""
        e, p = list(self.evolution_steps), list(self.population_sizes)
        if not e:
            raise SearchError("EvoSearch needs at least one evolution step (e.g. 0, 10)")
        for what, values in (("a population size", p), ("elites", [self.elites]),
                             ("seed", [self.seed])):
            for v in values:
                finite(what, v, 0, integer=True, error=SearchError)
        if len(p) != len(e) + 1:
            raise SearchError(f"{len(e)} evolution steps need {len(e) + 1} population sizes "
                              f"(the first generation, then one after each step); got {p}")
        if min(p) < 1:
            raise SearchError(f"population sizes must be >= 1, got {p}")
        if not self.elites < min(p[1:]):
            raise SearchError(f"elites ({self.elites}) must be smaller than every evolved "
                              f"population ({p[1:]}), or nothing is left to evolve")
        finite("mutation rate", self.mutation_rate, 0, 1, lo_open=True, error=SearchError)
        finite("tournament ratio", self.tournament_ratio, 0, 1, lo_open=True, error=SearchError)
        if self.mutation not in MUTATIONS:
            raise SearchError(f"mutation must be one of {MUTATIONS}, got '{self.mutation}'")

    def planned_nfe(self, steps: int, deterministic: bool = True) -> int:
        """Denoiser evaluations this config will spend (each a CFG pair)."""
        starts = [0, *(int(e) for e in self.at(steps).evolution_steps)]
        new = [self.population_sizes[0]] + [p - (self.elites if deterministic else 0)
                                            for p in self.population_sizes[1:]]
        return sum(n * (steps - s) for n, s in zip(new, starts))

    def planned_candidates(self, deterministic: bool = True) -> int:
        return self.population_sizes[0] + sum(p - (self.elites if deterministic else 0)
                                              for p in self.population_sizes[1:])


def best_of_n(generator: Generator, verifiers: Sequence[Verifier], aggregator: Aggregator,
              config: BestOfNConfig, method: str = "best_of_n", **options: Any) -> SearchResult:
    """N independent initial noises (seeds seed..seed+N-1), sampled, decoded and scored in
    chunks, aggregated once; the best is returned."""
    config.validate()
    steps = generator.steps
    run = SearchRun(generator, verifiers, aggregator, config.n * steps, config.n, **options)
    seeds = [config.seed + i for i in range(config.n)]
    with run.timed("generate"):
        noise = generator.initial_noise(seeds)
    finals, _ = run.denoise(noise, seeds, 0, steps)
    run.add_candidates(finals, 0, [None] * config.n, seeds)
    return run.finish(method, {"n": config.n, "steps": steps, "seed": config.seed})


def naive(generator: Generator, verifiers: Sequence[Verifier], aggregator: Aggregator,
          seed: int = 0, **options: Any) -> SearchResult:
    """One sample, scored: the baseline every improvement is measured against."""
    return best_of_n(generator, verifiers, aggregator, BestOfNConfig(1, seed), method="naive",
                     **options)


@dataclass
class _Member:
    """A population member at some step: its state and, when its rollout is already known,
    the candidate it leads to; ``seed`` drives its mutation noise and its sampler's noise."""

    state: Any
    candidate: int | None = None
    parent: int | None = None
    seed: int = 0
    recipe: Recipe = Recipe(0)


def evosearch(generator: Generator, verifiers: Sequence[Verifier], aggregator: Aggregator,
              config: EvoSearchConfig, **options: Any) -> SearchResult:
    steps = generator.steps
    config.validate(steps)
    config = config.at(steps)
    evo, sizes = [int(e) for e in config.evolution_steps], list(config.population_sizes)
    reuse = generator.deterministic
    run = SearchRun(generator, verifiers, aggregator, config.planned_nfe(steps, reuse),
                    config.planned_candidates(reuse), **options,
                    needs=[LATER_MUTATION] if any(e > 0 for e in evo) else [])
    rng = random.Random(config.seed)
    next_seed = iter(range(config.seed, config.seed + 10**9))
    seeds = [next(next_seed) for _ in range(sizes[0])]
    with run.timed("generate"):
        population = [_Member(s, seed=k, recipe=Recipe(k))
                      for s, k in zip(generator.initial_noise(seeds), seeds)]
    pools: dict[int, list[_Member]] = {e: [] for e in evo}  # distinct states seen at each step
    start = 0
    for g in range(len(sizes)):
        new = [m for m in population if m.candidate is None]
        if new:
            finals, recorded = run.denoise([m.state for m in new], [m.seed for m in new], start,
                                           steps, record=evo[g:])
            added = run.add_candidates(finals, g, [m.parent for m in new], [m.seed for m in new],
                                       [m.recipe for m in new])
            for j, (m, c) in enumerate(zip(new, added)):
                for e in evo[g:]:
                    pools[e].append(_Member(generator.store(recorded[e][j]), c.id, m.parent, m.seed,
                                            m.recipe))
        if g == len(evo):
            break
        start = evo[g]
        pool = pools[start]
        fitness = [run.scores[m.candidate].item() for m in pool]
        order = sorted(range(len(pool)), key=lambda i: -fitness[i])
        elites = [pool[i] for i in order[:config.elites]]
        if not reuse:  # a stochastic sampler gives an elite a new rollout, with new noise
            elites = [_Member(m.state, None, m.candidate, s, m.recipe.then(Change(start, s)))
                      for m, s in ((m, next(next_seed)) for m in elites)]
        k = max(1, int(len(pool) * config.tournament_ratio))
        children = []
        for _ in range(sizes[g + 1] - len(elites)):
            contenders = rng.sample(range(len(pool)), min(k, len(pool)))
            parent = pool[max(contenders, key=lambda i: fitness[i])]
            seed = next(next_seed)
            with run.timed("generate"):
                child = generator.mutate(parent.state, start, config.mutation_rate, seed,
                                         config.mutation)
            children.append(_Member(child, None, parent.candidate, seed, parent.recipe.then(
                Change(start, seed, config.mutation_rate, config.mutation))))
        population = elites + children
    return run.finish("evosearch", {"steps": steps, "evolution_steps": evo,
                                    "population_sizes": sizes, "elites": config.elites,
                                    "mutation_rate": config.mutation_rate,
                                    "tournament_ratio": config.tournament_ratio,
                                    "mutation": config.mutation, "seed": config.seed})
