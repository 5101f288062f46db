"""What every verifier is: a named, batched reward function over an AVBatch."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from .batch import AVBatch


@runtime_checkable
class Verifier(Protocol):
    """Scores N candidates at once; higher is better. ``name`` keys the reward in reports and
    in the aggregator's history, so two verifiers in one set must have different names."""

    name: str

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        """Return a float Tensor[N], one reward per clip of ``batch``."""
        ...
