"""What every verifier is: a named, batched reward function over an AVBatch, possibly giving
several named rewards from one pass (VideoReward's VQ/MQ/TA, ImageBind scores that share
embeddings), with an identity that says which model and settings produced its rewards."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import torch

from .batch import AVBatch


class VerifierError(ValueError):
    """A verifier set that cannot be used, or a verifier that broke its contract."""


@runtime_checkable
class Verifier(Protocol):
    """Scores N candidates at once; higher is better.

    ``name`` keys the reward in reports and in the aggregator's history. A verifier that gives
    several rewards from one pass also has ``rewards``, the names of its outputs, and returns a
    mapping with exactly those keys. Optional: ``identity`` (name plus a fingerprint of the
    model file and settings; rewards learned under one identity are not mixed with another's)
    and ``models()`` (the torch modules it runs, so the caller can put them on the device), and
    ``lengths_used(batch)`` (for real media whose streams last differently, ``AVBatch.media``:
    one sentence per clip on what it read of each stream; core/lengths.py)."""

    name: str

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor | Mapping[str, torch.Tensor]:
        """A float Tensor[N] (one reward per clip), or {reward name: Tensor[N]}."""
        ...


def reward_names(verifier: Verifier) -> tuple[str, ...]:
    """The names of the rewards ``verifier`` gives: its ``rewards``, else its ``name``."""
    return tuple(getattr(verifier, "rewards", None) or (verifier.name,))


def identity(verifier: Verifier) -> str:
    """The verifier's ``identity``, else its name and class (all a weight-free verifier has)."""
    return getattr(verifier, "identity", None) or f"{verifier.name}:{type(verifier).__qualname__}"


def models(obj: Any) -> list[Any]:
    """The torch modules ``obj`` (a verifier or a generator) runs, from its optional
    ``models()``; the node layer loads them through ComfyUI's model management."""
    return list(obj.models()) if hasattr(obj, "models") else []


def check_set(verifiers: Sequence[Verifier]) -> dict[str, str]:
    """{reward name: verifier identity} for a verifier set, in the set's order; raises when the
    set is empty or two rewards share a name."""
    if not verifiers:
        raise VerifierError("the verifier set is empty: connect at least one verifier")
    out: dict[str, str] = {}
    for v in verifiers:
        for name in reward_names(v):
            if name in out:
                raise VerifierError(f"two verifiers give a reward named '{name}'; give each "
                                    "verifier a distinct name")
            out[name] = identity(v)
    return out


def score(verifiers: Sequence[Verifier], batch: AVBatch, prompts: list[str]) -> dict[str, torch.Tensor]:
    """Every reward of every verifier for ``batch``: {reward name: float64 Tensor[N]} on the
    CPU. A verifier that returns other names or another count than it promised is an error."""
    out: dict[str, torch.Tensor] = {}
    for v in verifiers:
        raw = v(batch, prompts)
        names = reward_names(v)
        given = dict(raw) if isinstance(raw, Mapping) else {v.name: raw}
        if set(given) != set(names):
            raise VerifierError(f"verifier '{v.name}' returned rewards {sorted(given)}, "
                                f"promised {sorted(names)}")
        for name in names:
            r = torch.as_tensor(given[name]).detach().to("cpu", torch.float64).reshape(-1)
            if len(r) != len(batch):
                raise VerifierError(f"verifier '{v.name}' returned {len(r)} values of '{name}' "
                                    f"for {len(batch)} candidates")
            out[name] = r
    return out
