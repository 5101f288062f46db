"""VideoCrafter2 for MMDisCo on a tiny random ``model.ckpt`` in the official layout, loaded by the
real loader: the sizes read off the file, the official key names, batch independence of the
UNet, the text tower against a re-computation written here from the raw tensors, frame-by-frame
decoding, MMDisCo's schedule against diffusers' own, and clear errors for bad files."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.generators.mmdisco.videocrafter import (PUBLISHED, TEXT, UNET, VAE,
                                                           VideoCrafter2, load_videocrafter2,
                                                           mmdisco_alphas_cumprod, read_checkpoint)
from comfyui_avits.generators.mmdisco.videocrafter_unet import UNetSizes

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import convert_videocrafter2  # noqa: E402
import tiny_videocrafter  # noqa: E402

PROMPTS = ["a dog barking in the rain", "fireworks over a lake", "a train passing"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_videocrafter.write(tmp_path_factory.mktemp("models"))["videocrafter2"]


@pytest.fixture(scope="module")
def raw(ckpt) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def model(ckpt) -> VideoCrafter2:
    return load_videocrafter2(ckpt)


def latents(b: int, frames: int = 2, hw: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 4, frames, hw, hw, generator=torch.Generator().manual_seed(seed))


# ---- loading ---------------------------------------------------------------------------------

def test_the_twin_has_the_official_layout_and_every_weight_is_loaded(ckpt, raw, model):
    # names of lvdm's modules, as the official file holds them (lvdm's own spelling included)
    for key in ("input_blocks.0.0.weight", "init_attn.0.proj_in.weight",
                "input_blocks.1.0.temopral_conv.conv4.3.weight", "input_blocks.1.0.emb_layers.1.weight",
                "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                "input_blocks.1.2.transformer_blocks.0.ff.net.0.proj.weight",
                "input_blocks.2.0.op.weight", "middle_block.3.out_layers.3.weight",
                "output_blocks.1.1.conv.weight", "output_blocks.3.3.conv.weight",
                "fps_embedding.2.bias", "out.2.weight"):
        assert UNET + key in raw, key
    assert raw[UNET + "init_attn.0.proj_in.weight"].ndim == 3  # a Conv1d, not a Linear
    assert raw[UNET + "input_blocks.1.2.proj_in.weight"].ndim == 2  # use_linear
    for key in ("decoder.up.1.block.0.nin_shortcut.weight", "decoder.mid.attn_1.q.weight",
                "post_quant_conv.weight", "encoder.down.0.downsample.conv.weight"):
        assert VAE + key in raw, key
    for key in ("token_embedding.weight", "positional_embedding", "text_projection",
                "transformer.resblocks.1.attn.in_proj_weight", "ln_final.weight", "logit_scale"):
        assert TEXT + key in raw, key
    assert not any(k.startswith("cond_stage_model.model.visual") for k in raw)
    assert model.unet.sizes == UNetSizes(**tiny_videocrafter.UNET)
    assert raw[TEXT + "token_embedding.weight"].shape[0] == 49408  # the real vocabulary
    own = {UNET + k: v for k, v in model.unet.state_dict().items()}
    own |= {TEXT + k: v for k, v in model.text.state_dict().items() if k != "attn_mask"}
    for key, value in own.items():
        assert torch.equal(value, raw[key].float()), key
    assert len(own) + sum(k.startswith(VAE) for k in raw) + 1 + 2 == len(raw)  # logit_scale, buffers
    assert model.latent_shape == (4, 16, 32, 32) and model.fps == 8


def test_deepspeed_flat_and_safetensors_files_give_the_same_weights(tmp_path, raw, model):
    files = {"module.ckpt": {"module": {"_forward_module." + k: v for k, v in raw.items()}},
             "flat.ckpt": dict(raw)}
    for name, obj in files.items():
        torch.save(obj, tmp_path / name)
        sd = read_checkpoint(tmp_path / name)
        assert sd.keys() == raw.keys() and all(torch.equal(sd[k], raw[k]) for k in raw), name
    save_file({k: v.contiguous() for k, v in raw.items()}, str(tmp_path / "model.safetensors"))
    other, ref = load_videocrafter2(tmp_path / "model.safetensors").state_dict(), model.state_dict()
    assert other.keys() == ref.keys() and all(torch.equal(other[k], ref[k]) for k in ref)


# ---- the UNet --------------------------------------------------------------------------------

def test_predict_noise_a_row_alone_equals_it_in_a_batch_of_three(model):
    x, t = latents(3), torch.tensor([981, 500, 1])
    ctx = model.encode_text(PROMPTS)
    with torch.no_grad():
        batch = model.predict_noise(x, t, ctx)
        alone = model.predict_noise(x[1:2], t[1:2], ctx[1:2])
    assert batch.shape == x.shape and batch.dtype == torch.float32
    assert torch.isfinite(batch).all() and batch.std() > 0.05
    torch.testing.assert_close(alone, batch[1:2], atol=1e-5, rtol=0)


def test_the_text_the_timestep_and_the_frames_all_matter(model):
    x = latents(1).repeat(4, 1, 1, 1, 1)
    x[3, :, 1] = torch.randn_like(x[3, :, 1])  # row 3: frame 1 changed
    ctx, null = model.encode_text(PROMPTS[:1]), model.null_text(1)
    with torch.no_grad():
        eps = model.predict_noise(x, torch.tensor([500, 500, 20, 500]), torch.cat([ctx, null, ctx, ctx]))
    assert (eps[1] - eps[0]).abs().max() > 1e-3  # cross-attention to the text
    assert (eps[2] - eps[0]).abs().max() > 1e-3  # the timestep
    assert (eps[3, :, 0] - eps[0, :, 0]).abs().max() > 1e-4  # temporal layers reach frame 0


def test_the_schedule_is_mmdisco_s_diffusers_linear_ddpm():
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                          beta_schedule="linear")
    abar = mmdisco_alphas_cumprod()
    assert abar.dtype == torch.float64 and abar.shape == (1000,)
    torch.testing.assert_close(abar, sched.alphas_cumprod.double(), atol=1e-7, rtol=0)
    sqrt_linear = torch.cumprod(1 - torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2, 0)
    assert (abar[-1] - sqrt_linear[-1].double()).abs() > 1e-3  # not lvdm's own schedule


# ---- the text tower --------------------------------------------------------------------------

def text_by_hand(raw: dict[str, torch.Tensor], prompts: list[str]) -> torch.Tensor:
    """OpenCLIP's text transformer up to the penultimate block, then ln_final, from the raw
    tensors: pre-LN causal self-attention + GELU MLP per block, 64-wide heads (at least one)."""
    def w(k: str) -> torch.Tensor:
        return raw[TEXT + k].float()
    tokens = open_clip.tokenize(prompts)
    x = w("token_embedding.weight")[tokens] + w("positional_embedding")
    width = x.shape[-1]
    heads = max(1, width // 64)
    layers = 1 + max(int(k.split(".")[4]) for k in raw if k.startswith(TEXT + "transformer.resblocks."))
    causal = torch.ones(77, 77, dtype=torch.bool).tril()
    for i in range(layers - 1):
        p = f"transformer.resblocks.{i}."
        h = F.layer_norm(x, (width,), w(p + "ln_1.weight"), w(p + "ln_1.bias"))
        q, k, v = (h @ w(p + "attn.in_proj_weight").T + w(p + "attn.in_proj_bias")).chunk(3, -1)
        q, k, v = (y.reshape(*y.shape[:2], heads, -1).transpose(1, 2) for y in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(x.shape)
        x = x + o @ w(p + "attn.out_proj.weight").T + w(p + "attn.out_proj.bias")
        h = F.layer_norm(x, (width,), w(p + "ln_2.weight"), w(p + "ln_2.bias"))
        h = F.gelu(h @ w(p + "mlp.c_fc.weight").T + w(p + "mlp.c_fc.bias"))
        x = x + h @ w(p + "mlp.c_proj.weight").T + w(p + "mlp.c_proj.bias")
    return F.layer_norm(x, (width,), w("ln_final.weight"), w("ln_final.bias"))


def test_text_is_the_penultimate_layer_then_ln_final(model, raw):
    with torch.no_grad():
        ctx = model.encode_text(PROMPTS)
        null = model.null_text(2)
    assert ctx.shape == (3, 77, 32)
    torch.testing.assert_close(ctx, text_by_hand(raw, PROMPTS), atol=1e-5, rtol=0)
    torch.testing.assert_close(null, text_by_hand(raw, ["", ""]), atol=1e-5, rtol=0)
    pooled = model.pooled_text(ctx)
    assert pooled.shape == (3, 32) and pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, ctx.sum(1) / 77)


# ---- decoding --------------------------------------------------------------------------------

def test_decode_is_frame_by_frame_into_unit_range(model):
    z = latents(2, frames=3, hw=4, seed=1)
    with torch.no_grad():
        video = model.decode(z)
        one = model.decode(z[1:, :, 2:3])
    assert video.shape == (2, 3, 32, 32, 3)
    assert video.min() >= 0 and video.max() <= 1 and video.std() > 0.05
    torch.testing.assert_close(one[0, 0], video[1, 2], atol=1e-5, rtol=0)
    pixels = model.vae.decode(z[:1, :, 0] / 0.18215).sample[0].permute(1, 2, 0)
    torch.testing.assert_close(video[0, 0], ((pixels + 1) / 2).clamp(0, 1), atol=1e-5, rtol=0)


# ---- bad files -------------------------------------------------------------------------------

def test_a_missing_file_names_it_and_where_the_weights_are(tmp_path):
    path = tmp_path / "videocrafter2" / "model.ckpt"
    with pytest.raises(FileNotFoundError) as e:
        load_videocrafter2(path)
    assert str(path) in str(e.value) and PUBLISHED in str(e.value)
    assert PUBLISHED == "https://huggingface.co/VideoCrafter/VideoCrafter2"


def test_a_wrong_shape_names_the_file_and_the_key(tmp_path, raw):
    key = UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    bad = dict(raw)
    bad[key] = torch.zeros(bad[key].shape[0], 48)
    torch.save({"state_dict": bad}, tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError) as e:
        load_videocrafter2(tmp_path / "model.ckpt")
    assert str(tmp_path / "model.ckpt") in str(e.value) and key in str(e.value)


def test_a_file_without_a_part_or_of_another_model_is_refused(tmp_path, raw):
    no_text = {k: v for k, v in raw.items() if not k.startswith(TEXT)}
    torch.save({"state_dict": no_text}, tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match="cond_stage_model.model"):
        load_videocrafter2(tmp_path / "a.ckpt")
    no_temporal = {k: v for k, v in raw.items() if "temopral_conv" not in k}
    torch.save({"state_dict": no_temporal}, tmp_path / "b.ckpt")
    with pytest.raises(CheckpointError, match="temopral_conv"):
        load_videocrafter2(tmp_path / "b.ckpt")


class TrainerState:  # stands for the trainer objects a Lightning checkpoint may pickle
    def __init__(self):
        self.epoch, self.note = 3, "x"


class HParams(dict):
    pass


def test_a_checkpoint_with_objects_is_refused_then_converted(tmp_path, raw):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": raw, "callbacks": {"ckpt": TrainerState()},
                "hyper_parameters": HParams(lr=1e-4), "loops": [TrainerState()]}, path)
    with pytest.raises(CheckpointError, match="convert_videocrafter2"):
        load_videocrafter2(path)
    out = convert_videocrafter2.convert(path)
    assert out == tmp_path / "model.safetensors"
    kept = load_file(str(out))
    assert kept.keys() == {k for k in raw if k.startswith((UNET, VAE, TEXT))}
    assert all(torch.equal(kept[k], raw[k]) for k in kept)
    assert load_videocrafter2(out).unet.sizes == UNetSizes(**tiny_videocrafter.UNET)
