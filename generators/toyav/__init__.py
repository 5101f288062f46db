"""ToyAV: a procedural joint audio-video world (one object bouncing to a sound) with an exact
iterative sampler, small enough to run searches on a CPU in seconds."""

from .generator import ToyAVGenerator
from .latent import DIM, split
from .render import Clip
from .vocabulary import COLORS, PALETTE, SHAPES, SOUNDS, compose_prompt, parse_prompt, prompt_set

__all__ = ["COLORS", "DIM", "PALETTE", "SHAPES", "SOUNDS", "Clip", "ToyAVGenerator", "compose_prompt",
           "parse_prompt", "prompt_set", "split"]
