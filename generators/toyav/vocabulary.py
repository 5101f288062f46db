"""The ToyAV attribute vocabulary and its prompt language: the one source of truth shared by the
generator (which renders the attributes) and the toy verifiers (which read them back)."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from itertools import product

COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow")
SHAPES: tuple[str, ...] = ("ball", "cube", "pyramid")
SOUNDS: tuple[str, ...] = ("bell", "drum", "whistle")
ATTRIBUTES: dict[str, tuple[str, ...]] = {"color": COLORS, "shape": SHAPES, "sound": SOUNDS}
WORLDS: tuple[str, ...] = ("discrete", "continuous")

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

FLOOR_MARGIN = 0.06
"""The floor's height above the frame's bottom edge, over the frame height: every shape touches it
with its lowest point, whatever its size."""


@dataclass(frozen=True)
class Scale:
    """How a continuous attribute's value v in 0..1 becomes a physical quantity:
    ``at_center * ratio ** (v - center)``, so equal steps of v are equal ratios (sizes, gains and
    pitches are perceived on ratio scales). The discrete world renders every clip at ``center``."""

    center: float
    at_center: float
    ratio: float

    def physical(self, v):
        return self.at_center * self.ratio ** (v - self.center)

    def value(self, physical):
        """The inverse of ``physical`` (for the verifiers, which read physical quantities)."""
        return self.center + (physical / self.at_center).log() / math.log(self.ratio)


SCALES: dict[str, Scale] = {
    "size": Scale(0.5, 0.125, 1.8),  # half the object's extent, over min(height, width)
    "brightness": Scale(1.0, 1.0, 2.5),  # gain on the palette color: 0.4 .. 1
    "height": Scale(0.5, 0.45, 1.7),  # bounce apex above the resting position, over the height
    "pitch": Scale(0.5, 1.0, 2 ** 0.6),  # frequency (and time) factor of the timbre: +-0.3 octave
    "loudness": Scale(0.9, 0.8, 8.0),  # peak amplitude of one impact: 0.12 .. 0.99 (18 dB)
}
"""The continuous attributes. Each fits its range into the frame or the waveform: the largest
object at the highest bounce stays inside the frame, the loudest sound below full scale."""

VIDEO_CONTINUOUS: tuple[str, ...] = ("brightness", "size", "height")
AUDIO_CONTINUOUS: tuple[str, ...] = ("pitch", "loudness")

LEVELS: dict[str, dict[str, float]] = {
    "size": {"small": 0.2, "large": 0.8},
    "brightness": {"dark": 0.2, "bright": 0.8},
    "height": {"low": 0.2, "high": 0.8},
    "loudness": {"quiet": 0.2, "loud": 0.8},
    "pitch": {"low-pitched": 0.2, "high-pitched": 0.8},
}
"""The words that name a continuous attribute's target value v (0..1)."""

_SYNONYMS: dict[str, str] = {"sphere": "ball", "circle": "ball", "box": "cube", "square": "cube",
                             "block": "cube", "triangle": "pyramid", "big": "large",
                             "little": "small", "dim": "dark", "soft": "quiet", "deep": "low-pitched",
                             "shrill": "high-pitched"}
_ALL: dict[str, str] = {v: a for a, values in ATTRIBUTES.items() for v in values}
_ALL.update({word: a for a, words in LEVELS.items() for word in words})


def compose_prompt(color: str | None, shape: str | None, sound: str | None, *,
                   size: str | None = None, brightness: str | None = None,
                   height: str | None = None, loudness: str | None = None,
                   pitch: str | None = None) -> str:
    """The canonical prompt for these attributes (words of ATTRIBUTES and LEVELS), e.g. "a large
    bright red ball bouncing high, loud high-pitched bell sound"; ``None`` leaves an attribute
    unconstrained."""
    given = {"color": color, "shape": shape, "sound": sound, "size": size,
             "brightness": brightness, "height": height, "loudness": loudness, "pitch": pitch}
    for attribute, value in given.items():
        values = ATTRIBUTES.get(attribute) or tuple(LEVELS[attribute])
        if value is not None and value not in values:
            raise ValueError(f"unknown {attribute} {value!r}; expected one of {', '.join(values)}")
    if all(v is None for v in given.values()):
        raise ValueError("a prompt needs at least one attribute")
    thing = " ".join(v for v in (size, brightness, color, shape or "object") if v)
    text = f"a {thing} bouncing" + (f" {height}" if height else "")
    sound_words = [v for v in (loudness, pitch, sound) if v]
    return f"{text}, {' '.join(sound_words)} sound" if sound_words else text


def _words(text: str):
    """Vocabulary words in ``text``: hyphenated words whole when known ("high-pitched"), else
    their parts; plurals singular; synonyms mapped to the canonical word."""
    for token in re.findall(r"[a-z]+(?:-[a-z]+)*", text.lower()):
        for word in ([token] if _SYNONYMS.get(token, token) in _ALL else token.split("-")):
            if word not in _ALL and word not in _SYNONYMS and word.endswith("s"):  # "balls"
                word = word[:-1]
            yield _SYNONYMS.get(word, word)


def parse_prompt(text: str) -> dict[str, str]:
    """The attributes a prompt names, e.g. {"color": "red", "shape": "ball", "size": "large"};
    attributes it does not mention are absent (unconstrained). Raises ValueError when it names
    none, or names two values of one attribute."""
    found: dict[str, str] = {}
    for word in _words(text):
        attribute = _ALL.get(word)
        if attribute is None:
            continue
        if found.get(attribute, word) != word:
            raise ValueError(f"the prompt {text!r} names two {attribute}s: "
                             f"{found[attribute]} and {word}")
        found[attribute] = word
    if not found:
        raise ValueError(f"the prompt {text!r} names no ToyAV attribute; use a color "
                         f"({', '.join(COLORS)}), a shape ({', '.join(SHAPES)}), a sound "
                         f"({', '.join(SOUNDS)}) or a level ("
                         + ", ".join("/".join(words) for words in LEVELS.values()) + ")")
    return found


def targets(named: dict[str, str]) -> dict[str, float]:
    """The target value v (0..1) of every continuous attribute in a parsed prompt."""
    return {a: LEVELS[a][word] for a, word in named.items() if a in LEVELS}


def prompt_set(n: int, seed: int = 0, world: str = "discrete") -> list[str]:
    """``n`` distinct fully specified prompts, the same for the same seed (for benchmarks); the
    continuous world's also name a level of every continuous attribute."""
    if world not in WORLDS:
        raise ValueError(f"world must be one of {WORLDS}, got {world!r}")
    combos = list(product(COLORS, SHAPES, SOUNDS))
    if world == "continuous":
        combos = list(product(combos, product(*(tuple(LEVELS[a]) for a in LEVELS))))
    if not 1 <= n <= len(combos):
        raise ValueError(f"n must be between 1 and {len(combos)}, got {n}")
    random.Random(seed).shuffle(combos)
    if world == "discrete":
        return [compose_prompt(*c) for c in combos[:n]]
    return [compose_prompt(*c, **dict(zip(LEVELS, levels))) for c, levels in combos[:n]]


TENDENCIES: dict[str, tuple[str, dict[str, float]]] = {
    "brightness": ("color", {"red": 0.0, "green": 0.5, "blue": -1.0, "yellow": 1.0}),
    "size": ("shape", {"ball": 0.0, "cube": 0.75, "pyramid": -0.75}),
    "height": ("shape", {"ball": 1.0, "cube": -0.75, "pyramid": -0.25}),
    "pitch": ("sound", {"bell": 0.5, "drum": -1.0, "whistle": 1.0}),
    "loudness": ("sound", {"bell": 0.0, "drum": 1.0, "whistle": -0.75}),
}
"""The continuous world's data biases: each continuous attribute's prior is shifted (in units of
its value's logit, as sampler.Mixture's means) by the category that carries it (yellow things are
bright, blue ones dark; cubes large, pyramids small; balls bounce high; drums are low and loud,
whistles high and quiet). A prompt that names the category draws from that category's prior, so
"a bright blue ..." is harder than "a bright yellow ...": how far a naive sample lands from a
level word depends on the whole prompt, not only on the seed."""

SYNC_EASE: dict[str, float] = {"bell": 1.0, "drum": 0.6, "whistle": 1.8}
"""How hard each sound is to put in sync with the picture, as the exponent on the generator's
audio-video coupling c (each item couples with c ** ease: 0 and 1 stay 0 and 1): a drum's sharp
hit locks to the bounce (0.28 -> 0.47), a whistle's soft onset hardly does (0.28 -> 0.10). So
how far out of sync a naive clip drifts depends on the sound the prompt asks for (and, through
``timing``, on the rest of the prompt)."""

def timing(named: dict[str, str]) -> float:
    """Where in a phase slot (0..1) the bounces of the clips a prompt describes fall: a golden-ratio
    step per vocabulary word it names, so prompts with other words have other timing grids (a
    scene's rhythm depends on what it shows) and equal ones, however worded, the same."""
    words = [w for values in (*ATTRIBUTES.values(), *LEVELS.values()) for w in values]
    index = sum(words.index(word) + 1 for word in named.values())
    return (index * (math.sqrt(5) - 1) / 2) % 1.0


TOLERANCE = 0.1
"""How far (on the 0..1 value scale) a continuous attribute may miss its word's target and still
mostly count: its match is exp(-error^2 / (2 TOLERANCE^2)), 0.6 at one TOLERANCE off."""


def closeness(error):
    """How well a continuous attribute at ``error`` from its target fits the word, in 0..1:
    smooth, so a slightly better sample always scores slightly higher."""
    return (-(error / TOLERANCE) ** 2 / 2).exp()
