"""Parsing the short text widgets users type (weights, statistics)."""

from __future__ import annotations


def parse_weights(text: str) -> dict[str, float] | list[float] | None:
    """'' -> None (equal weights); '0.2, 0.8' -> a list in verifier order;
    'videoreward_ta=0.2, javisscore=0.8' -> by verifier name."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        return None
    try:
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        if any("=" in p for p in parts):
            raise ValueError("mixes named and unnamed weights")
        return [float(p) for p in parts]
    except ValueError as e:
        raise ValueError(f"cannot read weights '{text}' ({e}): write '0.2, 0.8' in verifier "
                         "order or 'name=0.2, other=0.8'") from None


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
            out[name.strip()] = (float(mu), float(sd))
        except ValueError:
            raise ValueError(f"cannot read statistics '{p}': write 'name=mean:std'") from None
    return out
