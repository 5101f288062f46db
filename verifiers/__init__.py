"""Reward models (verifiers) over audio-video batches. Pure torch; no ComfyUI imports."""

from ..core.batch import AVBatch, MediaError
from ..core.verifier import Verifier
from .imagebind import AVHScore, ImageBindScore, JavisScore

__all__ = ["AVBatch", "AVHScore", "ImageBindScore", "JavisScore", "MediaError", "Verifier"]
