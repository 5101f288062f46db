"""ToyAV: a procedural joint audio-video world (one object bouncing to a sound) with an exact
iterative sampler, small enough to run searches on a CPU in seconds, and the text verifier
that reads its attributes off the pixels and the sound."""

from .generator import ToyAVGenerator
from .latent import DIM, split
from .render import Clip
from .text_match import ToyTextMatch
from .vocabulary import (COLORS, LEVELS, PALETTE, SHAPES, SOUNDS, WORLDS, compose_prompt, parse_prompt,
                         prompt_set)

__all__ = ["COLORS", "DIM", "LEVELS", "PALETTE", "SHAPES", "SOUNDS", "WORLDS", "Clip", "ToyAVGenerator",
           "ToyTextMatch", "compose_prompt", "parse_prompt", "prompt_set", "split"]
