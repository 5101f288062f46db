"""Range checks for numbers that come from users, the HTTP API or files. NaN passes every
comparison ComfyUI's min/max validation makes, so each value is checked for finiteness here."""

from __future__ import annotations

import math
from typing import Any


def finite(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = False, integer: bool = False, error: type[Exception] = ValueError) -> float:
    """``value`` as a float (an int when ``integer``) if it is a finite number in the range
    [lo, hi] ((lo, hi] when ``lo_open``); otherwise ``error`` with a message naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise error(f"{name} must be a finite number, got {value!r}")
    if integer and value != int(value):
        raise error(f"{name} must be a whole number, got {value!r}")
    low_bad = lo is not None and (value <= lo if lo_open else value < lo)
    if low_bad or (hi is not None and value > hi):
        low = "" if lo is None else f"{'(' if lo_open else '['}{lo:g}, "
        high = "inf)" if hi is None else f"{hi:g}]"
        raise error(f"{name} must lie in {low or '(-inf, '}{high}, got {value!r}")
    return int(value) if integer else float(value)
