"""JavisDiT's decoders on tiny random twins in the published formats, loaded by the real loaders:
OpenSora-VAE-v1.2 against a re-computation written here from the reference's description
(un-normalise, 3D-conv temporal decode chunk by chunk, image VAE frame by frame), AudioLDM2's VAE +
vocoder against diffusers/transformers called directly, the 4 s 240p latent shapes, bad files."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from comfyui_avits.generators.javisdit import audio_vae as A  # noqa: E402
from comfyui_avits.generators.javisdit import video_vae as V  # noqa: E402
from comfyui_avits.core.checkpoints import CheckpointError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_javisdit_decoders  # noqa: E402


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> dict[str, Path]:
    return tiny_javisdit_decoders.write(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def vae(twins) -> V.OpenSoraVAE:
    return V.load_opensora_vae(twins["video_vae"])


@pytest.fixture(scope="module")
def audio(twins) -> A.AudioLDM2Decoder:
    return A.load_audioldm2(twins["audio_vae"])


# ---- latent shapes ---------------------------------------------------------------------------

def test_4s_240p_latents_have_the_reference_shapes():
    assert V.num_frames_for("4s") == 102 and V.num_frames_for("51") == 51
    assert V.video_latent_shape("4s", 240, 426) == (4, 30, 30, 53)
    assert V.video_latent_shape(102, 240, 426) == (4, 30, 30, 53)
    # full 17-frame chunks give 5 latent frames, the rest ceil(rest / 4)
    assert [V.latent_frames(n) for n in (1, 4, 5, 16, 17, 18, 23, 34, 51)] == [1, 1, 2, 4, 5, 6, 7, 10, 15]
    seconds = A.audio_seconds(102, 24)
    assert seconds == 4.25
    assert A.audio_latent_shape(seconds) == (8, 112, 16)  # 425 mel frames -> 448 -> / 4
    assert A.audio_latent_shape(51 / 24) == (8, 56, 16)   # 212 -> 224
    assert A.audio_latent_shape(10.24) == (8, 256, 16)    # 1024, already a multiple of 32
    assert A.num_samples(seconds) == 68000


def test_the_loaded_models_give_the_same_shapes(vae, audio):
    assert vae.latent_size(102, 240, 426) == (30, 30, 53) and vae.max_frames(30) == 102
    assert vae.max_frames(7) == 17 + 8
    assert audio.latent_shape(4.25) == (8, 112, 16) and audio.latent_length(4.25) == 112
    assert (audio.sample_rate, audio.hop, audio.vae_factor) == (16000, 160, 4)


# ---- the video VAE ---------------------------------------------------------------------------

def test_the_twin_has_the_official_key_names(twins):
    keys = set(load_file(str(twins["video_vae"] / "model.safetensors")))
    for key in ("scale", "shift", "spatial_vae.module.decoder.mid_block.attentions.0.to_q.weight",
                "spatial_vae.module.post_quant_conv.weight", "temporal_vae.post_quant_conv.conv.weight",
                "temporal_vae.quant_conv.conv.bias", "temporal_vae.decoder.conv1.conv.bias",
                "temporal_vae.decoder.conv_blocks.1.conv.weight", "temporal_vae.decoder.conv_blocks.2.conv.bias",
                "temporal_vae.decoder.block_res_blocks.0.0.conv3.conv.weight",
                "temporal_vae.decoder.res_blocks.0.norm1.weight", "temporal_vae.decoder.conv_out.conv.weight",
                "temporal_vae.encoder.conv_in.conv.weight", "temporal_vae.encoder.conv_blocks.1.conv.weight",
                "temporal_vae.encoder.conv2.conv.bias"):
        assert key in keys, key
    # the first level does not upsample time: an Identity, nothing stored; the reference's
    # ResBlock convs, first encoder conv and skips have no bias
    assert not {k for k in keys if "conv_blocks.0." in k or k.endswith(("conv1.conv.bias", "conv3.conv.bias"))
                and "res_blocks" in k}
    assert "temporal_vae.encoder.conv_in.conv.bias" not in keys


def test_the_published_architecture_has_the_reference_shapes():
    # VAE_Temporal_SD: filters 128, multipliers (1, 2, 2, 4), 4 blocks, time down (F, T, T); its
    # parameter count taken from the reference module (309,687,144), shapes from its constructor
    spec = V.TemporalSpec(channels=4, latent=4, base=128, widths=(128, 256, 256, 512), blocks=4,
                          time_down=(False, True, True))
    with torch.device("meta"):
        state = V.TemporalVAE(spec).state_dict()
    assert sum(v.numel() for v in state.values()) == 309_687_144
    assert state["decoder.conv1.conv.weight"].shape == (512, 4, 3, 3, 3)
    assert state["decoder.conv_blocks.2.conv.weight"].shape == (1024, 512, 3, 3, 3)
    assert state["decoder.conv_blocks.1.conv.weight"].shape == (512, 256, 3, 3, 3)
    assert state["decoder.block_res_blocks.2.0.conv3.conv.weight"].shape == (256, 512, 1, 1, 1)
    assert state["decoder.block_res_blocks.0.0.conv3.conv.weight"].shape == (128, 256, 1, 1, 1)
    assert state["encoder.conv_blocks.2.conv.weight"].shape == (256, 256, 3, 3, 3)
    assert state["encoder.res_blocks.3.conv2.conv.weight"].shape == (512, 512, 3, 3, 3)
    assert state["encoder.conv2.conv.weight"].shape == (8, 512, 1, 1, 1)
    assert V.temporal_spec(state, Path("x")) == spec
    # the SDXL image VAE (PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers) read back off its shapes
    from diffusers import AutoencoderKL
    with torch.device("meta"):
        sdxl = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                             down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    cfg = V.spatial_config(sdxl.state_dict(), Path("x"))
    assert cfg["block_out_channels"] == (128, 256, 512, 512) and cfg["layers_per_block"] == 2
    assert (cfg["in_channels"], cfg["out_channels"], cfg["latent_channels"]) == (3, 3, 4)
    assert cfg["mid_block_add_attention"] and cfg["use_post_quant_conv"]


def _causal(x, w, b=None, stride=1):
    k = w.shape[2]
    return F.conv3d(F.pad(x, (k // 2, k // 2, k // 2, k // 2, k - stride, 0)), w, b, stride=(stride, 1, 1))


def _res(x, s, p):
    h = _causal(F.silu(F.group_norm(x, 32, s[p + "norm1.weight"], s[p + "norm1.bias"])), s[p + "conv1.conv.weight"])
    h = _causal(F.silu(F.group_norm(h, 32, s[p + "norm2.weight"], s[p + "norm2.bias"])), s[p + "conv2.conv.weight"])
    return h + (_causal(x, s[p + "conv3.conv.weight"]) if p + "conv3.conv.weight" in s else x)


def _temporal_decode(s, z, num_frames):
    """VAE_Temporal.decode written out from the state dict: post-quant 1x1, conv1, the top blocks,
    then levels from the last down to 0, each followed (but level 0) by a conv to twice the width
    whose channel pairs become consecutive frames; norm, silu, conv_out; front crop."""
    p = "temporal_vae."
    x = _causal(z, s[p + "post_quant_conv.conv.weight"], s[p + "post_quant_conv.conv.bias"])
    x = _causal(x, s[p + "decoder.conv1.conv.weight"], s[p + "decoder.conv1.conv.bias"])
    count = lambda pre: len({k[len(pre):].split(".")[0] for k in s if k.startswith(pre)})  # noqa: E731
    for j in range(count(p + "decoder.res_blocks.")):
        x = _res(x, s, f"{p}decoder.res_blocks.{j}.")
    for i in reversed(range(count(p + "decoder.block_res_blocks."))):
        for j in range(count(f"{p}decoder.block_res_blocks.{i}.")):
            x = _res(x, s, f"{p}decoder.block_res_blocks.{i}.{j}.")
        w = f"{p}decoder.conv_blocks.{i - 1}.conv."
        if i > 0 and w + "weight" in s:
            y = _causal(x, s[w + "weight"], s[w + "bias"])
            x = torch.empty(y.shape[0], y.shape[1] // 2, 2 * y.shape[2], *y.shape[3:])
            x[:, :, 0::2], x[:, :, 1::2] = y[:, 0::2], y[:, 1::2]
    x = F.silu(F.group_norm(x, 32, s[p + "decoder.norm1.weight"], s[p + "decoder.norm1.bias"]))
    x = _causal(x, s[p + "decoder.conv_out.conv.weight"], s[p + "decoder.conv_out.conv.bias"])
    return x[:, :, (4 - num_frames % 4) % 4:]


def _reference_decode(folder: Path, z: torch.Tensor, num_frames: int) -> torch.Tensor:
    """VideoAutoencoderPipeline.decode (micro_frame_size 17): z * scale + shift, 5 latent frames
    at a time to min(17, frames left) frames, then the image VAE on each frame / 0.18215."""
    from diffusers import AutoencoderKL

    s = load_file(str(folder / "model.safetensors"))
    z = z * s["scale"] + s["shift"]
    parts, left = [], num_frames
    for start in range(0, z.shape[2], 5):
        parts.append(_temporal_decode(s, z[:, :, start:start + 5], min(17, left)))
        left -= 17
    x_z = torch.cat(parts, dim=2)
    image_vae = AutoencoderKL(block_out_channels=(32,) * 4, layers_per_block=1, latent_channels=4,
                              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    image_vae.load_state_dict({k[len("spatial_vae.module."):]: v for k, v in s.items()
                               if k.startswith("spatial_vae.module.")})
    image_vae.eval()
    frames = [image_vae.decode(x_z[:, :, t] / 0.18215).sample for t in range(x_z.shape[2])]
    return torch.stack(frames, dim=2)


@pytest.mark.parametrize("latent_len,num_frames", [(30, 102), (7, 23)])
def test_video_decode_equals_the_reference_procedure(twins, vae, latent_len, num_frames):
    # 4 s at 240p is (30, 30, 53); the same 30 latent frames on a smaller grid keep the time logic.
    # 7 latent frames for 23 frames: a full chunk, then 2 latent frames cropped to 6 frames
    z = torch.randn(1, 4, latent_len, 4, 6, generator=torch.Generator().manual_seed(latent_len))
    out = vae.decode(z, num_frames)
    assert out.shape == (1, 3, num_frames, 32, 48) and out.dtype == torch.float32
    with torch.no_grad():
        want = _reference_decode(twins["video_vae"], z, num_frames)
    assert out.std() > 0.05
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4)


def test_video_decode_checks_the_frame_count(vae):
    z = torch.randn(2, 4, 6, 2, 3)
    assert vae.decode(z).shape == (2, 3, 21, 16, 24)  # max_frames(6) = 17 + 4
    torch.testing.assert_close(vae.decode(z), vae.decode(z, 21))
    assert vae.decode(z, 18).shape[2] == 18
    with pytest.raises(ValueError, match="22 frames need 7 latent frames"):
        vae.decode(z, 22)
    # a batch decodes as its items do
    torch.testing.assert_close(vae.decode(z)[1:], vae.decode(z[1:]), rtol=1e-4, atol=1e-4)


def test_video_encode_gives_decodable_latents(vae):
    x = torch.rand(1, 3, 20, 32, 48) * 2 - 1
    z = vae.encode(x)
    assert z.shape == (1, 4, 6, 4, 6) and torch.equal(z, vae.encode(x))  # 17 -> 5, 3 -> 1
    sampled = vae.encode(x, torch.Generator().manual_seed(0))
    assert not torch.equal(sampled, z)
    assert vae.decode(z, 20).shape == (1, 3, 20, 32, 48)


def test_bfloat16_loads_and_decodes(twins):
    low = V.load_opensora_vae(twins["video_vae"], dtype=torch.bfloat16)
    assert low.dtype == torch.bfloat16 and next(low.spatial_vae.parameters()).dtype == torch.bfloat16
    assert low.decode(torch.randn(1, 4, 5, 2, 3), 17).dtype == torch.bfloat16


def test_bad_video_files_say_what_is_wrong(twins, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"huggingface.co/hpcai-tech/OpenSora-VAE-v1.2") as e:
        V.load_opensora_vae(tmp_path / "nowhere")
    assert "model.safetensors" in str(e.value)
    state = load_file(str(twins["video_vae"] / "model.safetensors"))
    state["temporal_vae.decoder.conv_out.conv.weight"] = torch.zeros(4, 16, 3, 3, 3)
    (tmp_path / "wrong").mkdir()
    save_file(state, str(tmp_path / "wrong" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"wrong/model.safetensors.*decoder\.conv_out\.conv\.weight is"):
        V.load_opensora_vae(tmp_path / "wrong")
    (tmp_path / "other").mkdir()
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="not an OpenSora-VAE-v1.2 checkpoint"):
        V.load_opensora_vae(tmp_path / "other")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="junk/model.safetensors"):
        V.load_opensora_vae(tmp_path / "junk")


# ---- the audio VAE + vocoder -----------------------------------------------------------------

def test_audio_decode_equals_the_pipeline_calls(twins, audio):
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan

    root = twins["audio_vae"]
    z = torch.randn(1, 8, 112, 16, generator=torch.Generator().manual_seed(1))
    wave = audio.decode(z, 4.25)
    assert wave.shape == (1, 68000) and wave.dtype == torch.float32
    vae = AutoencoderKL.from_pretrained(root / "vae").eval()
    vocoder = SpeechT5HifiGan.from_pretrained(root / "vocoder").eval()
    assert vae.config.scaling_factor == 0.4110932946205139
    with torch.no_grad():
        mel = vae.decode(1 / vae.config.scaling_factor * z).sample  # (1, 1, 448, 64)
        want = vocoder(mel.squeeze(1))
    # 448 mel frames at hop 160; the real kernel sizes make the transposed convs add a little
    assert mel.shape == (1, 1, 448, 64) and 448 * 160 <= want.shape[1] < 449 * 160
    assert wave.abs().max() > 1e-3
    torch.testing.assert_close(wave, want[:, :68000])
    torch.testing.assert_close(audio.decode(z), want)


def test_bad_audio_files_say_what_is_wrong(twins, tmp_path):
    root = tmp_path / "audioldm2"
    shutil.copytree(twins["audio_vae"], root)
    (root / "vocoder" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocoder/model.safetensors.*huggingface.co/cvssp/audioldm2"):
        A.load_audioldm2(root)
    shutil.rmtree(root)
    shutil.copytree(twins["audio_vae"], root)
    cfg = json.loads((root / "vocoder" / "config.json").read_text())
    cfg["upsample_initial_channel"] = 64
    (root / "vocoder" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"vocoder/model.safetensors"):
        A.load_audioldm2(root)
    shutil.rmtree(root)
    shutil.copytree(twins["audio_vae"], root)
    cfg = json.loads((root / "vae" / "config.json").read_text())
    cfg["latent_channels"] = 4
    (root / "vae" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"vae/diffusion_pytorch_model.safetensors"):
        A.load_audioldm2(root)
