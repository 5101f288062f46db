"""VQAScore on a tiny random Qwen2-VL in the hub's layout, loaded by the real loader: P("Yes")
recomputed here from a plain transformers forward pass, the question and frames it is asked
with, batching, and the errors for missing or unsupported model folders."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from comfyui_avits.core.batch import AVBatch
from comfyui_avits.core.verifier import score
from comfyui_avits.verifiers import qwen2vl as Q
from comfyui_avits.verifiers.vqascore import VQAScore, load_vqascore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_videoreward  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_videoreward.write_vqascore(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def model(folder):
    return load_vqascore(folder, dtype=torch.float32)


def clips(n: int = 1, frames: int = 12, fps: float = 12.0, seed: int = 0) -> AVBatch:
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(n, frames, 48, 64, 3, generator=g)
    return AVBatch(video, fps, torch.zeros(n, 1, round(frames / fps * 16000)), 16000)


def test_weights_come_from_the_file_under_the_old_names(folder, model):
    stored = load_file(folder / "model.safetensors")
    assert "model.layers.0.self_attn.q_proj.weight" in stored and "visual.merger.mlp.0.weight" in stored
    mine = model.network.state_dict()
    torch.testing.assert_close(mine["model.language_model.layers.0.self_attn.q_proj.weight"],
                               stored["model.layers.0.self_attn.q_proj.weight"].float())
    torch.testing.assert_close(mine["model.visual.merger.mlp.0.weight"],
                               stored["visual.merger.mlp.0.weight"].float())
    assert model.network.lm_head.weight.data_ptr() == \
        model.network.model.language_model.embed_tokens.weight.data_ptr()


def test_score_is_the_probability_of_yes_after_the_question(model):
    batch, prompt = clips(seed=1), "a dog barking on a beach"
    got = VQAScore(model)(batch, [prompt])
    clipsin = Q.videos(batch.video, batch.fps, 8.0, 360 * 420)
    inputs = Q.chats(model.tokenizer, [f'Does this image show "{prompt}"?'], clipsin)
    text = model.tokenizer.decode(inputs.input_ids[0])
    assert text.endswith('<|vision_end|>Does this image show "a dog barking on a beach"?<|im_end|>\n'
                         "<|im_start|>assistant\n")
    ids = inputs.input_ids
    types = (ids == model.network.config.video_token_id).int() * 2
    with torch.no_grad():
        logits = model.network(input_ids=ids, attention_mask=inputs.attention_mask,
                               pixel_values_videos=clipsin.pixel_values,
                               video_grid_thw=clipsin.grid_thw, mm_token_type_ids=types).logits
    yes = model.tokenizer.encode("Yes", add_special_tokens=False)[0]
    torch.testing.assert_close(got, logits[:, -1].softmax(-1)[:, yes], atol=1e-6, rtol=1e-5)
    assert got.shape == (1,) and 0 < got.item() < 1


def test_frames_are_sampled_at_8_fps(model):
    clipsin = Q.videos(clips(frames=24, fps=12.0).video, 12.0, 8.0, 360 * 420)
    assert clipsin.grid_thw[0, 0].item() == Q.frame_count(24, 12.0, 8.0) // 2 == 8


def test_batched_scores_equal_one_at_a_time(model):
    batch = clips(n=3, seed=2)
    prompts = ["a dog", "a cat playing piano in a small room, warm light", "a red car"]
    vqa = VQAScore(model)
    together = vqa(batch, prompts)
    alone = torch.cat([vqa(batch.clip(i), [p]) for i, p in enumerate(prompts)])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=1e-4)
    assert len(set(together.tolist())) == 3


def test_verifier_contract(model):
    vqa = VQAScore(model)
    assert vqa.name == "vqascore" and vqa.models() == [model.network]
    assert model.fingerprint in vqa.identity and "8 fps" in vqa.identity
    other = VQAScore(model, question='Does this figure show "{}"? Please answer Yes or No.')
    assert other.identity != vqa.identity
    rewards = score([vqa], clips(n=2), ["a dog"])
    assert set(rewards) == {"vqascore"} and rewards["vqascore"].shape == (2,)
    with pytest.raises(ValueError, match="question"):
        VQAScore(model, question="Does this show the prompt?")


def test_missing_files_name_what_is_expected(folder, tmp_path):
    with pytest.raises(Q.CheckpointError, match="config.json.*Qwen/Qwen2-VL-2B-Instruct") as e:
        load_vqascore(tmp_path)
    assert str(tmp_path) in str(e.value)
    root = Path(shutil.copytree(folder, tmp_path / "copy"))
    (root / "model.safetensors").unlink()
    with pytest.raises(Q.CheckpointError, match=r"\*\.safetensors not found"):
        load_vqascore(root)


def test_other_model_families_are_refused(folder, tmp_path):
    root = Path(shutil.copytree(folder, tmp_path / "copy"))
    config = json.loads((root / "config.json").read_text())
    (root / "config.json").write_text(json.dumps(dict(config, model_type="qwen2_5_vl")))
    with pytest.raises(Q.CheckpointError, match="'qwen2_5_vl'.*Qwen2-VL family"):
        load_vqascore(root)


def test_bad_input_is_refused(model):
    with pytest.raises(ValueError, match="at least 2 frames"):
        VQAScore(model)(clips(frames=1, fps=12.0), ["a dog"])
    with pytest.raises(ValueError, match="one prompt or one per clip"):
        VQAScore(model)(clips(n=2), ["a", "b", "c"])
