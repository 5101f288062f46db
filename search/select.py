"""Best-of-N over clips made elsewhere (other GPUs, other servers): the clips go through the
search engine as finished candidates of a generator that only hands them back, so they are
verified, aggregated (ARW's history included) and reported by the one implementation every
search uses."""

from __future__ import annotations

from typing import Any, Sequence

from ..core.batch import AVBatch
from ..core.generator import LATER_MUTATION
from ..core.verifier import Verifier
from .aggregation import Aggregator
from .engine import SearchError, SearchRun
from .result import SearchResult


class GivenClips:
    """A generator whose candidates already exist: candidate i's state is its index, decoding
    returns its clip; nothing is denoised (no steps, no NFE)."""

    steps = 0
    nfe = 0
    deterministic = True

    def __init__(self, clips: AVBatch, prompt: str = "") -> None:
        self.clips, self.prompt = clips, prompt

    def initial_noise(self, seeds: Sequence[int]) -> list[int]:
        return list(range(len(seeds)))

    def mutate(self, state: int, step: int, beta: float, seed: int, mode: str) -> int:
        raise SearchError(self.cannot(LATER_MUTATION))

    def cannot(self, need: str) -> str:
        return "clips made elsewhere have no states to mutate or predict"

    def denoise(self, states: list[int], start: int, end: int, seeds: Sequence[int],
                record: Sequence[int] = (), on_step: Any = None,
                ) -> tuple[list[int], dict[int, list[int]]]:
        return list(states), {r: list(states) for r in record}

    def decode(self, states: list[int]) -> AVBatch:
        c = self.clips
        return AVBatch(c.video[states], c.fps, c.audio[states], c.sample_rate)

    def store(self, state: int) -> int:
        return state

    def to_latent(self, states: list[int]) -> dict[str, Any]:
        return {}  # clips carry no latent


def select_best(clips: AVBatch, seeds: Sequence[int], verifiers: Sequence[Verifier],
                aggregator: Aggregator, **options: Any) -> SearchResult:
    """Score every clip (clip i was sampled from ``seeds[i]``) as one generation, as Best-of-N
    scores its candidates, and return the best; ``options`` as every search takes them."""
    seeds = list(seeds)
    if len(seeds) != len(clips):
        raise SearchError(f"{len(seeds)} seeds for {len(clips)} clips: give one seed per clip")
    run = SearchRun(GivenClips(clips), verifiers, aggregator, 0, len(clips), **options)
    run.add_candidates(list(range(len(clips))), 0, [None] * len(clips), seeds)
    return run.finish("select", {"n": len(clips), "steps": 0, "seeds": seeds})
