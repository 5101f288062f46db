"""What a search returns: every candidate it scored, the winner, and the report JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..core.batch import AVBatch
from .recipe import Recipe


@dataclass
class Candidate:
    """One finished sample. ``parent`` is the candidate whose intermediate state was mutated into
    this one's (None for a fresh initial noise); ``state`` is the finished latent."""

    id: int
    generation: int
    parent: int | None
    seed: int
    state: Any
    rewards: dict[str, float] = field(default_factory=dict)
    score: float | None = float("nan")
    oracle: dict[str, float] | None = None
    pruned_at: int | None = None
    """The step at which a search on intermediate rewards stopped this candidate (it then has
    no final rewards and no score)."""
    intermediate: dict[int, float] | None = None
    """Its score at each step where intermediate rewards were read (never final rewards)."""
    recipe: Recipe | None = None
    """How to make it again (search.recipe.replay); None: its seed alone."""
    file: str | None = None
    """Its mp4, where the search node kept every candidate."""
    draft_score: float | None = None
    """Draft-then-commit: the score of its draft (ranked with the aggregator's scales, never in
    its history); whether it was committed is ``committed``."""
    committed: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "generation": self.generation, "parent": self.parent,
               "seed": self.seed, "recipe": (self.recipe or Recipe(self.seed)).text(),
               "rewards": self.rewards, "score": self.score}
        if self.file is not None:
            out["file"] = self.file
        if self.oracle is not None:
            out["oracle"] = self.oracle
        if self.intermediate is not None:
            out["pruned_at"] = self.pruned_at
            out["intermediate"] = {str(k): v for k, v in self.intermediate.items()}
        if self.committed is not None:
            out["draft_score"], out["committed"] = self.draft_score, self.committed
        return out


@dataclass
class SearchResult:
    method: str
    prompt: str
    candidates: list[Candidate]
    best: Candidate
    best_av: AVBatch
    best_latent: dict[str, Any]
    """The winner as a ComfyUI LATENT (the generator's ``to_latent``)."""
    nfe: int
    timings: dict[str, float]
    aggregator: dict[str, Any]
    config: dict[str, Any]

    def report(self) -> dict[str, Any]:
        """The report contract: method, prompt, nfe, candidates, best, aggregator, timings,
        config."""
        return {"method": self.method, "prompt": self.prompt, "nfe": self.nfe,
                "candidates": [c.to_json() for c in self.candidates], "best": self.best.id,
                "aggregator": self.aggregator, "timings": self.timings, "config": self.config}

    def report_json(self) -> str:
        """The report as strict JSON (a non-finite number is an error, never a NaN token)."""
        return json.dumps(self.report(), indent=1, allow_nan=False)
