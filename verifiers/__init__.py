"""Reward models (verifiers) over audio-video batches. Pure torch; no ComfyUI imports."""

from ..core.batch import AVBatch, MediaError
from ..core.verifier import Verifier

__all__ = ["AVBatch", "MediaError", "Verifier"]
