"""Steps of a schedule written as step numbers or as fractions of the schedule, so one node
setting fits an 8-step distilled model and a 30-step one alike ("0.2:0.5, 0.33:0.4" prunes at
steps 6 and 10 of 30, 2 and 3 of 8)."""

from __future__ import annotations

import math
from typing import Sequence

from ..core.checks import finite
from .engine import SearchError

Step = int | float
"""A whole number is a step; a number strictly between 0 and 1 is that fraction of the steps."""


def resolve_step(what: str, value: Step, steps: int, lowest: int) -> int:
    """``value`` as a step of a ``steps``-step schedule: a fraction rounds to the nearest step,
    kept within lowest..steps - 1; a whole number must already lie there."""
    finite(what, value, 0, error=SearchError)
    if 0 < value < 1:
        return min(max(math.floor(value * steps + 0.5), lowest), steps - 1)
    if value != int(value):
        raise SearchError(f"{what} {value:g} is neither a whole step nor a fraction between 0 "
                          "and 1 of the schedule")
    if not lowest <= value <= steps - 1:
        raise SearchError(f"{what} {value:g} must lie in the schedule's steps {lowest}..{steps - 1} "
                          "(or be a fraction between 0 and 1 of it)")
    return int(value)


def resolve_steps(what: str, values: Sequence[Step], steps: int, lowest: int = 1) -> list[int]:
    """Each of ``values`` resolved; they must come out strictly increasing."""
    out = [resolve_step(what, v, steps, lowest) for v in values]
    if sorted(set(out)) != out:
        given = ", ".join(f"{v:g}" for v in values)
        raise SearchError(f"{what}s must be strictly increasing; {given} gives steps {out} of a "
                          f"{steps}-step schedule")
    return out
