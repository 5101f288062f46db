"""The ToyAV attribute vocabulary and its prompt language: the one source of truth shared by the
generator (which renders the attributes) and the toy verifiers (which read them back)."""

from __future__ import annotations

import random
import re
from itertools import product

COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow")
SHAPES: tuple[str, ...] = ("ball", "cube", "pyramid")
SOUNDS: tuple[str, ...] = ("bell", "drum", "whistle")
ATTRIBUTES: dict[str, tuple[str, ...]] = {"color": COLORS, "shape": SHAPES, "sound": SOUNDS}

PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.15, 0.15),
    "green": (0.15, 0.85, 0.20),
    "blue": (0.20, 0.35, 0.95),
    "yellow": (0.95, 0.85, 0.15),
}
"""RGB in 0..1 of each color, chosen to be far apart from each other and from the dark
background, also in grayscale (what optical flow sees)."""

FILL_RATIO: dict[str, float] = {"ball": 0.785, "cube": 1.0, "pyramid": 0.5}
"""Area of each shape over the area of its bounding box (disc, square, upright triangle)."""

_SYNONYMS: dict[str, str] = {"sphere": "ball", "circle": "ball", "box": "cube", "square": "cube",
                             "block": "cube", "triangle": "pyramid"}
_ALL: dict[str, str] = {v: a for a, values in ATTRIBUTES.items() for v in values}


def compose_prompt(color: str | None, shape: str | None, sound: str | None) -> str:
    """The canonical prompt for these attributes; ``None`` leaves an attribute unconstrained."""
    for value, (attribute, values) in zip((color, shape, sound), ATTRIBUTES.items()):
        if value is not None and value not in values:
            raise ValueError(f"unknown {attribute} {value!r}; expected one of {', '.join(values)}")
    if color is None and shape is None and sound is None:
        raise ValueError("a prompt needs at least one attribute")
    thing = " ".join(v for v in (color, shape or "object") if v)
    text = f"a {thing} bouncing"
    return f"{text}, {sound} sound" if sound else text


def parse_prompt(text: str) -> dict[str, str]:
    """The attributes a prompt names, e.g. {"color": "red", "shape": "ball"}; attributes it does
    not mention are absent (unconstrained). Raises ValueError when it names none, or names two
    values of one attribute."""
    found: dict[str, str] = {}
    for word in re.findall(r"[a-z]+", text.lower()):
        if word not in _ALL and word.endswith("s"):  # plurals: "balls", "drums"
            word = word[:-1]
        word = _SYNONYMS.get(word, word)
        attribute = _ALL.get(word)
        if attribute is None:
            continue
        if found.get(attribute, word) != word:
            raise ValueError(f"the prompt {text!r} names two {attribute}s: "
                             f"{found[attribute]} and {word}")
        found[attribute] = word
    if not found:
        raise ValueError(f"the prompt {text!r} names no ToyAV attribute; use a color "
                         f"({', '.join(COLORS)}), a shape ({', '.join(SHAPES)}) or a sound "
                         f"({', '.join(SOUNDS)})")
    return found


def prompt_set(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct fully specified prompts, the same for the same seed (for benchmarks)."""
    combos = list(product(COLORS, SHAPES, SOUNDS))
    if not 1 <= n <= len(combos):
        raise ValueError(f"n must be between 1 and {len(combos)}, got {n}")
    random.Random(seed).shuffle(combos)
    return [compose_prompt(*c) for c in combos[:n]]

