"""VideoReward on a tiny random checkpoint in the published layout, loaded by the real loader:
the byte-exact prompt, the 2 fps frame rule and Qwen2-VL's resize, patches equal to
transformers' processor, scores recomputed here from the network's raw head outputs, batching,
the LoRA merge, the architecture read off the shapes, and the errors for bad files and input."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest
import torch
import torchvision.transforms.functional as TF
from transformers import Qwen2VLConfig, Qwen2VLVideoProcessor
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel

from comfyui_avits.core.batch import AVBatch, MediaError
from comfyui_avits.core.verifier import score
from comfyui_avits.verifiers import qwen2vl as Q
from comfyui_avits.verifiers.frames import to_uint8
from comfyui_avits.verifiers.videoreward import CheckpointError, VideoReward, load_videoreward
from comfyui_avits.core.checkpoints import read_file
from comfyui_avits.verifiers.videoreward.checkpoint import infer_config, merge_lora
from comfyui_avits.verifiers.videoreward.prompt import TEMPLATE, build_prompt

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_videoreward  # noqa: E402

STATS = {"vq": (3.6757, 2.2476), "mq": (1.1646, 1.3811), "ta": (2.8105, 2.5121)}
TOKENS = {"vq": "<|VQ_reward|>", "mq": "<|MQ_reward|>", "ta": "<|TA_reward|>"}
LAYER = "base_model.model.model.layers.1.self_attn.k_proj"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_videoreward.write(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def model(folder):
    return load_videoreward(folder, dtype=torch.float32)


def clips(n: int = 1, frames: int = 24, fps: float = 24.0, size=(64, 80), seed: int = 0) -> AVBatch:
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(n, frames, *size, 3, generator=g)
    return AVBatch(video, fps, torch.zeros(n, 1, round(frames / fps * 16000)), 16000)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


# --- prompt and frames ------------------------------------------------------------------------

def test_prompt_template_is_byte_exact():
    assert len(TEMPLATE) == 3997
    assert hashlib.sha256(TEMPLATE.encode()).hexdigest() == \
        "fdb6309bac618dd0c8b1b589d3a0970a974f7856eecbb355a190b2dce54af700"
    assert "**Visual Quality:**  \n" in TEMPLATE and "acceptable.  \n" in TEMPLATE
    prompt = build_prompt("a {braced} dog")
    assert prompt.count("a {braced} dog") == 1
    assert prompt.endswith("Textual prompt - a {braced} dog\nPlease provide the ratings of Text "
                           "Alignment: <|TA_reward|>\nEND\n")


@pytest.mark.parametrize("total, fps, expected", [
    (120, 24.0, 10),   # 5 s at 24 fps: 2 fps
    (121, 24.0, 10),   # 10.08 -> 10
    (120, 30.0, 8),    # 4 s
    (250, 25.0, 20),   # 10 s
    (53, 16.0, 6),     # 6.625 -> 6
    (48, 24.0, 4),     # 2 s
    (24, 24.0, 4),     # 1 s: at least 4 frames
    (5, 2.0, 4),       # 5 frames: 4 is the even part of the clip
    (3, 24.0, 2),      # 3 frames: 2
    (2, 24.0, 2),
    (3000, 1.0, 768),  # at most 768
])
def test_frame_count_follows_the_2fps_rule(total, fps, expected):
    assert Q.frame_count(total, fps, 2.0) == expected


def test_frames_are_uniform_with_both_ends():
    assert Q.frame_indices(120, 24.0, 2.0).tolist() == [0, 13, 26, 40, 53, 66, 79, 93, 106, 119]
    assert Q.frame_indices(5, 2.0, 2.0).tolist() == [0, 1, 3, 4]


@pytest.mark.parametrize("seconds, fps", [(1.0, 24.0), (2.5, 24.0), (5.0, 24.0), (4.0, 30.0),
                                          (2.0, 8.0)])
def test_model_inputs_hold_the_sampled_frames(model, seconds, fps):
    frames = round(seconds * fps)
    inputs = model.inputs(clips(frames=frames, fps=fps), ["a dog"])
    n = Q.frame_count(frames, fps, 2.0)
    assert inputs.videos.grid_thw.tolist() == [[n // 2, 308 // 14, 364 // 14]]
    video_tokens = (inputs.input_ids == model.network.model.config.video_token_id).sum()
    assert video_tokens == n // 2 * 22 * 26 // 4


@pytest.mark.parametrize("size, max_pixels, expected", [
    ((480, 640), 200704, (364, 504)),   # above 448 * 448: scaled down, floor
    ((448, 448), 200704, (448, 448)),
    ((240, 426), 200704, (252, 420)),   # rounded to multiples of 28
    ((64, 80), 200704, (308, 364)),     # below 128 * 28 * 28: scaled up, ceil
    ((16, 16), 200704, (336, 336)),     # smaller than a patch: upscaled too
    ((448, 448), 360 * 420, (364, 364)),
])
def test_frame_size_is_qwen_smart_resize(size, max_pixels, expected):
    assert Q.frame_size(*size, max_pixels) == expected


def test_patches_equal_the_transformers_processor():
    video = clips(frames=24, size=(50, 70)).video
    ours = Q.videos(video, 24.0, 2.0, 200704)
    h, w = Q.frame_size(50, 70, 200704)
    frames = TF.resize(to_uint8(video[0, Q.frame_indices(24, 24.0, 2.0)]), [h, w],
                       interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    processor = Qwen2VLVideoProcessor(do_resize=False, do_sample_frames=False)
    ref = processor(videos=[frames], return_tensors="pt")
    assert torch.equal(ours.grid_thw, ref["video_grid_thw"])
    torch.testing.assert_close(ours.pixel_values, ref["pixel_values_videos"], atol=1e-6, rtol=0)


def test_frames_are_quantised_to_8_bits_by_truncation():
    x = torch.tensor([0.0, 0.5, 0.999, 1.0, 1.5, -0.2, float("nan")]).view(1, 1, 7, 1).expand(1, 1, 7, 3)
    assert to_uint8(x)[0, 0, 0].tolist() == [0, 127, 254, 255, 255, 0, 0]


# --- scores -----------------------------------------------------------------------------------

def direct_raw(model, batch: AVBatch, prompts: list[str], flat: bool = True) -> dict[str, torch.Tensor]:
    """The head's outputs at the reward tokens, from the network's parts called here with 1-D
    positions (arange on all three M-RoPE axes) or with transformers' own M-RoPE."""
    inputs = model.inputs(batch, prompts)
    qwen = model.network.model
    n, length = inputs.input_ids.shape
    extra = ({"position_ids": torch.arange(length).expand(3, n, length)} if flat else
             {"mm_token_type_ids": (inputs.input_ids == qwen.config.video_token_id).int() * 2})
    with torch.no_grad():
        hidden = qwen(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                      pixel_values_videos=inputs.videos.pixel_values,
                      video_grid_thw=inputs.videos.grid_thw, **extra).last_hidden_state
        head = model.network.rm_head(hidden)[..., 0]
    out = {}
    for key, token in TOKENS.items():
        where = inputs.input_ids == model.tokenizer.convert_tokens_to_ids(token)
        assert where.sum(1).tolist() == [1] * n
        out[key] = head[where]
    return out


def test_scores_are_normalised_head_outputs_at_the_reward_tokens(model):
    batch = clips(n=2, seed=1)
    prompts = ["a dog barking on a beach", "a red car driving at night"]
    got = VideoReward(model, outputs=("vq", "mq", "ta", "overall"))(batch, prompts)
    raw = direct_raw(model, batch, prompts)
    want = {k: (raw[k] - m) / s for k, (m, s) in STATS.items()}
    want["overall"] = want["vq"] + want["mq"] + want["ta"]
    for key, value in want.items():
        torch.testing.assert_close(got[f"videoreward_{key}"], value, atol=1e-5, rtol=1e-5)
    # The 1-D positions decide the numbers: transformers' M-RoPE would give others.
    mrope = direct_raw(model, batch, prompts, flat=False)
    assert (mrope["ta"] - raw["ta"]).abs().max() > 1e-3


def test_scores_depend_on_the_clip_and_the_prompt(model):
    vr = VideoReward(model, outputs=("ta",))
    a = vr(clips(seed=1), ["a dog barking on a beach"])["videoreward_ta"]
    b = vr(clips(seed=2), ["a dog barking on a beach"])["videoreward_ta"]
    c = vr(clips(seed=1), ["a red car driving at night"])["videoreward_ta"]
    assert (a - b).abs() > 1e-4 and (a - c).abs() > 1e-4


def test_batched_scores_equal_one_at_a_time(model):
    batch = clips(n=3, seed=3)
    prompts = ["a dog", "a cat playing piano in a small room, warm light", "a red car"]
    vr = VideoReward(model, outputs=("vq", "mq", "ta", "overall"))
    together = vr(batch, prompts)
    for i, prompt in enumerate(prompts):
        alone = vr(batch.clip(i), [prompt])
        for name, values in together.items():
            torch.testing.assert_close(values[i:i + 1], alone[name], atol=1e-4, rtol=1e-4)
    shared = vr(batch, ["a dog"])["videoreward_ta"]
    torch.testing.assert_close(shared, vr(batch, ["a dog"] * 3)["videoreward_ta"])


def test_verifier_contract(model):
    vr = VideoReward(model)
    assert vr.name == "videoreward" and vr.rewards == ("videoreward_ta",)
    assert vr.models() == [model.network]
    assert model.fingerprint in vr.identity and "[ta]" in vr.identity and "2 fps" in vr.identity
    assert VideoReward(model, outputs=("vq", "ta")).identity != vr.identity
    rewards = score([VideoReward(model, outputs=("vq", "overall"), name="vr")], clips(n=2), ["a dog"])
    assert set(rewards) == {"vr_vq", "vr_overall"} and rewards["vr_vq"].dtype == torch.float64
    for bad in [(), ("ta", "ta"), ("quality",)]:
        with pytest.raises(ValueError, match="outputs"):
            VideoReward(model, outputs=bad)


def test_runs_in_the_dtype_it_was_loaded_in(folder, model):
    assert {p.dtype for p in model.network.parameters()} == {torch.float32}
    half = load_videoreward(folder, dtype=torch.bfloat16)
    assert {p.dtype for p in half.network.parameters()} == {torch.bfloat16}
    batch = clips(seed=4)
    low = VideoReward(half, outputs=("overall",))(batch, ["a dog"])["videoreward_overall"]
    full = VideoReward(model, outputs=("overall",))(batch, ["a dog"])["videoreward_overall"]
    assert low.dtype == torch.float32 and (low - full).abs().max() < 0.2


# --- checkpoint -------------------------------------------------------------------------------

def test_lora_is_merged_once_at_load(folder, model):
    state = read_file(next(folder.glob("checkpoint-*")) / "model.pth")
    w0 = state[f"{LAYER}.base_layer.weight"].float()
    a = state[f"{LAYER}.lora_A.default.weight"].float()
    b = state[f"{LAYER}.lora_B.default.weight"].float()
    merged = merge_lora(state, 128 / 64, 64, torch.float32)
    assert not any("lora_" in k or "base_layer" in k for k in merged)
    x = torch.randn(5, w0.shape[1])
    lora_path = x @ w0.T + (128 / 64) * ((x @ a.T) @ b.T)
    torch.testing.assert_close(x @ merged[f"{LAYER}.weight"].T, lora_path, atol=1e-5, rtol=1e-5)
    loaded = model.network.model.language_model.layers[1].self_attn.k_proj
    torch.testing.assert_close(loaded.weight, merged[f"{LAYER}.weight"])
    torch.testing.assert_close(loaded.bias, state[f"{LAYER}.base_layer.bias"].float())
    assert (loaded.weight - w0).abs().max() > 1e-3  # the LoRA is not a no-op here


def test_architecture_read_off_the_shapes_gives_the_same_scores(folder, model, tmp_path):
    inferred = copy_of(folder, tmp_path)
    (inferred / "config.json").unlink()
    batch = clips(n=2, seed=5)
    again = load_videoreward(inferred, dtype=torch.float32)
    a = VideoReward(model, outputs=("vq", "mq", "ta"))(batch, ["a dog"])
    b = VideoReward(again, outputs=("vq", "mq", "ta"))(batch, ["a dog"])
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)


QWEN2_VL_2B = dict(  # Qwen/Qwen2-VL-2B-Instruct's config.json, architecture fields
    hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
    num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0, vocab_size=151936,
    rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
    vision_config=dict(depth=32, embed_dim=1280, mlp_ratio=4, num_heads=16, in_channels=3,
                       hidden_size=1536, patch_size=14, spatial_merge_size=2, temporal_patch_size=2))


def test_the_2b_shapes_give_the_2b_config():
    real = Qwen2VLConfig(**QWEN2_VL_2B)
    with torch.device("meta"):
        shapes = {f"model.{k}": v for k, v in Qwen2VLModel(real).state_dict().items()}
    got = infer_config(shapes)
    for field in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "rms_norm_eps", "vocab_size", "hidden_act"):
        assert getattr(got.text_config, field) == getattr(real.text_config, field), field
    assert got.text_config.rope_parameters == real.text_config.rope_parameters
    for field, value in QWEN2_VL_2B["vision_config"].items():
        assert getattr(got.vision_config, field) == value, field
    assert got.vision_config.hidden_act == real.vision_config.hidden_act


def test_the_highest_checkpoint_is_loaded(folder, model, tmp_path):
    root = copy_of(folder, tmp_path)
    (root / "checkpoint-5").mkdir()
    (root / "checkpoint-5" / "model.pth").write_bytes(b"not a checkpoint")
    assert load_videoreward(root, dtype=torch.float32).fingerprint == model.fingerprint


def rewrite(folder: Path, tmp_path: Path, edit) -> Path:
    root = copy_of(folder, tmp_path)
    pth = next(root.glob("checkpoint-*")) / "model.pth"
    state = dict(torch.load(pth, weights_only=True))
    edit(state)
    torch.save(state, pth)
    return root


@pytest.mark.parametrize("key", [f"{LAYER}.base_layer.weight",
                                 "base_model.model.visual.blocks.1.mlp.fc1.weight"])
@pytest.mark.parametrize("with_config", [True, False])
def test_a_wrong_shape_names_the_file_and_the_key(folder, tmp_path, with_config, key):
    root = rewrite(folder, tmp_path, lambda s: s.__setitem__(key, torch.zeros(64, 256)))
    if not with_config:
        (root / "config.json").unlink()
    with pytest.raises(CheckpointError, match="model.pth") as e:
        load_videoreward(root, dtype=torch.float32)
    assert key in str(e.value) and "(64, 256)" in str(e.value)


def test_missing_or_extra_weights_are_refused(folder, tmp_path):
    root = rewrite(folder, tmp_path, lambda s: s.pop("base_model.model.rm_head.weight"))
    with pytest.raises(CheckpointError, match="missing.*rm_head"):
        load_videoreward(root, dtype=torch.float32)


def test_missing_files_name_what_is_expected_and_where_to_get_it(folder, tmp_path):
    with pytest.raises(CheckpointError, match="model_config.json.*KwaiVGI/VideoReward") as e:
        load_videoreward(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)
    root = copy_of(folder, tmp_path)
    step = next(root.glob("checkpoint-*"))
    (step / "model.pth").unlink()
    with pytest.raises(CheckpointError, match=f"model.pth not found in {step}.*KwaiVGI/VideoReward"):
        load_videoreward(root)
    shutil.rmtree(step)
    with pytest.raises(CheckpointError, match="checkpoint-<N>/ not found"):
        load_videoreward(root)


def test_unsupported_training_settings_are_refused(folder, tmp_path):
    root = copy_of(folder, tmp_path)
    path = root / "model_config.json"
    path.write_text(path.read_text().replace('"detailed_special"', '"simple"'))
    with pytest.raises(CheckpointError, match="prompt_template_type"):
        load_videoreward(root)


# --- bad input --------------------------------------------------------------------------------

def test_bad_input_is_refused_with_a_clear_error(model):
    vr = VideoReward(model)
    with pytest.raises(ValueError, match="at least 2 frames"):
        vr(clips(frames=1), ["a dog"])
    with pytest.raises(MediaError, match="empty"):
        clips(frames=0)
    with pytest.raises(ValueError, match="non-empty"):
        Q.videos(torch.zeros(1, 0, 32, 32, 3), 24.0, 2.0, 200704)
    with pytest.raises(ValueError, match="one prompt or one per clip"):
        vr(clips(n=2), ["a", "b", "c"])
    with pytest.raises(ValueError, match="special token"):
        vr(clips(), ["a dog <|TA_reward|>"])
    with pytest.raises(ValueError, match="elongated"):
        vr(clips(size=(2, 500)), ["a dog"])


def test_frames_smaller_than_a_patch_are_upscaled(model):
    batch = clips(size=(8, 12))
    assert model.inputs(batch, ["a dog"]).videos.grid_thw.tolist() == [[2, 280 // 14, 392 // 14]]
    assert torch.isfinite(VideoReward(model)(batch, ["a dog"])["videoreward_ta"]).all()
