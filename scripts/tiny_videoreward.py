"""Tiny random Qwen2-VL checkpoints in the published layouts, for tests and the tiny model set.

``write``: a VideoReward folder as on HF KwaiVGI/VideoReward: model_config.json and
checkpoint-11352/ holding model.pth (the whole PEFT model's state dict in bf16: transformers
4.45 module names, LoRA rank 64 / alpha 128 unmerged on the language model's projections,
rm_head, the vocabulary resized for the 3 reward tokens) and tokenizer/; plus a Qwen2-VL
config.json, which the published folder lacks (the loader then reads the shapes instead).
``write_vqascore``: a Qwen2-VL model folder as on the HF hub (config.json in the hub's flat
form, model.safetensors under the old names, tokenizer files).

The sizes keep Qwen2-VL-2B's head widths (128 text, 80 vision) so the architecture can be read
off the shapes. The tokenizer is a byte-level BPE trained on the prompts the verifiers send,
with Qwen2-VL's special tokens after it as in the real vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

QWEN_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
               "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
               "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
               "<|image_pad|>", "<|video_pad|>"]
PRETOKENIZE = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
               r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
TEXT = dict(hidden_size=256, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1)
VISION = dict(depth=2, embed_dim=160, num_heads=2, mlp_ratio=4)
LORA_RANK, LORA_ALPHA, STEP = 64, 128, 11352
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CORPUS = ["You are a helpful assistant.", 'Does this image show "a dog barking on a beach"?',
          "Yes", "No", "a cat playing piano in a small room, warm light",
          "a red car driving fast through the rain at night"]


def tokenizer(special: tuple[str, ...] = ()):
    """A byte-level BPE with Qwen2's normaliser and pre-tokeniser, trained on the VideoReward
    template and a few prompts; Qwen2-VL's special tokens follow the learned vocabulary, and
    ``special`` (added as the VideoAlign trainer adds its reward tokens) after them."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from comfyui_avits.verifiers.videoreward.prompt import TEMPLATE

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([TEMPLATE, *CORPUS], trainers.BpeTrainer(
        vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    bpe.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_TOKENS])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", padding_side="right")
    if special:
        tok.add_special_tokens({"additional_special_tokens": list(special)})
    return tok


def qwen_config(tok, vocab_size: int) -> dict:
    """A Qwen2-VL config.json in the hub's flat form (Qwen2-VL-2B-Instruct's fields)."""
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in [
        ("bos_token_id", "<|endoftext|>"), ("eos_token_id", "<|im_end|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"),
        ("vision_token_id", "<|vision_pad|>"), ("image_token_id", "<|image_pad|>"),
        ("video_token_id", "<|video_pad|>")]}
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
        "attention_dropout": 0.0, **ids, "hidden_act": "silu", **TEXT,
        "max_position_embeddings": 32768, "max_window_layers": TEXT["num_hidden_layers"],
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {**VISION, "in_chans": 3, "hidden_size": TEXT["hidden_size"],
                          "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
                          "temporal_patch_size": 2},
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "vocab_size": vocab_size,
    }


def _padded(n: int) -> int:
    return -(-n // 64) * 64  # the hub pads Qwen's vocabulary (151657 tokens, 151936 rows)


def _model(config: dict, vocab_size: int, seed: int):
    """A random Qwen2VLForConditionalGeneration of ``config`` with ``vocab_size`` rows."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(seed)
    return Qwen2VLForConditionalGeneration(Qwen2VLConfig(**dict(config, vocab_size=vocab_size))).eval()


def _old_name(key: str) -> str:
    """transformers 5 names as transformers 4.45 wrote them."""
    if key.startswith("model.language_model."):
        return "model." + key.removeprefix("model.language_model.")
    return key.removeprefix("model.") if key.startswith("model.visual.") else key


def write(models_dir: Path, folder: str = "VideoReward", seed: int = 0) -> Path:
    """``models_dir/videoreward/<folder>/`` in the published layout, plus Qwen's config.json."""
    from comfyui_avits.verifiers.videoreward.prompt import REWARD_TOKENS

    root = Path(models_dir) / "videoreward" / folder
    step = root / f"checkpoint-{STEP}"
    tok = tokenizer(REWARD_TOKENS)
    config = qwen_config(tok, _padded(len(tok) - len(REWARD_TOKENS)))
    model = _model(config, len(tok), seed)
    g = torch.Generator().manual_seed(seed + 1)
    state = {}
    for key, value in model.state_dict().items():
        name = "base_model.model." + _old_name(key)
        layer, _, kind = name.rpartition(".")
        if layer.rsplit(".", 1)[-1] in LORA_TARGETS:
            state[f"{layer}.base_layer.{kind}"] = value
            if kind == "weight":
                out_f, in_f = value.shape
                lora = {"A": (LORA_RANK, in_f), "B": (out_f, LORA_RANK)}
                for part, shape in lora.items():
                    state[f"{layer}.lora_{part}.default.weight"] = torch.randn(*shape, generator=g) * 0.02
        else:
            state[name] = value
    state["base_model.model.rm_head.weight"] = torch.randn(1, TEXT["hidden_size"], generator=g) * 0.2
    step.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.to(torch.bfloat16) for k, v in state.items()}, step / "model.pth")
    tok.save_pretrained(step / "tokenizer")
    (root / "config.json").write_text(json.dumps(config, indent=2))
    (root / "model_config.json").write_text(json.dumps(_model_config(), indent=4))
    return root


def _model_config() -> dict:
    """model_config.json with the published checkpoint's sections and settings."""
    return {
        "data_config": {"meta_data": "train.csv", "data_dir": "videos", "eval_dim": ["VQ", "MQ", "TA"],
                        "max_frame_pixels": 200704, "num_frames": None, "fps": 2.0,
                        "prompt_template_type": "detailed_special", "sample_type": "uniform",
                        "use_tied_data": True},
        "training_args": {"output_dir": "rm_output", "bf16": True, "disable_flash_attn2": False},
        "model_config": {"model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct", "model_revision": "main",
                         "output_dim": 1, "use_special_tokens": True, "freeze_vision_tower": False,
                         "freeze_llm": False, "tune_merger": True, "torch_dtype": "bfloat16",
                         "reward_token": "special", "loss_type": "btt"},
        "peft_lora_config": {"lora_enable": True, "vision_lora": False, "lora_r": LORA_RANK,
                             "lora_alpha": LORA_ALPHA, "lora_dropout": 0.05,
                             "lora_target_modules": None,
                             "lora_namespan_exclude": ["lm_head", "rm_head", "embed_tokens", "visual"],
                             "lora_modules_to_save": None, "lora_task_type": "CAUSAL_LM",
                             "use_rslora": False, "num_lora_modules": -1},
        "inference_config": {"VQ_mean": 3.6757, "VQ_std": 2.2476, "MQ_mean": 1.1646,
                             "MQ_std": 1.3811, "TA_mean": 2.8105, "TA_std": 2.5121},
    }


def write_vqascore(models_dir: Path, folder: str = "Qwen2-VL-2B-Instruct", seed: int = 0) -> Path:
    """``models_dir/vqascore/<folder>/``: a Qwen2-VL model folder as the hub has it."""
    from safetensors.torch import save_file

    root = Path(models_dir) / "vqascore" / folder
    root.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    config = qwen_config(tok, _padded(len(tok)))
    state = {_old_name(k): v.to(torch.bfloat16).contiguous()
             for k, v in _model(config, config["vocab_size"], seed).state_dict().items()
             if k != "lm_head.weight"}  # tied to the embeddings, as in Qwen2-VL-2B
    save_file(state, root / "model.safetensors", metadata={"format": "pt"})
    (root / "config.json").write_text(json.dumps(config, indent=2))
    tok.save_pretrained(root)
    return root
