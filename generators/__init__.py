"""Generators that need no ComfyUI: the embedded ToyAV world."""

from .toyav import ToyAVGenerator

__all__ = ["ToyAVGenerator"]
