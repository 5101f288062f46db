"""Auffusion (the audio model of MMDisCo's Auffusion + VideoCrafter2 pair) as an eps model,
loaded from the diffusers folder auffusion/auffusion-full as published.

Auffusion is a Stable-Diffusion-style latent diffusion model over an image of the log-mel
spectrogram (``mel.py``): a diffusers ``UNet2DConditionModel`` and ``AutoencoderKL``, a CLIP
ViT-L/14 text model (``text_encoder_0/``, tokenizer files in the same folder) followed by a
condition adapter (Linear + LayerNorm, ``condition_adapter_0/``), and a HiFi-GAN vocoder
(``hifigan.py``). How MMDisCo drives it (``mmdisco/models/diffusion/audio.py`` ``Auffusion``,
``auffusion/auffusion_pipeline.py`` ``_encode_prompt``, ``models/networks.py`` ``sample``):

- text: each prompt tokenised alone without padding (cut at 77 tokens), CLIP's last hidden
  state zero-padded to 77 rows, then the adapter over all 77 rows; the unconditional context
  is all zeros (``torch.zeros_like`` of the conditional one, after the adapter);
- the discriminator reads the token average of that context;
- latents are (4, mel / 8, time / 8), time last: 2 s -> (4, 32, 25);
- the UNet was trained on 10.24 s images, so before every UNet call the time axis is padded to
  128 latent frames with the latent of 10.24 s of silence noised to t with fresh noise, and the
  prediction is cropped back;
- the schedule is the ``scheduler/`` config (a PNDM config) read as MMDisCo's DDPM scheduler
  reads it: betas from it, and ``steps_offset`` / ``clip_sample`` (x0 clamped to [-1, 1] in
  each DDPM step) from it or, where it lacks them, DDPM's defaults 0 / True."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import mel
from ...core.checkpoints import CheckpointError, load_strict, read_file
from .hifigan import HifiGan, load_hifigan

PUBLISHED = "https://huggingface.co/auffusion/auffusion-full"
MAX_TOKENS = 77
PAD_SECONDS = 10.24
"""Auffusion's training length: the UNet always sees 1024 mel frames = 128 latent frames."""
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class ConditionAdapter(nn.Module):
    """Auffusion's text adapter: LayerNorm(Linear(h)) on every token (keys ``proj.*``, ``norm.*``)."""

    def __init__(self, condition_dim: int, cross_attention_dim: int):
        super().__init__()
        self.proj = nn.Linear(condition_dim, cross_attention_dim)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(h))


def alphas_cumprod(config: dict[str, Any]) -> torch.Tensor:
    """(num_train_timesteps,) float64 alpha-bar of a diffusers scheduler config, with diffusers'
    defaults for missing keys (linear 1e-4..0.02 over 1000 steps): "linear" spaces the betas
    linearly, "scaled_linear" their square roots (Stable Diffusion's schedule)."""
    n = int(config.get("num_train_timesteps", 1000))
    start, end = float(config.get("beta_start", 1e-4)), float(config.get("beta_end", 0.02))
    schedule = config.get("beta_schedule", "linear")
    if config.get("trained_betas") is not None:
        betas = torch.tensor(config["trained_betas"], dtype=torch.float64)
    elif schedule == "linear":
        betas = torch.linspace(start, end, n, dtype=torch.float64)
    elif schedule == "scaled_linear":
        betas = torch.linspace(start ** 0.5, end ** 0.5, n, dtype=torch.float64) ** 2
    else:
        raise CheckpointError(f"scheduler beta_schedule {schedule!r} is not one Auffusion uses "
                              f"(linear, scaled_linear or trained_betas)")
    if config.get("rescale_betas_zero_snr"):
        raise CheckpointError("scheduler rescale_betas_zero_snr is not supported")
    return torch.cumprod(1.0 - betas, dim=0)


class Auffusion(nn.Module):
    """The audio eps model of MMDisCo (see the module docstring); ``seconds`` of audio per sample."""

    sample_rate = mel.SAMPLE_RATE

    def __init__(self, unet: nn.Module, vae: nn.Module, tokenizer: Any, text_encoder: nn.Module,
                 adapter: ConditionAdapter, vocoder: HifiGan, scheduler_config: dict[str, Any],
                 seconds: float = 2.0):
        super().__init__()
        self.unet, self.vae, self.text_encoder = unet, vae, text_encoder
        self.adapter, self.vocoder = adapter, vocoder
        self.tokenizer = tokenizer
        self.scheduler_config = dict(scheduler_config)
        self.alphas_cumprod = alphas_cumprod(scheduler_config)
        # MMDisCo builds its DDPM scheduler from this PNDM config: keys it lacks take DDPM's defaults
        self.steps_offset = int(scheduler_config.get("steps_offset", 0))
        self.clip_sample = bool(scheduler_config.get("clip_sample", True))
        self.vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.seconds = float(seconds)
        self.pad_frames = math.ceil(round(PAD_SECONDS * self.sample_rate) / vocoder.hop / self.vae_factor)
        if self.latent_shape[-1] > self.pad_frames:
            raise ValueError(f"Auffusion makes at most {PAD_SECONDS} s of audio, not {seconds} s")
        self._silence: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(channels, mel / 8, frames / 8) of ``seconds``, the frame count rounded up at each step
        as MMDisCo's ``sample_init_latents`` does: 2 s -> 200 mel frames -> (4, 32, 25)."""
        frames = math.ceil(round(self.seconds * self.sample_rate) / self.vocoder.hop)
        return (int(self.unet.config.in_channels), int(self.vocoder.config["num_mels"]) // self.vae_factor,
                math.ceil(frames / self.vae_factor))

    @property
    def num_samples(self) -> int:
        return round(self.seconds * self.sample_rate)

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """(B, 77, D) float32 conditional contexts, one prompt at a time as Auffusion does (so no
        token padding reaches CLIP)."""
        rows = []
        for prompt in prompts:
            ids = self.tokenizer(prompt, return_tensors="pt", verbose=False).input_ids[:, :MAX_TOKENS]
            hidden = self.text_encoder(ids.to(self.device)).last_hidden_state
            hidden = F.pad(hidden, (0, 0, 0, MAX_TOKENS - hidden.shape[1]))
            rows.append(self.adapter(hidden.to(self.adapter.proj.weight.dtype)))
        return torch.cat(rows).float()

    def null_text(self, batch: int) -> torch.Tensor:
        """The unconditional context: zeros (Auffusion's negative prompt embedding)."""
        return torch.zeros(batch, MAX_TOKENS, self.adapter.norm.normalized_shape[0], device=self.device)

    def pooled_text(self, context: torch.Tensor) -> torch.Tensor:
        """(B, D): the mean over all 77 rows, padding included (the discriminator's
        ``audio_text_emb.mean(dim=1)``)."""
        return context.float().mean(dim=1)

    @torch.no_grad()
    def silence_latent(self) -> torch.Tensor:
        """(C, mel / 8, 128) float32 latent of 10.24 s of silence, the VAE posterior mean times the
        scaling factor (MMDisCo draws one posterior sample once per run; the mean is that draw
        without its noise), computed once per device."""
        if self._silence is None or self._silence.device != self.device:
            quiet = torch.zeros(1, round(PAD_SECONDS * self.sample_rate), device=self.device)
            image = mel.to_image(mel.log_mel(quiet), frames=self.pad_frames * self.vae_factor)
            posterior = self.vae.encode(image.to(self.vae.dtype)).latent_dist
            latent = posterior.mean * self.vae.config.scaling_factor
            self._silence = latent[0, ..., :self.pad_frames].float()
        return self._silence

    def _noise(self, shape: tuple[int, ...], generators: list[torch.Generator] | None) -> torch.Tensor:
        if generators is None:
            return torch.randn(shape, device=self.device)
        if len(generators) != shape[0]:
            raise ValueError(f"{len(generators)} generators for a batch of {shape[0]}")
        return torch.stack([torch.randn(shape[1:], generator=g, device=g.device).to(self.device)
                            for g in generators])

    @torch.no_grad()
    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                      generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """One UNet call without guidance: x (B, C, M, T) at integer timesteps t (B,) with
        contexts (B, 77, D) -> eps (B, C, M, T) float32. Frames T..127 are the silence latent
        noised to each row's t with noise drawn from that row's generator."""
        batch, frames = x.shape[0], x.shape[-1]
        if tuple(x.shape[1:3]) != self.latent_shape[:2] or frames > self.pad_frames:
            raise ValueError(f"audio latents must be (B, {self.latent_shape[0]}, {self.latent_shape[1]}, "
                             f"T <= {self.pad_frames}), not {tuple(x.shape)}")
        x = x.to(self.device, torch.float32)
        if frames < self.pad_frames:
            abar = self.alphas_cumprod[t.cpu().long()].view(-1, 1, 1, 1)
            silence = self.silence_latent()[..., frames:]
            noise = self._noise((batch, *silence.shape), generators)
            pad = abar.sqrt().float().to(self.device) * silence + (1 - abar).sqrt().float().to(self.device) * noise
            x = torch.cat([x, pad], dim=-1)
        eps = self.unet(x.to(self.unet.dtype), t.to(self.device),
                        encoder_hidden_states=context.to(self.device, self.unet.dtype)).sample
        return eps[..., :frames].float()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, M, T) latents of ``latent_shape`` -> (B, 1, seconds * 16000) float32 waveforms:
        VAE -> spectrogram image -> log-mel -> vocoder, cut to ``seconds``."""
        if tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"audio latents must be (B, *{self.latent_shape}), not {tuple(z.shape)}")
        image = self.vae.decode(z.to(self.device, self.vae.dtype) / self.vae.config.scaling_factor).sample
        wave = self.vocoder(mel.from_image(image).to(self.vocoder.conv_pre.weight.dtype))
        return wave[..., :self.num_samples].float()


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"no {path}; download auffusion/auffusion-full from {PUBLISHED} and "
                                f"point the loader at that folder ({what} is missing)")
    return path


def _weights(folder: Path, names: tuple[str, ...]) -> Path:
    _require(folder / "config.json", f"{folder.name}/config.json")
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return _require(folder / names[0], f"{folder.name}/{names[0]}")


def _pretrained(cls: type, folder: Path, names: tuple[str, ...], part: str, **kwargs: Any) -> nn.Module:
    """``cls.from_pretrained`` offline, refusing weights that leave parameters missing or
    misshapen (diffusers and transformers would fill those in at random)."""
    weights = _weights(folder, names)
    try:
        model, info = cls.from_pretrained(folder, local_files_only=True, output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:
        raise CheckpointError(f"{weights} (with its config.json): not an Auffusion {part} ({e})") from e
    bad = {k: info.get(k) for k in ("missing_keys", "mismatched_keys", "error_msgs") if info.get(k)}
    if bad:
        raise CheckpointError(f"{weights}: the Auffusion {part} weights do not fit its config.json: {bad}")
    return model


def _adapter(folder: Path) -> ConditionAdapter:
    """``config.json`` (condition_dim, cross_attention_dim) + ``condition_adapter.pt``."""
    config_path = _require(folder / "config.json", f"{folder.name}/config.json")
    weights = _require(folder / "condition_adapter.pt", f"{folder.name}/condition_adapter.pt")
    config = json.loads(config_path.read_text())
    try:
        adapter = ConditionAdapter(int(config["condition_dim"]), int(config["cross_attention_dim"]))
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{config_path}: not a condition adapter config ({e!r})") from e
    state = read_file(weights)
    load_strict(adapter, {k: v.float() for k, v in state.items()}, weights,
                f"the condition adapter {config_path} describes")
    return adapter


def _check(ok: bool, path: Path, message: str) -> None:
    if not ok:
        raise CheckpointError(f"{path}: {message}")


def load_auffusion(folder: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                   seconds: float = 2.0) -> Auffusion:
    """Auffusion from the auffusion/auffusion-full folder (unet/, vae/, text_encoder_0/ with its
    tokenizer, condition_adapter_0/, condition_config.json, vocoder/, scheduler/), every part in
    ``dtype`` on ``device``, eval mode, frozen. Sizes come from the config files, so the published
    folder and a tiny twin load through the same code."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    root = Path(folder)
    _require(root, "the folder")
    conditions_path = _require(root / "condition_config.json", "condition_config.json")
    conditions = json.loads(conditions_path.read_text())
    _check(isinstance(conditions, list) and len(conditions) == 1 and isinstance(conditions[0], dict),
           conditions_path, "expected one condition entry (Auffusion-full's CLIP text encoder)")
    try:
        text_dir = root / conditions[0]["text_encoder_name"]
        adapter_dir = root / conditions[0]["condition_adapter_name"]
    except KeyError as e:
        raise CheckpointError(f"{conditions_path}: no {e} in its entry") from e
    scheduler_path = _require(root / "scheduler" / "scheduler_config.json", "scheduler/scheduler_config.json")
    scheduler_config = json.loads(scheduler_path.read_text())
    _check(scheduler_config.get("prediction_type", "epsilon") == "epsilon", scheduler_path,
           "Auffusion predicts noise (prediction_type epsilon)")
    _check(scheduler_config.get("timestep_spacing", "leading") == "leading"
           and not scheduler_config.get("thresholding"), scheduler_path,
           "MMDisCo samples with leading timestep spacing and no thresholding")

    unet = _pretrained(UNet2DConditionModel, root / "unet", DIFFUSERS_WEIGHTS, "UNet", torch_dtype=dtype)
    vae = _pretrained(AutoencoderKL, root / "vae", DIFFUSERS_WEIGHTS, "VAE", torch_dtype=dtype)
    text_config = json.loads(_require(text_dir / "config.json", f"{text_dir.name}/config.json").read_text())
    architecture = (text_config.get("architectures") or ["CLIPTextModel"])[0]
    _check(architecture == "CLIPTextModel", text_dir / "config.json", f"{architecture} is not a CLIP text model")
    text_encoder = _pretrained(CLIPTextModel, text_dir, TRANSFORMERS_WEIGHTS, "text encoder", dtype=dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(text_dir, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"{text_dir}: no CLIP tokenizer files there ({e})") from e
    adapter = _adapter(adapter_dir)
    vocoder = load_hifigan(root / "vocoder", PUBLISHED)

    _check(adapter.proj.in_features == text_encoder.config.hidden_size, adapter_dir / "config.json",
           f"condition_dim {adapter.proj.in_features} != the text encoder's width {text_encoder.config.hidden_size}")
    _check(adapter.proj.out_features == unet.config.cross_attention_dim, adapter_dir / "config.json",
           f"cross_attention_dim {adapter.proj.out_features} != the UNet's {unet.config.cross_attention_dim}")
    _check(unet.config.in_channels == unet.config.out_channels == vae.config.latent_channels
           and vae.config.in_channels == 3, root / "unet" / "config.json",
           "the UNet's in/out channels must equal the VAE's latent channels, over a 3-channel image")
    _check(int(vocoder.config["num_mels"]) == mel.N_MELS and vocoder.hop == mel.HOP
           and vocoder.sampling_rate == mel.SAMPLE_RATE, root / "vocoder" / "config.json",
           f"Auffusion's vocoder takes {mel.N_MELS} mels at {mel.HOP}-sample hops, {mel.SAMPLE_RATE} Hz")
    _check(mel.N_MELS % (2 ** (len(vae.config.block_out_channels) - 1)) == 0, root / "vae" / "config.json",
           f"the VAE's down factor must divide {mel.N_MELS} mels")

    model = Auffusion(unet, vae, tokenizer, text_encoder, adapter, vocoder, scheduler_config, seconds)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
