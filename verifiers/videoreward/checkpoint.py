"""Reading the published VideoReward checkpoint (HF KwaiVGI/VideoReward): its files, its
settings, and its state dict turned into the weights of ``Qwen2VLReward``.

The folder holds ``model_config.json`` and ``checkpoint-<N>/`` (the highest N is used) with
``model.pth``, the strict state dict of the whole PEFT model (keys ``base_model.model.``...,
LoRA unmerged, transformers 4.45 module names), and ``tokenizer/``. The base Qwen2-VL
config is not part of it: a Qwen2-VL ``config.json`` in the folder is used when present,
otherwise the architecture is read off the weights' shapes (``infer_config``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Qwen2VLConfig

from ...core.checkpoints import CheckpointError

PUBLISHED = "https://huggingface.co/KwaiVGI/VideoReward (now KlingTeam/VideoReward)"
PUBLISHED_STATS = {"VQ": (3.6757, 2.2476), "MQ": (1.1646, 1.3811), "TA": (2.8105, 2.5121)}
"""(mean, std) of each raw rating, the published checkpoint's inference_config."""

# Qwen2-VL-2B-Instruct's conventions, for what the weights' shapes do not tell.
TEXT_HEAD_DIM, VISION_HEAD_DIM = 128, 80
TEXT_DEFAULTS = dict(rms_norm_eps=1e-6, rope_theta=1e6, max_position_embeddings=32768,
                     hidden_act="silu", use_sliding_window=False,
                     rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]})


@dataclass(frozen=True)
class Files:
    """Where each part of a VideoReward checkpoint lies."""

    folder: Path
    model_config: Path
    weights: Path
    tokenizer: Path
    qwen_config: Path | None


def locate(folder: str | Path) -> Files:
    """The files of the checkpoint in ``folder``, from its highest ``checkpoint-<N>``."""
    folder = Path(folder)
    model_config = folder / "model_config.json"
    steps = sorted((int(m.group(1)), p) for p in folder.glob("checkpoint-*")
                   if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name)))
    if not model_config.is_file() or not steps:
        missing = "model_config.json" if not model_config.is_file() else "checkpoint-<N>/"
        raise CheckpointError(f"{missing} not found in the VideoReward folder {folder}: it should "
                              f"hold model_config.json and checkpoint-<N>/model.pth and "
                              f"checkpoint-<N>/tokenizer/, as published at {PUBLISHED}")
    step_dir = steps[-1][1]
    for name in ("model.pth", "tokenizer"):
        if not (step_dir / name).exists():
            raise CheckpointError(f"{name} not found in {step_dir}: a VideoReward checkpoint "
                                  f"folder holds model.pth and tokenizer/ as published at {PUBLISHED}")
    qwen = folder / "config.json"
    return Files(folder, model_config, step_dir / "model.pth", step_dir / "tokenizer",
                 qwen if qwen.is_file() else None)


@dataclass(frozen=True)
class Settings:
    """What model_config.json fixes for scoring: the frame sampling, the LoRA scale (None: the
    checkpoint has no LoRA), and the (mean, std) that normalise each raw rating."""

    fps: float
    max_pixels: int
    lora_scale: float | None
    lora_rank: int | None
    stats: dict[str, tuple[float, float]]


def read_settings(path: Path) -> Settings:
    """The scoring settings in ``model_config.json``; a checkpoint trained another way than the
    published one (another template, dimensions, head or frame rule) is refused."""
    try:
        cfg = json.loads(path.read_text())
        data, model, lora = cfg["data_config"], cfg["model_config"], cfg["peft_lora_config"]
        expected = {
            "data_config.prompt_template_type": (data["prompt_template_type"], "detailed_special"),
            "data_config.eval_dim": (list(data["eval_dim"]), ["VQ", "MQ", "TA"]),
            "data_config.sample_type": (data.get("sample_type", "uniform"), "uniform"),
            "data_config.num_frames": (data.get("num_frames"), None),
            "model_config.use_special_tokens": (model["use_special_tokens"], True),
            "model_config.output_dim": (model["output_dim"], 1),
        }
        fps, max_pixels = float(data["fps"]), int(data["max_frame_pixels"])
        inference = cfg.get("inference_config") or {}
        stats = {k: (float(inference.get(f"{k}_mean", m)), float(inference.get(f"{k}_std", s)))
                 for k, (m, s) in PUBLISHED_STATS.items()}
        enabled = bool(lora.get("lora_enable", True))
        rank, alpha = (int(lora["lora_r"]), float(lora["lora_alpha"])) if enabled else (None, None)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is not a VideoReward model_config.json ({type(e).__name__}: "
                              f"{e}); the published one is at {PUBLISHED}") from e
    for field, (value, want) in expected.items():
        if value != want:
            raise CheckpointError(f"{path}: {field} is {value!r}; only the published VideoReward "
                                  f"setting {want!r} is supported")
    scale = None
    if enabled:
        scale = alpha / (rank ** 0.5 if lora.get("use_rslora") else rank)
    return Settings(fps, max_pixels, scale, rank, stats)


def merge_lora(state: dict[str, torch.Tensor], scale: float, rank: int | None,
               dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A PEFT state dict with each LoRA folded into its layer, W + scale * B @ A (computed in
    float32, stored in ``dtype``), under the layer's own names (``x.weight``, not
    ``x.base_layer.weight``); the LoRA keys are gone."""
    out: dict[str, torch.Tensor] = {}
    lora = {}
    for key, value in state.items():
        m = re.fullmatch(r"(.+)\.lora_([AB])(?:\.[^.]+)?\.weight", key)
        if m:
            lora.setdefault(m.group(1), {})[m.group(2)] = (key, value)
        else:
            out[key.replace(".base_layer.", ".")] = value
    for layer, parts in lora.items():
        if set(parts) != {"A", "B"} or f"{layer}.weight" not in out:
            found = sorted(k for k, _ in parts.values())
            raise CheckpointError(f"incomplete LoRA for {layer}: found {found}")
        (a_key, a), (_, b) = parts["A"], parts["B"]
        if rank is not None and a.shape[0] != rank:
            raise CheckpointError(f"'{a_key}' has rank {a.shape[0]}, model_config.json says "
                                  f"lora_r {rank}")
        w = out[f"{layer}.weight"]
        if b.shape[1] != a.shape[0]:
            raise CheckpointError(f"'{a_key}' {tuple(a.shape)} and its lora_B {tuple(b.shape)} "
                                  "differ in rank")
        if (b.shape[0], a.shape[1]) != tuple(w.shape):
            base = next(k for k in (f"{layer}.base_layer.weight", f"{layer}.weight") if k in state)
            raise CheckpointError(f"'{base}' has shape {tuple(w.shape)}, its LoRA '{a_key}' needs "
                                  f"{(b.shape[0], a.shape[1])}")
        out[f"{layer}.weight"] = (w.float() + scale * (b.float() @ a.float())).to(dtype)
    return out


def rename(key: str) -> str | None:
    """A checkpoint key as a ``Qwen2VLReward`` key, from transformers 4.45's names or the new
    ones: ``model.`` -> ``model.language_model.``, ``visual.`` -> ``model.visual.``. None for
    ``lm_head`` (the reward model never predicts tokens)."""
    key = key.removeprefix("base_model.model.")
    if key.startswith("lm_head."):
        return None
    if key.startswith("visual."):
        return "model." + key
    if key.startswith("model.") and not key.startswith(("model.language_model.", "model.visual.")):
        return "model.language_model." + key.removeprefix("model.")
    return key


def convert(state: dict[str, torch.Tensor], settings: Settings,
            dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The weights for ``Qwen2VLReward`` (LoRA merged, keys renamed), and for each new key the
    key it had in the file, for error messages."""
    has_lora = any(".lora_A" in k for k in state)
    if has_lora != (settings.lora_scale is not None):
        raise CheckpointError("the weights and model_config.json disagree on whether there is a LoRA")
    base = {k.replace(".base_layer.", "."): k for k in state}
    if has_lora:
        state = merge_lora(state, settings.lora_scale, settings.lora_rank, dtype)
    out, origin = {}, {}
    for key, value in state.items():
        new = rename(key)
        if new is not None:
            out[new], origin[new] = value, base.get(key, key)
    return out, origin


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    found = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def infer_config(state: dict[str, torch.Tensor]) -> Qwen2VLConfig:
    """The Qwen2-VL architecture of converted weights, read off their shapes: sizes, layer and
    block counts, patch sizes and the merge factor. What shapes cannot tell follows
    Qwen2-VL-2B-Instruct: attention heads of 128 (text) and 80 (vision) channels, RMSNorm eps
    1e-6, rope theta 1e6 with M-RoPE sections [16, 24, 24], SiLU MLPs in the text model and
    QuickGELU in the vision tower. The 2B's own weights give exactly its config.json (with the
    vocabulary resized to 151660 for the reward tokens)."""
    t, v = "model.language_model.", "model.visual."
    try:
        vocab, hidden = state[f"{t}embed_tokens.weight"].shape
        embed, channels, temporal, patch, _ = state[f"{v}patch_embed.proj.weight"].shape
        merged_in = state[f"{v}merger.mlp.0.weight"].shape[1]
        text = dict(
            TEXT_DEFAULTS, vocab_size=vocab, hidden_size=hidden, bos_token_id=None, eos_token_id=None,
            num_hidden_layers=_count(state, re.escape(t) + r"layers\.(\d+)\."),
            num_attention_heads=state[f"{t}layers.0.self_attn.q_proj.weight"].shape[0] // TEXT_HEAD_DIM,
            num_key_value_heads=state[f"{t}layers.0.self_attn.k_proj.weight"].shape[0] // TEXT_HEAD_DIM,
            intermediate_size=state[f"{t}layers.0.mlp.gate_proj.weight"].shape[0])
        vision = dict(
            depth=_count(state, re.escape(v) + r"blocks\.(\d+)\."), embed_dim=embed,
            num_heads=embed // VISION_HEAD_DIM, in_channels=channels, patch_size=patch,
            temporal_patch_size=temporal, spatial_merge_size=round((merged_in / embed) ** 0.5),
            mlp_ratio=state[f"{v}blocks.0.mlp.fc1.weight"].shape[0] // embed,
            hidden_size=state[f"{v}merger.mlp.2.weight"].shape[0])
    except KeyError as e:
        raise CheckpointError(f"the weights have no {e.args[0]!r}: not a Qwen2-VL VideoReward "
                              "checkpoint") from e
    return Qwen2VLConfig(text_config=text, vision_config=vision)
