"""The VideoReward verifier: VQ, MQ and TA ratings of each clip from one forward pass,
normalised by the checkpoint's statistics, and their sum Overall."""

from __future__ import annotations

from typing import Sequence

import torch

from ...core.batch import AVBatch
from .model import VideoRewardModel

OUTPUTS = ("vq", "mq", "ta", "overall")
"""Visual quality, motion quality, text alignment (the paper's "VideoReward-TA"), their sum."""


def normalised(raw: torch.Tensor, stats: dict[str, tuple[float, float]]) -> dict[str, torch.Tensor]:
    """{output: Tensor[N]} from raw [N, 3] (VQ, MQ, TA) ratings: each (raw - mean) / std, and
    Overall the sum of the three normalised ones, as VideoAlign's inference does."""
    out = {}
    for i, key in enumerate(("VQ", "MQ", "TA")):
        mean, std = stats[key]
        out[key.lower()] = (raw[:, i] - mean) / std
    out["overall"] = out["vq"] + out["mq"] + out["ta"]
    return out


class VideoReward:
    """Rewards ``<name>_<output>`` for the chosen ``outputs`` (default the text alignment
    alone, the paper's verifier), all from one pass. Runs on the device and in the dtype the
    model is on; a single prompt serves every clip."""

    def __init__(self, model: VideoRewardModel, outputs: Sequence[str] = ("ta",),
                 name: str = "videoreward") -> None:
        outputs = tuple(outputs)
        unknown = [o for o in outputs if o not in OUTPUTS]
        if not outputs or unknown or len(set(outputs)) != len(outputs):
            raise ValueError(f"outputs must be distinct names among {OUTPUTS}, got {outputs}")
        self.model, self.outputs, self.name = model, outputs, name
        self.rewards = tuple(f"{name}_{o}" for o in outputs)
        s = model.settings
        self.identity = (f"{name}:videoreward[{','.join(outputs)}]({model.fingerprint}, "
                         f"{s.fps:g} fps, {s.max_pixels} px)")

    def models(self) -> list[torch.nn.Module]:
        return [self.model.network]

    def __call__(self, batch: AVBatch, prompts: list[str]) -> dict[str, torch.Tensor]:
        values = normalised(self.model.raw_rewards(batch, prompts), self.model.settings.stats)
        return {reward: values[o] for reward, o in zip(self.rewards, self.outputs)}
