"""ImageBind verifiers: one loading path (architecture read off the checkpoint), one
preprocessing (as the paper's reference implementation computes it), one embedding cache shared
by every score."""

from .checkpoint import CheckpointError, load_imagebind
from .embed import ImageBindEmbedder, embedder
from .package import ImageBindMissing
from .scores import AVHScore, ImageBindScore, JavisScore

__all__ = ["AVHScore", "CheckpointError", "ImageBindEmbedder", "ImageBindMissing", "ImageBindScore",
           "JavisScore", "embedder", "load_imagebind"]
