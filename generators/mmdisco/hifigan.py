"""Auffusion's vocoder: a HiFi-GAN generator (256 log-mels -> 16 kHz), read from the
``vocoder/`` folder of auffusion/auffusion-full (``config.json`` + ``vocoder.pt`` holding the
generator's weight-normalised state dict under the key ``generator``).

The architecture is HiFi-GAN V1's (Kong et al. 2020) as Auffusion configures it: a 7-tap input
conv, per stage a LeakyReLU(0.1) and a transposed conv upsampling by ``upsample_rates[i]``
(kernel k, padding (k - u) / 2, or one more plus an output padding of 1 when k - u is odd) to
half the channels, then the mean of one residual block per ``resblock_kernel_sizes`` entry;
finally LeakyReLU (slope 0.01), a 7-tap conv to one channel and tanh. Weight norm is folded
into plain weights at load time (w = g * v / ||v||), as the reference removes it before use."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.checkpoints import CheckpointError, load_strict, read_file

SLOPE = 0.1


def _same(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Per dilation d: x + conv(lrelu(conv_d(lrelu(x)))) (``resblock: "1"``)."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same(kernel, d))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_same(kernel))
                                    for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, SLOPE)), SLOPE))
        return x


class ResBlock2(nn.Module):
    """Per dilation d: x + conv_d(lrelu(x)) (``resblock: "2"``)."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same(kernel, d))
                                   for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, SLOPE))
        return x


class HifiGan(nn.Module):
    """(B, num_mels, T) natural-log mel -> (B, 1, T * prod(upsample_rates)) waveform in [-1, 1]."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = dict(config)
        rates, kernels = list(config["upsample_rates"]), list(config["upsample_kernel_sizes"])
        width = int(config["upsample_initial_channel"])
        block = ResBlock1 if str(config["resblock"]) == "1" else ResBlock2
        self.num_kernels = len(config["resblock_kernel_sizes"])
        self.conv_pre = nn.Conv1d(int(config["num_mels"]), width, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(rates, kernels)):
            odd = (k - u) % 2
            self.ups.append(nn.ConvTranspose1d(width // 2 ** i, width // 2 ** (i + 1), k, u,
                                               padding=(k - u) // 2 + odd, output_padding=odd))
            for rk, rd in zip(config["resblock_kernel_sizes"], config["resblock_dilation_sizes"]):
                self.resblocks.append(block(width // 2 ** (i + 1), rk, list(rd)))
        self.conv_post = nn.Conv1d(width // 2 ** len(rates), 1, 7, padding=3)

    @property
    def sampling_rate(self) -> int:
        return int(self.config["sampling_rate"])

    @property
    def hop(self) -> int:
        """Waveform samples per mel frame."""
        return math.prod(self.config["upsample_rates"])

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``X.weight_g`` / ``X.weight_v`` pair (``torch.nn.utils.weight_norm`` over
    dim 0) by ``X.weight = g * v / ||v||``, the norm taken over all but the first axis."""
    out = {k: v for k, v in state.items() if not k.endswith((".weight_g", ".weight_v"))}
    for key, value in state.items():
        if key.endswith(".weight_v"):
            stem = key[: -len("_v")]
            v, g = value.float(), state.get(stem + "_g")
            if g is None:
                raise CheckpointError(f"{key} has no matching {stem}_g")
            norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
            out[stem] = (v * (g.float() / norm)).to(value.dtype)
    return out


def load_hifigan(folder: str | Path, published: str) -> HifiGan:
    """The vocoder of ``folder`` (``config.json`` + ``vocoder.pt``, read with ``weights_only``),
    strict-loaded in float32 eval mode. Missing files name where the weights are published."""
    folder = Path(folder)
    config_path, weights_path = folder / "config.json", folder / "vocoder.pt"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"no {path}; put the 'vocoder' folder of {published} "
                                    f"(config.json + vocoder.pt) at {folder}")
    try:
        config = json.loads(config_path.read_text())
        model = HifiGan(config)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{config_path}: not a HiFi-GAN generator config ({e!r})") from e
    saved = read_file(weights_path)
    if not isinstance(saved.get("generator"), dict):
        raise CheckpointError(f"{weights_path}: expected a dict with the key 'generator' (the HiFi-GAN state dict)")
    state = fold_weight_norm(saved["generator"])
    load_strict(model, {k: v.float() for k, v in state.items()}, weights_path,
                f"the HiFi-GAN of {config_path}")
    return model.eval().requires_grad_(False)
