"""MMDisCo in plain torch: VideoCrafter2 (text-to-video) and Auffusion (text-to-audio), frozen,
kept in sync by a small discriminator whose logit gradient steers both at every DDPM step."""

from .discriminator import DiscriminatorSizes, MultimodalDiscriminator, load_discriminator
from .generator import MMDisCoGenerator
from .sampler import EpsModel, JointGuidance, JointSampler

__all__ = ["DiscriminatorSizes", "EpsModel", "JointGuidance", "JointSampler", "MMDisCoGenerator",
           "MultimodalDiscriminator", "load_discriminator"]
