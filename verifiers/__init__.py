"""Reward models (verifiers) over audio-video batches. Pure torch; no ComfyUI imports."""

from .base import Verifier
from .batch import AVBatch, MediaError

__all__ = ["AVBatch", "MediaError", "Verifier"]
