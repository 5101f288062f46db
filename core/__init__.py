"""The ground floor: the media type, the generator and verifier protocols, and the checks every
layer shares. Imports nothing else of the pack (and never ComfyUI)."""

from .batch import AVBatch, MediaError
from .generator import Generator, HasOracle, State, StepCallback
from .verifier import Verifier

__all__ = ["AVBatch", "Generator", "HasOracle", "MediaError", "State", "StepCallback", "Verifier"]
