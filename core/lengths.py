"""What each verifier read of clips whose audio and video last differently (real media,
``AVBatch.media``), in one sentence per clip, so that a score of such a file says which part of
each stream it stands for.

A verifier says it through an optional ``lengths_used(batch) -> list[str]`` (one sentence per
clip, its benchmark's rule applied to this batch); one without it is given the batch as it is
and reads each stream whole (the video-only verifiers, for instance)."""

from __future__ import annotations

from typing import Sequence

from .batch import AVBatch
from .verifier import Verifier, VerifierError

WHOLE = "each stream whole"


def lengths_used(verifiers: Sequence[Verifier], batch: AVBatch) -> dict[str, list[str]]:
    """{verifier name: one sentence per clip} when the batch's streams last differently (beyond
    the generated clips' tolerance); {} when they match, as there is nothing to say."""
    if batch.lengths_match:
        return {}
    out = {}
    for v in verifiers:
        said = list(v.lengths_used(batch)) if hasattr(v, "lengths_used") else [WHOLE] * len(batch)
        if len(said) != len(batch):
            raise VerifierError(f"verifier '{v.name}' described {len(said)} clips of {len(batch)}")
        out[v.name] = said
    return out
