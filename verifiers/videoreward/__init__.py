"""VideoReward (VideoAlign): Qwen2-VL-2B + LoRA rating a clip's visual quality, motion quality
and text alignment. Load the published checkpoint folder with ``load_videoreward`` and wrap it
in ``VideoReward``."""

from ...core.checkpoints import CheckpointError
from .model import Qwen2VLReward, VideoRewardModel, load_videoreward
from .verifier import OUTPUTS, VideoReward

__all__ = ["OUTPUTS", "CheckpointError", "Qwen2VLReward", "VideoReward", "VideoRewardModel",
           "load_videoreward"]
