"""VQAScore on Qwen2-VL: the probability that the model answers "Yes" when asked whether the
clip shows the prompt (t2v_metrics' ``qwen2vl_model.py`` rule, without installing t2v_metrics,
whose pins would replace ComfyUI's torch).

The clip goes in as one video (frames sampled at 8 fps, at most 360 x 420 pixels each, as
t2v_metrics passes a video file), the question is ``Does this image show "{prompt}"?`` in
Qwen2-VL's chat, and the score is the softmax probability of the first token of "Yes" in the
logits of the first generated token. Qwen2-VL's own 3-D M-RoPE positions are used, as stock
transformers computes them. (The question is t2v_metrics' Qwen2-VL default of its 2025
versions; its later versions ask 'Does this figure show "{}"? Please answer Yes or No.', which
``VQAScore(question=...)`` takes.)

Models that work: the Qwen2-VL family in the hub's format (``Qwen/Qwen2-VL-2B-Instruct``,
``-7B-Instruct``, ``-72B-Instruct``: config.json with model_type "qwen2_vl", safetensors,
tokenizer files). Qwen2.5-VL is not supported: it is another model class whose M-RoPE scales
time by the sampling fps. CLIP-FlanT5 (the paper's VQAScore model, ``zhiqiulin/clip-flant5-xxl``)
is not supported: it is t2v_metrics' own LLaVA-style model (a T5 encoder-decoder fed CLIP
features through a projector, scoring frames one by one), which no transformers class loads;
supporting it means reimplementing that model, and at 11B it costs about 100x VideoReward.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration

from ..core.batch import AVBatch
from . import qwen2vl as Q

QUESTION = 'Does this image show "{}"?'
ANSWER = "Yes"
FPS, MAX_PIXELS = 8.0, 360 * 420
PUBLISHED = "https://huggingface.co/Qwen/Qwen2-VL-2B-Instruct (or -7B-Instruct)"


@dataclass(eq=False)
class VQAScoreModel:
    """A loaded Qwen2-VL, its tokenizer, a fingerprint of its weight files, the id of "Yes"."""

    network: Qwen2VLForConditionalGeneration
    tokenizer: Any
    fingerprint: str
    yes_id: int


def load_vqascore(folder: str | Path, dtype: torch.dtype = torch.bfloat16) -> VQAScoreModel:
    """The Qwen2-VL model in ``folder`` (hub layout), on the CPU in ``dtype``."""
    folder = Path(folder)
    config = folder / "config.json"
    weights = sorted(folder.glob("*.safetensors"))
    found = {"config.json": config.is_file(), "*.safetensors": bool(weights),
             "tokenizer.json": (folder / "tokenizer.json").is_file(),
             "tokenizer_config.json": (folder / "tokenizer_config.json").is_file()}
    missing = [name for name, there in found.items() if not there]
    if missing:
        raise Q.CheckpointError(f"{', '.join(missing)} not found in the VQAScore folder {folder}: it "
                                f"should hold a Qwen2-VL model as on the hub, e.g. {PUBLISHED}")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type != "qwen2_vl":
        raise Q.CheckpointError(f"{config} is a {model_type!r} model; VQAScore supports the Qwen2-VL "
                                "family (model_type 'qwen2_vl') only")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        network = Qwen2VLForConditionalGeneration.from_pretrained(folder, dtype=dtype,
                                                                  local_files_only=True)
    except Exception as e:
        raise Q.CheckpointError(f"cannot load the Qwen2-VL model in {folder}: {e}") from e
    if Q.token_id(tokenizer, Q.VIDEO_TOKEN) != network.config.video_token_id:
        raise Q.CheckpointError(f"the tokenizer and config.json in {folder} disagree on the id of "
                                f"{Q.VIDEO_TOKEN}")
    network.eval().requires_grad_(False)
    yes = tokenizer.encode(ANSWER, add_special_tokens=False)[0]
    return VQAScoreModel(network, tokenizer, Q.files_fingerprint(weights), yes)


class VQAScore:
    """P("Yes") per clip, in 0..1; all clips in one padded pass, on the model's device and dtype.
    A single prompt serves every clip."""

    def __init__(self, model: VQAScoreModel, name: str = "vqascore", question: str = QUESTION,
                 fps: float = FPS, max_pixels: int = MAX_PIXELS) -> None:
        if question.count("{}") != 1:
            raise ValueError(f"the question needs one {{}} for the prompt, got {question!r}")
        self.model, self.name, self.question = model, name, question
        self.fps, self.max_pixels = fps, max_pixels
        self.identity = (f"{name}:vqascore[{question!r}]({model.fingerprint}, {fps:g} fps, "
                         f"{max_pixels} px)")

    def models(self) -> list[torch.nn.Module]:
        return [self.model.network]

    @torch.no_grad()
    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        m = self.model
        texts = [self.question.format(p) for p in Q.prompts_for(len(batch), prompts, m.tokenizer)]
        inputs = Q.chats(m.tokenizer, texts, Q.videos(batch.video, batch.fps, self.fps, self.max_pixels))
        hidden = Q.hidden_states(m.network.model, inputs, flat_positions=False)
        last = inputs.attention_mask.sum(1).to(hidden.device) - 1
        logits = m.network.lm_head(hidden[torch.arange(len(last), device=hidden.device), last])
        return logits.float().softmax(-1)[:, m.yes_id].cpu()
