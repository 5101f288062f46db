"""Parsing the short text widgets users type (weights, statistics, integer lists)."""

from __future__ import annotations

import math


def _number(text: str, what: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got '{text.strip()}'")
    return value


def parse_weights(text: str) -> dict[str, float] | list[float] | None:
    """'' -> None (equal weights); '0.2, 0.8' -> a list in the verifier set's order;
    'videoreward_ta=0.2, javisscore=0.8' -> by reward name."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        return None
    try:
        if all("=" in p for p in parts):
            pairs = [(k.strip(), _number(v, f"the weight of '{k.strip()}'"))
                     for k, v in (p.split("=", 1) for p in parts)]
            names = [k for k, _ in pairs]
            if len(set(names)) != len(names):
                raise ValueError("names a verifier twice")
            return dict(pairs)
        if any("=" in p for p in parts):
            raise ValueError("mixes named and unnamed weights")
        return [_number(p, "a weight") for p in parts]
    except ValueError as e:
        raise ValueError(f"cannot read weights '{text}' ({e}): write 'name=0.2, other=0.8' or "
                         "'0.2, 0.8' in the verifier set's order") from None


def parse_stats(text: str) -> dict[str, tuple[float, float]] | None:
    """'videoreward_ta=-0.4779:0.8785, javisscore=0.1613:0.1033' -> {name: (mu, sd)}."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return None
    out = {}
    for p in parts:
        try:
            name, rest = p.split("=", 1)
            mu, sd = rest.split(":", 1)
            out[name.strip()] = (_number(mu, "a mean"), _number(sd, "a deviation"))
        except ValueError as e:
            raise ValueError(f"cannot read statistics '{p}' ({e}): write 'name=mean:std'") from None
    return out


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """'0, 10' -> (0, 10)."""
    try:
        return tuple(int(p) for p in text.replace(";", ",").split(",") if p.strip())
    except ValueError:
        raise ValueError(f"{what} must be whole numbers separated by commas, got '{text}'") from None


def _step(text: str, what: str) -> int | float:
    """'6' -> 6 (a step); '0.2' -> 0.2 (a fraction of the schedule, resolved by the search)."""
    text = text.strip()
    return _number(text, what) if any(c in text for c in ".eE") else int(text)


def parse_steps(text: str, what: str) -> tuple[int | float, ...]:
    """'0, 10' -> (0, 10); '0, 0.33' -> (0, 0.33): steps, or fractions of the schedule."""
    try:
        return tuple(_step(p, what) for p in text.replace(";", ",").split(",") if p.strip())
    except ValueError:
        raise ValueError(f"{what} must be steps (whole numbers) or fractions of the schedule "
                         f"(between 0 and 1) separated by commas, got '{text}'") from None


def parse_schedule(text: str) -> tuple[tuple[int | float, float], ...]:
    """'6:0.5, 12:0.5' -> ((6, 0.5), (12, 0.5)): at step 6 keep half, at step 12 half again;
    '0.2:0.5' prunes at a fifth of the schedule; '' -> () (no pruning)."""
    out = []
    for p in (p.strip() for p in text.replace(";", ",").split(",")):
        if not p:
            continue
        try:
            step, keep = p.split(":", 1)
            out.append((_step(step, "a pruning step"), _number(keep, "a kept fraction")))
        except ValueError as e:
            raise ValueError(f"cannot read the pruning schedule entry '{p}' ({e}): write "
                             "'step:fraction kept' with the step a whole step or a fraction of "
                             "the schedule, e.g. '0.2:0.5, 0.33:0.4' or '6:0.5, 12:0.5'") from None
    return tuple(out)
