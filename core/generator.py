"""The protocol a search drives. A generator owns its model, its sampler and its state
convention (so also how a state is mutated); the search only decides which states to denoise,
mutate, decode and keep.

Steps index the sampling schedule: step 0 is pure noise, step ``steps`` is the finished sample.
A *state* is whatever the generator uses for one candidate at some step (a tensor, a nested
tensor, ...); the search treats it as opaque and passes lists of them back to the generator,
which batches them as it likes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import torch

from .batch import AVBatch

State = Any
StepCallback = Callable[[int], None]
"""Called after every sampling step with the number of denoiser evaluations it cost; the
search uses it to advance its progress bar and to stop on an interrupt (it may raise)."""

MUTATIONS = ("reference", "variance_preserving")

LATER_MUTATION = "a mutation of a state after step 0"
X0_PREDICTION = "a clean-sample prediction (x0) during sampling"
"""Needs a search states before any work; a generator that cannot meet one for its model says
why through an optional ``cannot(need) -> str | None`` (see ``unmet``)."""


@runtime_checkable
class Generator(Protocol):
    prompt: str
    """The text the candidates are generated for, or "" when the generator does not know it
    (a ComfyUI CONDITIONING carries no text); the search node may give it instead."""

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

    def mutate(self, state: State, step: int, beta: float, seed: int, mode: str) -> State:
        """A child of ``state`` (a state at ``step``) for EvoSearch, with fresh noise drawn from
        ``seed``; ``beta`` is the mutation rate and ``mode`` one of MUTATIONS. Only the
        generator knows its state convention, so only it can add noise correctly."""
        ...

    def denoise(self, states: list[State], start: int, end: int, seeds: Sequence[int],
                record: Sequence[int] = (), on_step: StepCallback | None = None,
                ) -> tuple[list[State], dict[int, list[State]]]:
        """Denoise every state from step ``start`` to step ``end`` (batched). A stochastic
        sampler draws candidate i's noise from ``seeds[i]`` alone, so the result does not
        depend on which states share the batch. Returns the states at ``end`` and, for each
        step in ``record`` (start <= step <= end), the states there."""
        ...

    def decode(self, states: list[State]) -> AVBatch:
        """Decode finished states (step ``steps``) to frames and audio."""
        ...

    def store(self, state: State) -> State:
        """The form in which the search keeps a state between uses (e.g. moved to the CPU when
        the generator's device memory is tight)."""
        ...

    def to_latent(self, states: list[State]) -> dict[str, Any]:
        """Finished states as one ComfyUI LATENT: {"samples": batch, ...}, with a batch
        dimension and the model's nested parts (video and audio) where it has them."""
        ...


@runtime_checkable
class PredictsX0(Protocol):
    """A generator whose denoising also gives the model's clean-sample prediction, for search
    on intermediate rewards (pruning, particles): flow matching x0 = x - sigma v, DDPM
    x0 = (x - sqrt(1 - abar) eps) / sqrt(abar), a ComfyUI sampler's own ``denoised``."""

    def denoise_predicting(self, states: list[State], start: int, end: int, seeds: Sequence[int],
                           on_step: StepCallback | None = None) -> tuple[list[State], list[State]]:
        """As ``denoise`` from ``start`` to ``end`` (> start), also returning each candidate's
        x0 prediction made on the last step (the model's output on its state at ``end - 1``):
        no model call beyond the denoising itself. The predictions decode like finished
        states."""
        ...


@runtime_checkable
class DecodesWinnerApart(Protocol):
    """A generator that scores candidates through a cheaper decoder than the one its winner is
    shown with (a TAE against the full VAE)."""

    decoders: dict[str, str]
    """{"score": the decoder every score came from, "winner": the one ``decode_winner`` uses}."""

    def decode_winner(self, states: list[State]) -> AVBatch:
        ...


@runtime_checkable
class HasClipSize(Protocol):
    """A generator that says how many bytes one decoded clip takes (0: it cannot say), so a
    search's memory limit is checked before any work."""

    def clip_bytes(self) -> int:
        ...


@runtime_checkable
class HasOracle(Protocol):
    """A generator that knows the ground truth of what it made (ToyAV); used for evaluation
    only, never for selection."""

    def oracle(self, states: list[State], prompt: str) -> list[dict[str, float]]:
        ...


def unmet(generator: Generator, need: str) -> str | None:
    """Why ``generator`` cannot give ``need`` (LATER_MUTATION, X0_PREDICTION), or None."""
    if need == X0_PREDICTION and not isinstance(generator, PredictsX0):
        return f"{type(generator).__name__} gives no clean-sample prediction (x0)"
    cannot = getattr(generator, "cannot", None)
    return cannot(need) if callable(cannot) else None


def mutate_flow_state(x: torch.Tensor, eps: torch.Tensor, step: int, sigma: float, beta: float,
                      mode: str) -> torch.Tensor:
    """EvoSearch's mutation of a state that is the noisy sample itself (rectified flow, x_t =
    (1 - t) x_0 + t noise). Initial noise: sqrt(1 - beta^2) x + beta eps, which stays standard
    Gaussian. Intermediate state: the reference adds sigma eps; 'variance_preserving' mixes
    sqrt(1 - beta^2) x + beta sigma eps instead."""
    if mode not in MUTATIONS:
        raise ValueError(f"mutation must be one of {MUTATIONS}, got '{mode}'")
    keep = math.sqrt(1 - beta * beta)
    if step == 0:
        return keep * x + beta * eps
    if mode == "variance_preserving":
        return keep * x + beta * sigma * eps
    return x + sigma * eps
