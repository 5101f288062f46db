"""Auffusion's spectrogram image: a 16 kHz waveform as a log-mel spectrogram (256 Slaney mels,
0-8 kHz) drawn as a 3-channel image in [-1, 1] for its Stable-Diffusion VAE, and back.

The numbers are those of MMDisCo's Auffusion wrapper (``mmdisco/models/diffusion/audio.py``,
``auffusion/converter.py``): the waveform peak-normalised to 0.95, reflect-padded by
(n_fft - hop) / 2 each side, an STFT without centring (n_fft 2048, hop 160, Hann window 1024),
magnitude sqrt(re^2 + im^2 + 1e-9), Slaney mel filters, natural log clamped to
[log 1e-5, log 200] and rescaled to [0, 1], the mel axis flipped (low frequencies at the bottom
of the image), repeated to 3 channels, padded with 0 (silence) to the image width, then 2x - 1.
Decoding takes channel 0 of the [0, 1] image back to log-mel for the vocoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SAMPLE_RATE, N_FFT, HOP, WIN, N_MELS, F_MIN, F_MAX = 16000, 2048, 160, 1024, 256, 0.0, 8000.0
LOG_MIN, LOG_MAX = math.log(1e-5), math.log(200.0)
PEAK = 0.95
"""``librosa.util.normalize(audio) * 0.95`` before the STFT."""
IMAGE_FRAMES = 1024
"""Auffusion's image width: 10.24 s of 160-sample frames."""


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's auditory-toolbox mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic
    (27 mels per factor 6.4) above."""
    linear = hz / (200.0 / 3.0)
    log = 15.0 + torch.log(torch.clamp(hz, min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * (200.0 / 3.0)
    log = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log, linear)


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced on the Slaney mel scale and
    area-normalised (each scaled by 2 / its width in Hz), built in float64 and returned in float32
    (the filters ``librosa.filters.mel`` gives with its defaults)."""
    freqs = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    edges = _mel_to_hz(torch.linspace(float(_hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
                                      float(_hz_to_mel(torch.tensor(f_max, dtype=torch.float64))),
                                      n_mels + 2, dtype=torch.float64))
    width = edges.diff()
    dist = edges[:, None] - freqs[None, :]
    rising = -dist[:-2] / width[:-1, None]
    falling = dist[2:] / width[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights = weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.float()


def log_mel(wave: torch.Tensor) -> torch.Tensor:
    """(B, samples) waveforms in [-1, 1] at 16 kHz -> (B, 256, samples // 160) natural-log mel
    magnitudes clamped below at log 1e-5. Each row is peak-normalised to 0.95 first; a silent
    row stays silent."""
    wave = wave.float()
    peak = wave.abs().amax(dim=-1, keepdim=True)
    wave = wave / torch.where(peak > 0, peak, torch.ones_like(peak)) * PEAK
    pad = (N_FFT - HOP) // 2
    wave = F.pad(wave[:, None], (pad, pad), mode="reflect")[:, 0]
    spec = torch.stft(wave, N_FFT, hop_length=HOP, win_length=WIN,
                      window=torch.hann_window(WIN, device=wave.device), center=False,
                      normalized=False, onesided=True, return_complex=True)
    magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)
    mel = mel_filterbank().to(wave.device) @ magnitude
    return torch.log(torch.clamp(mel, min=1e-5))


def to_image(logmel: torch.Tensor, frames: int | None = IMAGE_FRAMES) -> torch.Tensor:
    """(B, 256, T) log-mel -> (B, 3, 256, frames) VAE input in [-1, 1]: rescaled to [0, 1],
    cropped or padded on the right with 0 (the floor, i.e. silence) to ``frames`` (None: keep
    T), mel axis flipped, three equal channels, then 2x - 1."""
    unit = ((logmel.float() - LOG_MIN) / (LOG_MAX - LOG_MIN)).clamp(0.0, 1.0)
    if frames is not None:
        unit = F.pad(unit, (0, frames - unit.shape[-1])) if unit.shape[-1] < frames else unit[..., :frames]
    image = unit.flip(-2)[:, None].expand(-1, 3, -1, -1)
    return 2.0 * image - 1.0


def from_image(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, 256, T) VAE output in [-1, 1] -> (B, 256, T) log-mel for the vocoder: the image
    taken to [0, 1] (clamped), its mel axis flipped back, channel 0 rescaled to
    [log 1e-5, log 200]."""
    unit = (image.float() / 2.0 + 0.5).clamp(0.0, 1.0)
    return unit[:, 0].flip(-2) * (LOG_MAX - LOG_MIN) + LOG_MIN
