"""OpenSora-VAE-v1.2 (JavisDiT's video VAE) in plain torch: an SDXL-style image VAE applied per
frame (diffusers ``AutoencoderKL``) followed by a causal 3D-conv VAE that folds 17 frames into 5
latent frames, loaded from the published ``config.json`` + ``model.safetensors``.

The decode reproduces ``VideoAutoencoderPipeline.decode`` of Open-Sora v1.2 / JavisDiT@9b54ba3
(``models/vae/vae.py``, ``vae_temporal.py``): un-normalise, temporal decode in 5-latent-frame
chunks each cropped to its frame count, then the image VAE in micro batches."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.checkpoints import CheckpointError, load_strict, read_file

PUBLISHED = "https://huggingface.co/hpcai-tech/OpenSora-VAE-v1.2"
SPATIAL_PREFIX = "spatial_vae.module."
TEMPORAL_PREFIX = "temporal_vae."
SPATIAL_SCALING = 0.18215
"""``VideoAutoencoderKL``'s default scaling factor, which ``OpenSoraVAE_V1_2`` keeps (it does not
use the 0.13025 of the SDXL VAE's own config)."""
SHIFT = (-0.10, 0.34, 0.27, 0.98)
SCALE = (3.85, 2.32, 2.33, 3.06)
MICRO_FRAME_SIZE = 17
MICRO_BATCH_SIZE = 4
GROUPS = 32
"""GroupNorm groups of both VAEs; a state dict does not record them."""
NUM_FRAMES = {"1x": 51, "2x": 102, "4x": 204, "8x": 408, "16x": 816,
              "2s": 51, "4s": 102, "8s": 204, "16s": 408, "32s": 816}
"""JavisDiT's named clip lengths (``datasets/aspect.py`` ``NUM_FRAMES_MAP``): "4s" is 102 frames
(six 17-frame chunks), whatever the fps."""




def num_frames_for(duration: str | int) -> int:
    """Frames for a clip length as JavisDiT's ``get_num_frames`` reads it ("4s" -> 102, 51 -> 51)."""
    return NUM_FRAMES[duration] if duration in NUM_FRAMES else int(duration)


def latent_frames(num_frames: int, micro_frame_size: int = MICRO_FRAME_SIZE, time_factor: int = 4) -> int:
    """Latent frames for ``num_frames`` (``VideoAutoencoderPipeline.get_latent_size``): each full
    chunk of ``micro_frame_size`` frames gives ceil(chunk / 4) latent frames, and so does the rest."""
    per_chunk = math.ceil(micro_frame_size / time_factor)
    return per_chunk * (num_frames // micro_frame_size) + math.ceil(num_frames % micro_frame_size / time_factor)


def video_latent_shape(duration: str | int, height: int, width: int) -> tuple[int, int, int, int]:
    """(4, T', H/8, W/8) for a clip of ``duration`` frames (or a name such as "4s") at H x W:
    "4s" at 240p 9:16 (240 x 426) is (4, 30, 30, 53); spatial sizes round down as in the reference."""
    return 4, latent_frames(num_frames_for(duration)), height // 8, width // 8


# ---- temporal VAE (``VAE_Temporal``) -----------------------------------------------------------

class CausalConv3d(nn.Module):
    """A 3D conv padded only at the start in time (zeros), 'same' in space, so frame t sees no
    later frame; the weights sit under ``.conv`` as in the reference."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, bias: bool = True):
        super().__init__()
        self.pad = (kernel // 2, kernel // 2, kernel // 2, kernel // 2, kernel - stride, 0)
        self.conv = nn.Conv3d(cin, cout, kernel, stride=(stride, 1, 1), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice plus a (1x1x1-projected when widths differ) skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, cin)
        self.conv1 = CausalConv3d(cin, cout, bias=False)
        self.norm2 = nn.GroupNorm(GROUPS, cout)
        self.conv2 = CausalConv3d(cout, cout, bias=False)
        self.conv3 = CausalConv3d(cin, cout, kernel=1, bias=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.conv3 is None else self.conv3(x))


@dataclass(frozen=True)
class TemporalSpec:
    """The temporal VAE's architecture as read off its state dict (published: 4 channels, base
    128, level widths 128/256/256/512, 4 blocks a level, time halved after levels 1 and 2)."""

    channels: int
    latent: int
    base: int
    widths: tuple[int, ...]
    blocks: int
    time_down: tuple[bool, ...]

    @property
    def time_factor(self) -> int:
        return 2 ** sum(self.time_down)


class TemporalEncoder(nn.Module):
    """Frames (B, C, T, H, W) -> 2*latent moments at T / time_factor."""

    def __init__(self, s: TemporalSpec):
        super().__init__()
        self.conv_in = CausalConv3d(s.channels, s.base, bias=False)
        self.block_res_blocks = nn.ModuleList()
        self.conv_blocks = nn.ModuleList()
        prev = s.base
        for i, width in enumerate(s.widths):
            self.block_res_blocks.append(nn.ModuleList(
                ResBlock(prev if j == 0 else width, width) for j in range(s.blocks)))
            prev = width
            if i < len(s.widths) - 1:
                self.conv_blocks.append(CausalConv3d(width, width, stride=2) if s.time_down[i] else nn.Identity())
        self.res_blocks = nn.ModuleList(ResBlock(prev, prev) for _ in range(s.blocks))
        self.norm1 = nn.GroupNorm(GROUPS, prev)
        self.conv2 = CausalConv3d(prev, 2 * s.latent, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for i, level in enumerate(self.block_res_blocks):
            for block in level:
                x = block(x)
            if i < len(self.conv_blocks):
                x = self.conv_blocks[i](x)
        for block in self.res_blocks:
            x = block(x)
        return self.conv2(F.silu(self.norm1(x)))


class TemporalDecoder(nn.Module):
    """Latent (B, latent, T', H, W) -> frames at T' * time_factor; a time upsample is a conv to
    twice the width and a depth-to-time shuffle (channel 2c+k becomes frame 2t+k of channel c)."""

    def __init__(self, s: TemporalSpec):
        super().__init__()
        top = s.widths[-1]
        self.conv1 = CausalConv3d(s.latent, top)
        self.res_blocks = nn.ModuleList(ResBlock(top, top) for _ in range(s.blocks))
        self.block_res_blocks = nn.ModuleList()
        self.conv_blocks = nn.ModuleList()
        for i, width in enumerate(s.widths):
            src = s.widths[i + 1] if i + 1 < len(s.widths) else top
            self.block_res_blocks.append(nn.ModuleList(
                ResBlock(src if j == 0 else width, width) for j in range(s.blocks)))
            if i > 0:
                self.conv_blocks.append(CausalConv3d(width, 2 * width) if s.time_down[i - 1] else nn.Identity())
        self.norm1 = nn.GroupNorm(GROUPS, s.widths[0])
        self.conv_out = CausalConv3d(s.widths[0], s.channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv1(z)
        for block in self.res_blocks:
            x = block(x)
        for i in reversed(range(len(self.block_res_blocks))):
            for block in self.block_res_blocks[i]:
                x = block(x)
            if i > 0 and not isinstance(self.conv_blocks[i - 1], nn.Identity):
                x = self.conv_blocks[i - 1](x)
                b, c2, t, h, w = x.shape
                x = x.view(b, c2 // 2, 2, t, h, w).permute(0, 1, 3, 2, 4, 5).reshape(b, c2 // 2, 2 * t, h, w)
        return self.conv_out(F.silu(self.norm1(x)))


class TemporalVAE(nn.Module):
    """``VAE_Temporal``: the causal encoder/decoder and their 1x1x1 quant convs."""

    def __init__(self, s: TemporalSpec):
        super().__init__()
        self.spec = s
        self.encoder = TemporalEncoder(s)
        self.quant_conv = CausalConv3d(2 * s.latent, 2 * s.latent, kernel=1)
        self.post_quant_conv = CausalConv3d(s.latent, s.latent, kernel=1)
        self.decoder = TemporalDecoder(s)

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One chunk of frames -> latent: front-padded with zero frames to a multiple of the time
        factor; the posterior mean, or a sample when a generator is given."""
        x = F.pad(x, (0, 0, 0, 0, (-x.shape[2]) % self.spec.time_factor, 0))
        mean, logvar = self.quant_conv(self.encoder(x)).chunk(2, dim=1)
        if generator is None:
            return mean
        noise = torch.randn(mean.shape, generator=generator, device=generator.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar.clamp(-30.0, 20.0)) * noise.to(mean.device)

    def decode(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """One chunk of latent frames -> ``num_frames`` frames: the first frames, which stand for
        the encoder's front padding, are cropped."""
        x = self.decoder(self.post_quant_conv(z))
        return x[:, :, (-num_frames) % self.spec.time_factor:]


# ---- the pipeline ------------------------------------------------------------------------------

class OpenSoraVAE(nn.Module):
    """OpenSora-VAE-v1.2: ``decode`` turns JavisDiT video latents into frames; ``encode`` is the
    inverse (deterministic unless given a generator)."""

    def __init__(self, spatial: nn.Module, temporal: TemporalVAE, shift: torch.Tensor, scale: torch.Tensor,
                 micro_frame_size: int = MICRO_FRAME_SIZE, micro_batch_size: int = MICRO_BATCH_SIZE):
        super().__init__()
        self.spatial_vae = spatial
        self.temporal_vae = temporal
        self.register_buffer("shift", shift.reshape(1, -1, 1, 1, 1))
        self.register_buffer("scale", scale.reshape(1, -1, 1, 1, 1))
        self.micro_frame_size = micro_frame_size
        self.micro_batch_size = micro_batch_size
        self.micro_latent_size = math.ceil(micro_frame_size / temporal.spec.time_factor)

    @property
    def dtype(self) -> torch.dtype:
        return self.scale.dtype

    def latent_size(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(T', H', W') of the latent of a num_frames x height x width clip."""
        return (latent_frames(num_frames, self.micro_frame_size, self.temporal_vae.spec.time_factor),
                height // 8, width // 8)

    def max_frames(self, latent_len: int) -> int:
        """The most frames a latent of ``latent_len`` frames decodes to: full chunks of
        ``micro_frame_size``, then time_factor frames per remaining latent frame."""
        full, rest = divmod(latent_len, self.micro_latent_size)
        return full * self.micro_frame_size + rest * self.temporal_vae.spec.time_factor

    @torch.no_grad()
    def decode(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B, 4, T', h, w) latents -> (B, 3, num_frames, 8h, 8w) frames in the VAE's dtype, about
        [-1, 1] and not clamped (the reference clamps when saving). ``num_frames`` defaults to
        ``max_frames(T')`` and must give T' latent frames."""
        t_lat = z.shape[2]
        num_frames = self.max_frames(t_lat) if num_frames is None else int(num_frames)
        if self.latent_size(num_frames, 8, 8)[0] != t_lat:
            raise ValueError(f"{num_frames} frames need {self.latent_size(num_frames, 8, 8)[0]} latent "
                             f"frames, but the latent has {t_lat}")
        z = z.to(self.scale) * self.scale + self.shift
        chunks, left = [], num_frames
        for start in range(0, t_lat, self.micro_latent_size):
            chunk = z[:, :, start:start + self.micro_latent_size]
            chunks.append(self.temporal_vae.decode(chunk, min(self.micro_frame_size, left)))
            left -= self.micro_frame_size
        x_z = torch.cat(chunks, dim=2)
        del z, chunks
        b, c, t, h, w = x_z.shape
        flat = x_z.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        out = None
        for i in range(0, b * t, self.micro_batch_size):
            frames = self.spatial_vae.decode(flat[i:i + self.micro_batch_size] / SPATIAL_SCALING).sample
            if out is None:
                out = frames.new_empty(b * t, *frames.shape[1:])
            out[i:i + frames.shape[0]] = frames
        return out.view(b, t, *out.shape[1:]).permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 3, T, H, W) frames in [-1, 1] -> normalised (B, 4, T', H/8, W/8) latents. The
        reference samples both posteriors; without a generator this takes their means."""
        b, _, t, h, w = x.shape
        flat = x.to(self.scale).permute(0, 2, 1, 3, 4).reshape(b * t, -1, h, w)
        parts = []
        for i in range(0, b * t, self.micro_batch_size):
            dist = self.spatial_vae.encode(flat[i:i + self.micro_batch_size]).latent_dist
            parts.append((dist.mode() if generator is None else dist.sample(generator)) * SPATIAL_SCALING)
        x_z = torch.cat(parts).view(b, t, *parts[0].shape[1:]).permute(0, 2, 1, 3, 4)
        z = torch.cat([self.temporal_vae.encode(x_z[:, :, i:i + self.micro_frame_size], generator)
                       for i in range(0, t, self.micro_frame_size)], dim=2)
        return (z - self.shift) / self.scale


# ---- loading -----------------------------------------------------------------------------------

_LEGACY_ATTENTION = {"query.": "to_q.", "key.": "to_k.", "value.": "to_v.", "proj_attn.": "to_out.0."}


def _count(state: Mapping[str, torch.Tensor], pattern: str) -> int:
    found = {int(m.group(1)) for m in map(re.compile(pattern).match, state) if m}
    return max(found) + 1 if found else 0


def _need(state: Mapping[str, torch.Tensor], key: str, path: Path) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(f"{path}: no '{key}': not an OpenSora-VAE-v1.2 checkpoint")
    return state[key]


def spatial_config(state: Mapping[str, torch.Tensor], path: Path) -> dict:
    """``AutoencoderKL`` arguments for the image VAE in ``state`` (keys without the prefix): the
    SDXL VAE's config (PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers, 'vae') with widths, depth
    and channels read off the shapes."""
    levels = _count(state, r"encoder\.down_blocks\.(\d+)\.")
    if not levels:
        raise CheckpointError(f"{path}: no '{SPATIAL_PREFIX}encoder.down_blocks.*': not an OpenSora-VAE-v1.2 checkpoint")
    return dict(
        in_channels=int(_need(state, "encoder.conv_in.weight", path).shape[1]),
        out_channels=int(_need(state, "decoder.conv_out.weight", path).shape[0]),
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(int(_need(state, f"encoder.down_blocks.{i}.resnets.0.conv2.weight", path).shape[0])
                                 for i in range(levels)),
        layers_per_block=_count(state, r"encoder\.down_blocks\.0\.resnets\.(\d+)\."),
        latent_channels=int(_need(state, "decoder.conv_in.weight", path).shape[1]),
        norm_num_groups=GROUPS, act_fn="silu", sample_size=1024, scaling_factor=SPATIAL_SCALING,
        force_upcast=True, use_quant_conv="quant_conv.weight" in state,
        use_post_quant_conv="post_quant_conv.weight" in state,
        mid_block_add_attention=any(k.startswith("decoder.mid_block.attentions.") for k in state),
    )


def temporal_spec(state: Mapping[str, torch.Tensor], path: Path) -> TemporalSpec:
    """The temporal VAE's architecture read off ``state`` (keys without the prefix)."""
    levels = _count(state, r"decoder\.block_res_blocks\.(\d+)\.")
    if not levels:
        raise CheckpointError(f"{path}: no '{TEMPORAL_PREFIX}decoder.block_res_blocks.*': "
                            f"not an OpenSora-VAE-v1.2 checkpoint")
    return TemporalSpec(
        channels=int(_need(state, "decoder.conv_out.conv.weight", path).shape[0]),
        latent=int(_need(state, "post_quant_conv.conv.weight", path).shape[0]),
        base=int(_need(state, "encoder.conv_in.conv.weight", path).shape[0]),
        widths=tuple(int(_need(state, f"decoder.block_res_blocks.{i}.0.conv2.conv.weight", path).shape[0])
                     for i in range(levels)),
        blocks=_count(state, r"decoder\.block_res_blocks\.0\.(\d+)\."),
        time_down=tuple(f"decoder.conv_blocks.{i}.conv.weight" in state for i in range(levels - 1)),
    )


def load_opensora_vae(folder: str | Path, dtype: torch.dtype = torch.float32,
                      device: str | torch.device = "cpu") -> OpenSoraVAE:
    """OpenSora-VAE-v1.2 in eval mode from ``folder`` (``model.safetensors`` and, optionally,
    ``config.json``: micro sizes and shift/scale, else the published values; ``shift``/``scale``
    stored in the weights win, as they do when the reference loads them)."""
    from diffusers import AutoencoderKL

    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"no OpenSora-VAE-v1.2 weights at {weights}; download config.json and "
                              f"model.safetensors from {PUBLISHED} into {folder}")
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    state = read_file(weights, device)

    spatial_state, temporal_state = {}, {}
    stored = {k: state[k] for k in ("shift", "scale") if k in state}
    for key, value in state.items():
        value = value.to(dtype) if value.is_floating_point() else value
        if key.startswith(SPATIAL_PREFIX):
            key = key[len(SPATIAL_PREFIX):]
            for old, new in _LEGACY_ATTENTION.items():
                key = re.sub(rf"(mid_block\.attentions\.\d+\.){re.escape(old)}", rf"\g<1>{new}", key)
            spatial_state[key] = value
        elif key.startswith(TEMPORAL_PREFIX):
            temporal_state[key[len(TEMPORAL_PREFIX):]] = value
    del state

    with torch.device("meta"):
        spatial = AutoencoderKL(**spatial_config(spatial_state, weights))
        temporal = TemporalVAE(temporal_spec(temporal_state, weights))
    # built on the meta device: every tensor comes from the file
    load_strict(spatial, spatial_state, weights, "the spatial VAE read off its weights", assign=True)
    load_strict(temporal, temporal_state, weights, "the temporal VAE read off its weights", assign=True)

    def vector(name: str, default: tuple[float, ...]) -> torch.Tensor:
        value = stored[name] if name in stored else torch.tensor(config.get(name, default))
        value = value.to(device=device, dtype=dtype).flatten()
        if value.numel() != temporal.spec.latent:
            raise CheckpointError(f"{weights}: '{name}' has {value.numel()} values for "
                                f"{temporal.spec.latent} latent channels")
        return value

    vae = OpenSoraVAE(spatial, temporal, vector("shift", SHIFT), vector("scale", SCALE),
                      micro_frame_size=int(config.get("micro_frame_size") or MICRO_FRAME_SIZE),
                      micro_batch_size=int((config.get("vae_2d") or {}).get("micro_batch_size") or MICRO_BATCH_SIZE))
    return vae.eval().requires_grad_(False)

