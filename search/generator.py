"""The protocol a search drives. A generator owns its model, its sampler and its noise scaling;
the search only decides which states to denoise, mutate, decode and keep.

Steps index the sampling schedule: step 0 is pure noise, step ``steps`` is the finished sample.
A *state* is whatever the generator uses for one candidate at some step (a tensor, a nested
tensor, ...); the search treats it as opaque and passes lists of them back to the generator,
which batches them as it likes.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import torch

from ..verifiers.batch import AVBatch

State = Any
StepCallback = Callable[[int], None]
"""Called after every sampling step with the number of denoiser evaluations it cost; the
search uses it to advance its progress bar and to stop on an interrupt (it may raise)."""


@runtime_checkable
class Generator(Protocol):
    prompt: str
    """The text the candidates are generated for (the verifiers score against it)."""

    steps: int
    """Number of sampling steps from noise to sample."""

    nfe: int
    """Denoiser evaluations so far (one per candidate per step; a CFG pair counts once)."""

    deterministic: bool
    """True when denoising the same state over the same steps always gives the same result,
    so the search may reuse a recorded rollout instead of denoising it again."""

    def initial_noise(self, seeds: Sequence[int]) -> list[State]:
        """One initial noise state (step 0) per seed, reproducible from the seed alone."""
        ...

    def noise_like(self, state: State, rng: torch.Generator) -> State:
        """Standard Gaussian noise with the state's structure, drawn from ``rng``."""
        ...

    def sigma(self, step: int) -> float:
        """The schedule's noise level at ``step`` (1 at step 0 for rectified flow, 0 at the end)."""
        ...

    def combine(self, a: float, x: State, b: float, y: State) -> State:
        """a * x + b * y in the generator's state space (used for mutations)."""
        ...

    def denoise(self, states: list[State], start: int, end: int, record: Sequence[int] = (),
                on_step: StepCallback | None = None) -> tuple[list[State], dict[int, list[State]]]:
        """Denoise every state from step ``start`` to step ``end`` (batched). Returns the states
        at ``end`` and, for each step in ``record`` (start <= step <= end), the states there."""
        ...

    def decode(self, states: list[State]) -> AVBatch:
        """Decode finished states (step ``steps``) to frames and audio."""
        ...

    def store(self, state: State) -> State:
        """The form in which the search keeps a state between uses (e.g. moved to the CPU when
        the generator's device memory is tight)."""
        ...


@runtime_checkable
class HasOracle(Protocol):
    """A generator that knows the ground truth of what it made (ToyAV); used for evaluation
    only, never for selection."""

    def oracle(self, states: list[State], prompt: str) -> list[dict[str, float]]:
        ...
