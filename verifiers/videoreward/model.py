"""The VideoReward network and its loader: Qwen2-VL-2B whose language model carries a merged
LoRA (rank 64, alpha 128), three reward tokens added to its vocabulary, and a linear head read
at those tokens (VideoAlign's ``Qwen2VLRewardModelBT``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, Qwen2VLConfig
from transformers.initialization import no_init_weights
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel

from ...core.batch import AVBatch
from .. import qwen2vl as Q
from ...core.checkpoints import CheckpointError, check_keys, read_file
from .checkpoint import Files, Settings, convert, infer_config, locate, read_settings
from .prompt import REWARD_TOKENS, build_prompt


class Qwen2VLReward(nn.Module):
    """Qwen2-VL and ``rm_head``, a bias-free Linear(hidden, 1) over its last hidden states. The
    language model runs with 1-D rotary positions, as VideoReward was trained and published."""

    def __init__(self, config: Qwen2VLConfig) -> None:
        super().__init__()
        self.model = Qwen2VLModel(config)
        self.rm_head = nn.Linear(config.text_config.hidden_size, 1, bias=False)

    def forward(self, inputs: Q.Chats) -> torch.Tensor:
        """The head's output at every position: [N, L] in the model's dtype."""
        return self.rm_head(Q.hidden_states(self.model, inputs, flat_positions=True))[..., 0]


@dataclass(eq=False)
class VideoRewardModel:
    """A loaded VideoReward: the network, its tokenizer, the checkpoint's scoring settings, a
    fingerprint of its weights file, and the ids of the VQ, MQ and TA reward tokens."""

    network: Qwen2VLReward
    tokenizer: Any
    settings: Settings
    fingerprint: str
    reward_ids: tuple[int, int, int]

    def inputs(self, batch: AVBatch, prompts: list[str]) -> Q.Chats:
        """Each clip at the checkpoint's frame rate and size, in the "detailed_special" chat."""
        captions = Q.prompts_for(len(batch), prompts, self.tokenizer)
        clips = Q.videos(batch.video, batch.fps, self.settings.fps, self.settings.max_pixels)
        return Q.chats(self.tokenizer, [build_prompt(c) for c in captions], clips)

    @torch.no_grad()
    def raw_rewards(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        """[N, 3] float32 on the CPU: the head's output at the VQ, MQ and TA tokens of each clip,
        all clips in one padded forward pass."""
        inputs = self.inputs(batch, prompts)
        head = self.network(inputs).float().cpu()
        ids = inputs.input_ids
        out = []
        for token in self.reward_ids:
            where = ids == token
            if not (where.sum(1) == 1).all():
                raise ValueError(f"every chat must hold the reward token {token} once; counts "
                                 f"{where.sum(1).tolist()}")
            out.append(head[where])
        return torch.stack(out, dim=1)


def _config(files: Files, state: dict[str, torch.Tensor]) -> tuple[Qwen2VLConfig, str]:
    """The base config and where it came from: the folder's config.json, else the shapes."""
    if files.qwen_config is None:
        return infer_config(state), "the shapes of the weights"
    try:
        return Qwen2VLConfig.from_pretrained(files.folder, local_files_only=True), str(files.qwen_config)
    except Exception as e:
        raise CheckpointError(f"{files.qwen_config} is not a Qwen2-VL config.json: {e}") from e


def _check_weights(network: nn.Module, state: dict[str, torch.Tensor], origin: dict[str, str],
                   files: Files, source: str) -> None:
    """Every weight present with the shape the network built from ``source`` needs; the error
    names the file and the key as the file spells it."""
    check_keys({origin.get(k, k): v for k, v in network.state_dict().items()},
               {origin[k]: v for k, v in state.items()}, files.weights,
               f"a VideoReward model built from {source}")


def load_videoreward(folder: str | Path, dtype: torch.dtype = torch.bfloat16) -> VideoRewardModel:
    """The VideoReward checkpoint in ``folder`` (the published layout, see ``checkpoint``), on
    the CPU in ``dtype`` (bf16 as published; the caller moves it to its device). The LoRA is
    merged once here."""
    files = locate(folder)
    settings = read_settings(files.model_config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(files.tokenizer, local_files_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot load the tokenizer in {files.tokenizer}: {e}") from e
    reward_ids = tuple(Q.token_id(tokenizer, t) for t in REWARD_TOKENS)
    try:
        state, origin = convert(read_file(files.weights), settings, dtype)
    except CheckpointError as e:
        raise CheckpointError(f"{files.weights}: {e}") from e
    config, source = _config(files, state)
    embed = state.get("model.language_model.embed_tokens.weight")
    if embed is not None:  # the vocabulary was resized for the reward tokens after config.json
        config.text_config.vocab_size = embed.shape[0]
        if max(reward_ids) >= embed.shape[0]:
            raise CheckpointError(f"the tokenizer in {files.tokenizer} has reward token ids "
                                  f"{reward_ids} beyond the {embed.shape[0]} embedding rows of "
                                  f"{files.weights}")
    config.video_token_id = Q.token_id(tokenizer, Q.VIDEO_TOKEN)
    for part in (config, config.text_config, config.vision_config):
        part.dtype = dtype  # transformers builds each sub-model in its config's dtype
    with no_init_weights():  # the checkpoint overwrites every weight: skip the random init
        network = Qwen2VLReward(config)
    _check_weights(network, state, origin, files, source)
    network.load_state_dict(state, strict=True)
    # Casting the rotary frequency buffers too, as the reference's model.to(bf16) did.
    network.to(dtype).eval().requires_grad_(False)
    fingerprint = f"{files.weights.parent.name} {Q.files_fingerprint([files.weights])}"
    return VideoRewardModel(network, tokenizer, settings, fingerprint, reward_ids)
