"""Synchformer and the DeSync metric of av-benchmark: our own modules under the official
parameter names (so ``synchformer_state_dict.pth`` loads strictly), the benchmark's
preprocessing, and a verifier whose reward is -DeSync."""

from .checkpoint import FILE, PUBLISHED, architecture, load_synchformer
from .desync import GRID, OUTPUTS, SHORT_CLIPS, DeSync, desync_seconds
from .model import Architecture, Synchformer

__all__ = ["FILE", "GRID", "OUTPUTS", "PUBLISHED", "SHORT_CLIPS", "Architecture", "DeSync",
           "Synchformer", "architecture", "desync_seconds", "load_synchformer"]
