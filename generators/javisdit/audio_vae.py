"""JavisDiT's audio decoder: AudioLDM2's mel VAE (diffusers ``AutoencoderKL``, 1 channel, 8
latent channels) and its HiFi-GAN vocoder (transformers ``SpeechT5HifiGan``, 64 mels -> 16 kHz),
loaded from the ``vae`` and ``vocoder`` folders of cvssp/audioldm2.

Decoding and the latent length follow JavisDiT@9b54ba3 ``models/vae_audio/audioldm2.py``
(``decode_audio``, ``prepare_latents``), which calls diffusers' ``AudioLDM2Pipeline``."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn

from ...core.checkpoints import CheckpointError

PUBLISHED = "https://huggingface.co/cvssp/audioldm2"
VAE_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
VOCODER_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
LATENT_CHANNELS, MEL_BINS, VAE_FACTOR, HOP, SAMPLE_RATE = 8, 64, 4, 160, 16000
"""The published AudioLDM2 values: VAE latent channels and down factor (2 ** (levels - 1)),
vocoder mel bins, upsampling (prod of upsample_rates) and sampling rate."""
LENGTH_MULTIPLE = 8
"""``prepare_latents`` rounds the mel length up to a multiple of 8 * the VAE factor (32 mel
frames), more than diffusers' own pipeline does."""




def audio_seconds(num_frames: int, fps: float) -> float:
    """The audio length JavisDiT generates beside a video: ``num_frames / fps`` (102 / 24 = 4.25 s
    for "4s"; ``scripts/inference.py``)."""
    return num_frames / fps


def _mel_frames(seconds: float, vae_factor: int, hop: int, sample_rate: int) -> int:
    """``prepare_latents``: int(seconds / (hop / sr)), rounded up to a multiple of 8 * factor."""
    height = int(seconds / (hop / sample_rate))
    step = vae_factor * LENGTH_MULTIPLE
    return int(math.ceil(height / step)) * step if height % step else height


def audio_latent_shape(seconds: float, latent_channels: int = LATENT_CHANNELS, mel_bins: int = MEL_BINS,
                       vae_factor: int = VAE_FACTOR, hop: int = HOP,
                       sample_rate: int = SAMPLE_RATE) -> tuple[int, int, int]:
    """(C, L, mel / factor) of JavisDiT's audio latent for ``seconds`` (``prepare_latents``):
    4.25 s -> 425 mel frames -> 448 -> (8, 112, 16) with the published models."""
    return latent_channels, _mel_frames(seconds, vae_factor, hop, sample_rate) // vae_factor, mel_bins // vae_factor


def num_samples(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Waveform samples kept after decoding (``original_waveform_length``): 4.25 s -> 68,000."""
    return int(seconds * sample_rate)


class AudioLDM2Decoder(nn.Module):
    """Audio latents (B, 8, L, 16) -> mono waveforms at ``sample_rate``."""

    def __init__(self, vae: nn.Module, vocoder: nn.Module):
        super().__init__()
        self.vae = vae
        self.vocoder = vocoder

    @property
    def sample_rate(self) -> int:
        return int(self.vocoder.config.sampling_rate)

    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def hop(self) -> int:
        return math.prod(self.vocoder.config.upsample_rates)

    def latent_shape(self, seconds: float) -> tuple[int, int, int]:
        """``audio_latent_shape`` with this model's sizes."""
        return audio_latent_shape(seconds, int(self.vae.config.latent_channels),
                                  int(self.vocoder.config.model_in_dim), self.vae_factor, self.hop, self.sample_rate)

    def latent_length(self, seconds: float) -> int:
        """L, the latent's time length for ``seconds`` of audio."""
        return self.latent_shape(seconds)[1]

    @torch.no_grad()
    def decode(self, z: torch.Tensor, seconds: float | None = None) -> torch.Tensor:
        """(B, C, L, F) latents -> (B, samples) float32 waveforms, cut to ``seconds`` (as
        ``decode_audio`` cuts to ``original_waveform_length``) or, without it, the whole vocoder output
        (about L * factor * hop samples)."""
        weight = next(self.vae.parameters())
        mel = self.vae.decode(z.to(weight) * (1 / self.vae.config.scaling_factor)).sample
        wave = self.vocoder(mel.squeeze(1).to(next(self.vocoder.parameters()).dtype)).float()
        return wave if seconds is None else wave[:, :num_samples(seconds, self.sample_rate)]


def _files(root: Path, name: str, weights: tuple[str, ...]) -> tuple[Path, Path]:
    """(folder, weights file) of one part, or a clear error naming what is missing."""
    folder = root / name
    found = [folder / w for w in weights if (folder / w).is_file()]
    for path in [folder / "config.json", found[0] if found else folder / weights[0]]:
        if not path.is_file():
            raise FileNotFoundError(f"no {path}; put the '{name}' folder of {PUBLISHED} "
                                  f"(config.json + {weights[0]}) at {folder}")
    return folder, found[0]


def _load(cls: type, folder: Path, weights: Path, part: str, **kwargs) -> nn.Module:
    """``cls.from_pretrained`` offline, refusing files that leave weights missing or misshapen
    (both libraries would otherwise fill those in at random)."""
    try:
        model, info = cls.from_pretrained(folder, local_files_only=True, output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{weights} (with its config.json): not an AudioLDM2 {part} this code can "
                            f"load ({e})") from e
    bad = {k: info.get(k) for k in ("missing_keys", "mismatched_keys", "error_msgs") if info.get(k)}
    if bad:
        raise CheckpointError(f"{weights}: the AudioLDM2 {part} weights do not fit its config.json: {bad}")
    return model


def load_audioldm2(root: str | Path, dtype: torch.dtype = torch.float32,
                   device: str | torch.device = "cpu") -> AudioLDM2Decoder:
    """The decoder from ``root/vae`` and ``root/vocoder`` (the cvssp/audioldm2 layout; safetensors,
    or .bin read with ``weights_only``), in eval mode. Sizes come from their config.json."""
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan

    root = Path(root)
    vae_dir, vae_file = _files(root, "vae", VAE_WEIGHTS)
    voc_dir, voc_file = _files(root, "vocoder", VOCODER_WEIGHTS)
    vae = _load(AutoencoderKL, vae_dir, vae_file, "VAE", torch_dtype=dtype)
    vocoder = _load(SpeechT5HifiGan, voc_dir, voc_file, "vocoder", dtype=dtype)
    if vae.config.in_channels != 1 or vocoder.config.model_in_dim % (2 ** (len(vae.config.block_out_channels) - 1)):
        raise CheckpointError(f"{vae_dir / 'config.json'}: a {vae.config.in_channels}-channel VAE or mel bins "
                            f"({vocoder.config.model_in_dim}) that its factor does not divide: not AudioLDM2's")
    return AudioLDM2Decoder(vae, vocoder).to(device).eval().requires_grad_(False)
