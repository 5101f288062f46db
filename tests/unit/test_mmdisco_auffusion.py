"""Auffusion (MMDisCo's audio model) on a tiny random twin of auffusion/auffusion-full written by
the libraries' own save_pretrained, loaded by the real loader: text contexts, the silence padding
around every UNet call, per-row noise streams, the mel image, the vocoder and decode, each
against a re-computation written here from diffusers/transformers/librosa parts; bad files."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from comfyui_avits.generators.mmdisco import mel  # noqa: E402
from comfyui_avits.generators.mmdisco.auffusion import Auffusion, alphas_cumprod, load_auffusion  # noqa: E402
from comfyui_avits.core.checkpoints import CheckpointError  # noqa: E402
from comfyui_avits.generators.mmdisco.hifigan import HifiGan  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_auffusion  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_auffusion.write(tmp_path_factory.mktemp("models"))["auffusion"]


@pytest.fixture(scope="module")
def model(folder) -> Auffusion:
    return load_auffusion(folder)


@pytest.fixture(scope="module")
def parts(folder):
    """The twin's parts loaded straight from the libraries, not through the pack."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    return dict(unet=UNet2DConditionModel.from_pretrained(folder / "unet").eval(),
                vae=AutoencoderKL.from_pretrained(folder / "vae").eval(),
                text=CLIPTextModel.from_pretrained(folder / "text_encoder_0").eval(),
                tok=AutoTokenizer.from_pretrained(folder / "text_encoder_0"),
                adapter=torch.load(folder / "condition_adapter_0" / "condition_adapter.pt", weights_only=True),
                abar=DDPMScheduler.from_config(sched).alphas_cumprod,
                vocoder=torch.load(folder / "vocoder" / "vocoder.pt", weights_only=True)["generator"])


# ---- loading ---------------------------------------------------------------------------------

def test_the_published_layout_loads_with_sizes_read_off_its_configs(model, parts):
    assert model.latent_shape == (4, 32, 25) and model.pad_frames == 128 and model.sample_rate == 16000
    assert model.num_samples == 32000 and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model.alphas_cumprod.dtype == torch.float64 and model.alphas_cumprod.shape == (1000,)
    # diffusers' DDPM reading of the PNDM config (what MMDisCo samples audio with), in float32
    torch.testing.assert_close(model.alphas_cumprod.float(), parts["abar"], atol=1e-6, rtol=0)
    # the DDPM settings MMDisCo's scheduler takes from this PNDM config, DDPM's defaults where
    # it lacks them
    assert model.steps_offset == 1 and model.clip_sample is False
    parts_ = (model.unet, model.vae, model.tokenizer, model.text_encoder, model.adapter, model.vocoder)
    bare = {k: v for k, v in model.scheduler_config.items() if k not in ("clip_sample", "steps_offset")}
    assert Auffusion(*parts_, bare).clip_sample is True and Auffusion(*parts_, bare).steps_offset == 0


def test_linear_betas_match_diffusers_too():
    from diffusers import DDPMScheduler

    cfg = dict(beta_start=0.0001, beta_end=0.02, beta_schedule="linear", num_train_timesteps=1000)
    torch.testing.assert_close(alphas_cumprod(cfg).float(), DDPMScheduler(**cfg).alphas_cumprod, atol=1e-6, rtol=0)
    with pytest.raises(CheckpointError, match="squaredcos"):
        alphas_cumprod({**cfg, "beta_schedule": "squaredcos_cap_v2"})


def test_seconds_set_the_latent_length_up_to_10_24_s(model):
    parts = (model.unet, model.vae, model.tokenizer, model.text_encoder, model.adapter, model.vocoder,
             model.scheduler_config)
    assert Auffusion(*parts, seconds=10.24).latent_shape == (4, 32, 128)
    assert Auffusion(*parts, seconds=1.0).latent_shape == (4, 32, 13)  # 100 frames -> ceil(12.5)
    with pytest.raises(ValueError, match="10.24"):
        Auffusion(*parts, seconds=11.0)


# ---- text ------------------------------------------------------------------------------------

def test_text_context_is_clip_zero_padded_to_77_then_the_adapter(model, parts):
    prompts = ["organ drum", "the bird " * 40]  # the second is over 77 tokens: cut, no EOS kept
    want = []
    for p in prompts:
        ids = parts["tok"](p, return_tensors="pt").input_ids[:, :77]
        with torch.no_grad():
            h = parts["text"](ids).last_hidden_state
        h = torch.cat([h, torch.zeros(1, 77 - h.shape[1], h.shape[2])], dim=1)
        a = parts["adapter"]
        want.append(F.layer_norm(F.linear(h, a["proj.weight"], a["proj.bias"]), (h.shape[-1],),
                                 a["norm.weight"], a["norm.bias"]))
    got = model.encode_text(prompts)
    assert got.shape == (2, 77, 32) and got.dtype == torch.float32
    torch.testing.assert_close(got, torch.cat(want), atol=1e-5, rtol=1e-5)
    # padded rows went through the adapter: they are LayerNorm(proj.bias), not zeros
    assert got[0, -1].abs().sum() > 1
    assert torch.equal(model.null_text(3), torch.zeros(3, 77, 32))
    torch.testing.assert_close(model.pooled_text(got), got.sum(1) / 77)


# ---- the UNet call ---------------------------------------------------------------------------

def _direct_eps(parts, x, t, ctx, seeds):
    """MMDisCo's rule written out: the 10.24 s silence image (the log-mel floor everywhere, -1
    in the VAE's range), its latent (posterior mean x scaling factor) noised to t for frames
    25..127 with each row's own noise, the UNet on the 128 frames, cropped to 25."""
    vae, unet, abar = parts["vae"], parts["unet"], parts["abar"].double()
    with torch.no_grad():
        silence = vae.encode(-torch.ones(1, 3, 256, 1024)).latent_dist.mean[0] * vae.config.scaling_factor
        frames = x.shape[-1]
        rows = []
        for i, seed in enumerate(seeds):
            noise = torch.randn((4, 32, 128 - frames), generator=torch.Generator().manual_seed(seed))
            a = abar[t[i]]
            rows.append(torch.cat([x[i], a.sqrt().float() * silence[..., frames:128]
                                   + (1 - a).sqrt().float() * noise], dim=-1))
        return unet(torch.stack(rows), t, encoder_hidden_states=ctx).sample[..., :frames]


def test_the_log_mel_of_silence_is_the_floor():
    image = mel.to_image(mel.log_mel(torch.zeros(1, 163840)))
    assert image.shape == (1, 3, 256, 1024) and torch.equal(image, -torch.ones_like(image))


def test_predict_noise_pads_with_noised_silence_and_crops(model, parts):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 32, 25, generator=g)
    t = torch.tensor([981, 321])
    ctx = model.encode_text(["organ drum", "birds"])
    got = model.predict_noise(x, t, ctx, [torch.Generator().manual_seed(s) for s in (5, 6)])
    assert got.shape == (2, 4, 32, 25) and got.dtype == torch.float32
    torch.testing.assert_close(got, _direct_eps(parts, x, t, ctx, (5, 6)), atol=1e-5, rtol=1e-4)


def test_a_row_alone_equals_the_row_in_a_batch_of_three(model):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 32, 25, generator=g)
    t = torch.tensor([901, 501, 41])
    ctx = torch.cat([model.encode_text(["organ", "drum"]), model.null_text(1)])
    batch = model.predict_noise(x, t, ctx, [torch.Generator().manual_seed(s) for s in (10, 11, 12)])
    alone = model.predict_noise(x[2:], t[2:], ctx[2:], [torch.Generator().manual_seed(12)])
    torch.testing.assert_close(alone, batch[2:], atol=1e-5, rtol=1e-5)
    other = model.predict_noise(x[2:], t[2:], ctx[2:], [torch.Generator().manual_seed(99)])
    assert (other - alone).abs().max() > 1e-4  # the padding's noise reaches the kept frames
    with pytest.raises(ValueError, match="2 generators"):
        model.predict_noise(x, t, ctx, [torch.Generator(), torch.Generator()])


def test_a_full_10_24_s_latent_is_not_padded_and_draws_nothing(model, parts):
    x = torch.randn(1, 4, 32, 128, generator=torch.Generator().manual_seed(2))
    t, ctx = torch.tensor([500]), model.null_text(1)
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    got = model.predict_noise(x, t, ctx, [gen])
    assert torch.equal(gen.get_state(), state)
    with torch.no_grad():
        torch.testing.assert_close(got, parts["unet"](x, t, encoder_hidden_states=ctx).sample, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="T <= 128"):
        model.predict_noise(torch.zeros(1, 4, 32, 129), t, ctx)


# ---- the mel image ---------------------------------------------------------------------------

def test_mel_filters_are_librosas():
    librosa = pytest.importorskip("librosa")
    want = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=256, fmin=0, fmax=8000)
    torch.testing.assert_close(mel.mel_filterbank(), torch.from_numpy(want), atol=1e-7, rtol=1e-5)


def test_log_mel_matches_a_librosa_recomputation():
    librosa = pytest.importorskip("librosa")
    import numpy as np

    n = 8000
    g = torch.Generator().manual_seed(4)
    wave = 0.3 * torch.sin(2 * torch.pi * 440 * torch.arange(n) / 16000) + 0.05 * torch.randn(n, generator=g)
    y = wave.double().numpy()
    y = y / np.abs(y).max() * 0.95
    y = np.pad(y, (944, 944), mode="reflect")
    spec = librosa.stft(y, n_fft=2048, hop_length=160, win_length=1024, window="hann", center=False)
    magnitude = np.sqrt(np.abs(spec) ** 2 + 1e-9)
    filters = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=256, fmin=0, fmax=8000)
    want = np.log(np.clip(filters @ magnitude, 1e-5, None))
    got = mel.log_mel(wave[None])
    assert got.shape == (1, 256, n // 160)
    torch.testing.assert_close(got[0], torch.from_numpy(want).float(), atol=2e-4, rtol=1e-4)
    # peak-normalised: a quieter copy gives the same spectrogram
    torch.testing.assert_close(mel.log_mel(0.1 * wave[None]), got, atol=1e-4, rtol=0)


def test_the_mel_image_is_flipped_scaled_padded_and_inverts():
    logmel = torch.full((2, 256, 200), mel.LOG_MIN)
    logmel[:, 0, :] = mel.LOG_MAX  # the lowest band, loudest
    logmel[1, 10, 5] = 0.0
    image = mel.to_image(logmel)
    assert image.shape == (2, 3, 256, 1024) and torch.equal(image[:, 0], image[:, 2])
    assert torch.all(image[:, :, -1, :200] == 1.0) and torch.all(image[:, :, :-1, :200][0] == -1.0)
    assert torch.all(image[..., 200:] == -1.0)  # padded with silence
    scaled = 2 * (0.0 - mel.LOG_MIN) / (mel.LOG_MAX - mel.LOG_MIN) - 1
    assert image[1, 0, 245, 5].item() == pytest.approx(scaled, abs=1e-6)
    torch.testing.assert_close(mel.from_image(mel.to_image(logmel, frames=None)), logmel, atol=1e-5, rtol=0)
    loud = torch.full((1, 256, 4), 9.0)  # above log 200: clamped
    torch.testing.assert_close(mel.from_image(mel.to_image(loud, frames=None)),
                               torch.full_like(loud, mel.LOG_MAX), atol=1e-5, rtol=0)


# ---- vocoder and decode ----------------------------------------------------------------------

def _direct_hifigan(state, config, x):
    """HiFi-GAN V1 written functionally from the weight-normalised state dict."""
    w = {k[: -len(".weight_v")]: torch._weight_norm(state[k], state[k[:-1] + "g"], 0)
         for k in state if k.endswith(".weight_v")}
    b = {k[: -len(".bias")]: v for k, v in state.items() if k.endswith(".bias")}
    x = F.conv1d(x, w["conv_pre"], b["conv_pre"], padding=3)
    nk = len(config["resblock_kernel_sizes"])
    for i, (u, k) in enumerate(zip(config["upsample_rates"], config["upsample_kernel_sizes"])):
        odd = (k - u) % 2
        x = F.conv_transpose1d(F.leaky_relu(x, 0.1), w[f"ups.{i}"], b[f"ups.{i}"], stride=u,
                               padding=(k - u) // 2 + odd, output_padding=odd)
        acc = 0
        for j, (rk, dil) in enumerate(zip(config["resblock_kernel_sizes"], config["resblock_dilation_sizes"])):
            h, name = x, f"resblocks.{i * nk + j}"
            for d_i, d in enumerate(dil):
                y = F.conv1d(F.leaky_relu(h, 0.1), w[f"{name}.convs1.{d_i}"], b[f"{name}.convs1.{d_i}"],
                             dilation=d, padding=d * (rk - 1) // 2)
                h = h + F.conv1d(F.leaky_relu(y, 0.1), w[f"{name}.convs2.{d_i}"], b[f"{name}.convs2.{d_i}"],
                                 padding=(rk - 1) // 2)
            acc = acc + h
        x = acc / nk
    return torch.tanh(F.conv1d(F.leaky_relu(x, 0.01), w["conv_post"], b["conv_post"], padding=3))


def test_decode_is_vae_then_image_to_mel_then_vocoder(model, parts):
    z = torch.randn(2, 4, 32, 25, generator=torch.Generator().manual_seed(7))
    wave = model.decode(z)
    assert wave.shape == (2, 1, 32000) and wave.dtype == torch.float32 and wave.abs().max() <= 1
    with torch.no_grad():
        image = parts["vae"].decode(z / parts["vae"].config.scaling_factor).sample
        unit = (image / 2 + 0.5).clamp(0, 1)[:, 0].flip(1)
        logmel = unit * (mel.LOG_MAX - mel.LOG_MIN) + mel.LOG_MIN
        want = _direct_hifigan(parts["vocoder"], tiny_auffusion.VOCODER, logmel)
    assert want.shape == (2, 1, 32000)
    torch.testing.assert_close(wave, want, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="audio latents"):
        model.decode(torch.zeros(1, 4, 32, 24))


def test_the_vocoder_is_the_hifigan_transformers_implements():
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    cfg = dict(resblock="1", num_mels=16, upsample_rates=[4, 2], upsample_kernel_sizes=[8, 4],
               upsample_initial_channel=16, resblock_kernel_sizes=[3, 5],
               resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]], sampling_rate=16000)
    torch.manual_seed(0)
    ours = HifiGan(cfg).eval()
    for p in ours.parameters():
        p.data.normal_(0, 0.2)
    ref = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=16, upsample_initial_channel=16, upsample_rates=[4, 2], upsample_kernel_sizes=[8, 4],
        resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
        normalize_before=False)).eval()
    ref.load_state_dict({k.replace("ups.", "upsampler."): v for k, v in ours.state_dict().items()}, strict=False)
    x = torch.randn(2, 16, 12)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x.transpose(1, 2))[:, None], atol=1e-5, rtol=1e-5)


# ---- bad files -------------------------------------------------------------------------------

def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "auffusion-full"))


def test_a_missing_folder_or_part_names_it_and_the_download(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="huggingface.co/auffusion/auffusion-full") as e:
        load_auffusion(tmp_path / "nowhere")
    assert "nowhere" in str(e.value)
    broken = _copy(folder, tmp_path)
    shutil.rmtree(broken / "unet")
    with pytest.raises(FileNotFoundError, match=r"unet.*huggingface.co/auffusion/auffusion-full"):
        load_auffusion(broken)
    shutil.rmtree(broken)
    broken = _copy(folder, tmp_path)
    (broken / "vocoder" / "vocoder.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocoder\.pt.*huggingface.co/auffusion/auffusion-full"):
        load_auffusion(broken)


def test_a_vocoder_file_of_the_wrong_shape_or_format_names_file_and_key(folder, tmp_path):
    broken = _copy(folder, tmp_path)
    path = broken / "vocoder" / "vocoder.pt"
    state = torch.load(path, weights_only=True)
    torch.save(state["generator"], path)
    with pytest.raises(CheckpointError, match=r"vocoder\.pt.*'generator'"):
        load_auffusion(broken)
    state["generator"]["conv_post.bias"] = torch.zeros(2)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"vocoder\.pt.*conv_post\.bias"):
        load_auffusion(broken)


def test_a_unet_of_another_width_or_with_weights_missing_is_refused(folder, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = _copy(folder, tmp_path)
    path = broken / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    state.pop("conv_in.bias")
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"unet.diffusion_pytorch_model\.safetensors.*conv_in\.bias"):
        load_auffusion(broken)
    state["conv_in.bias"] = torch.zeros(24)
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model\.safetensors"):
        load_auffusion(broken)


def test_an_adapter_that_does_not_fit_is_refused(folder, tmp_path):
    broken = _copy(folder, tmp_path)
    config = broken / "condition_adapter_0" / "config.json"
    cfg = json.loads(config.read_text())
    config.write_text(json.dumps({**cfg, "condition_dim": 48}))
    with pytest.raises(CheckpointError, match=r"condition_adapter\.pt.*proj\.weight"):
        load_auffusion(broken)
    path = broken / "condition_adapter_0" / "condition_adapter.pt"
    torch.save({"proj.weight": torch.zeros(32, 48), "proj.bias": torch.zeros(32),
                "norm.weight": torch.ones(32), "norm.bias": torch.zeros(32)}, path)
    with pytest.raises(CheckpointError, match="text encoder's width 32"):
        load_auffusion(broken)
