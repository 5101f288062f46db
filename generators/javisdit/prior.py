"""JavisDiT's spatio-temporal prior estimator (ST-prior, ``JavisVerse/JavisDiT-v0.1-prior``).

ImageBind's text hidden states (B, 77, 1024) go through a linear map to the prior width, a
pre-norm encoder-decoder transformer whose decoder reads 32 spatial + 32 temporal learned
queries, and a linear map to a diagonal Gaussian (mean, log-variance) per query. One draw from it
gives the spatial and temporal priors (B, 32, 128) the DiT cross-attends to.

The reference builds ``torch.nn.Transformer`` with a tanh-GELU module as its activation, but
torch does not run that GELU anywhere at inference:
- decoder layers: ``nn.Transformer`` deep-copies its decoder layer, and
  ``TransformerDecoderLayer.__setstate__`` sets ``activation`` to ``F.relu`` whenever the
  activation is a module. So the decoder feed-forward is ReLU, in training too.
- encoder layers: the reference runs in eval mode with gradients off, so torch's fused
  encoder-layer kernel runs. That kernel takes only a "gelu" flag and applies the exact (erf)
  GELU.
The layers here do both explicitly, so the numbers match the reference's inference whatever the
grad mode.

The random draw is split from the deterministic part (``PriorDistribution``), so a caller can
store the mean and std once per prompt and draw the noise per candidate seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.checkpoints import CheckpointError, load_strict, read_file

PUBLISHED = "https://huggingface.co/JavisVerse/JavisDiT-v0.1-prior"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
UNUSED_PREFIXES = ("text_encoder.", "video_embedder.", "audio_embedder.", "video_pos_embed.",
                   "audio_pos_embed.", "va_spatial_encoder.", "va_temporal_encoder.",
                   "discriminator.", "onset_predictor.")
"""Modules a saved prior may hold that inference never runs: the ImageBind text encoder (a
submodule of the reference's model) and the training-only video-audio encoders, discriminator
and onset head (``encode_va`` / ``pred_onset``, both off at inference). Their keys are dropped."""
LOGVAR_RANGE = (-30.0, 20.0)
LN_EPS = 1e-5  # nn.Transformer's default, used by every norm of the reference's transformer


@dataclass(frozen=True)
class PriorConfig:
    """The architecture fields of the reference's ``STPriorExtractorConfig`` (its defaults)."""

    text_emb_dim: int = 1024
    spatial_token_num: int = 32
    temporal_token_num: int = 32
    hidden_size: int = 512
    out_dim: int = 128
    nhead: int = 4
    num_encoder_layers: int = 4
    num_decoder_layers: int = 4
    feedforward_scale: int = 4

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PriorConfig":
        """The fields of a published ``config.json``; the others (training switches, transformers
        metadata) do not change the inference architecture and are ignored."""
        return cls(**{f.name: int(data[f.name]) for f in fields(cls) if f.name in data})


@dataclass
class PriorDistribution:
    """The Gaussian the prior is drawn from: ``mean`` and ``std`` (B, S+T, C), spatial rows first.

    ``sample`` broadcasts, so a batch-1 distribution takes noise for many candidates at once."""

    mean: torch.Tensor
    std: torch.Tensor
    spatial_tokens: int

    @property
    def eps_shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape)

    def draw(self, generator: torch.Generator | None = None, batch: int | None = None) -> torch.Tensor:
        """Standard-normal noise in float32, as the reference draws it (``torch.randn`` on the
        CPU, then cast): on the generator's device, the global CPU generator when None."""
        shape = self.eps_shape if batch is None else (batch, *self.eps_shape[1:])
        device = generator.device if generator is not None else torch.device("cpu")
        return torch.randn(shape, generator=generator, device=device, dtype=torch.float32)

    def sample(self, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(spatial, temporal) = mean + std * eps, split after the spatial tokens."""
        x = self.mean + self.std * eps.to(device=self.mean.device, dtype=self.mean.dtype)
        return x[:, :self.spatial_tokens], x[:, self.spatial_tokens:]


class _EncoderLayer(nn.Module):
    """Pre-norm self-attention + feed-forward with the exact GELU (see the module docstring)."""

    def __init__(self, width: int, heads: int, ff: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.linear1 = nn.Linear(width, ff)
        self.linear2 = nn.Linear(ff, width)
        self.norm1 = nn.LayerNorm(width, eps=LN_EPS)
        self.norm2 = nn.LayerNorm(width, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, need_weights=False)[0]
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


class _DecoderLayer(nn.Module):
    """Pre-norm self-attention, cross-attention to the text, feed-forward with ReLU (see the
    module docstring)."""

    def __init__(self, width: int, heads: int, ff: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.linear1 = nn.Linear(width, ff)
        self.linear2 = nn.Linear(ff, width)
        self.norm1 = nn.LayerNorm(width, eps=LN_EPS)
        self.norm2 = nn.LayerNorm(width, eps=LN_EPS)
        self.norm3 = nn.LayerNorm(width, eps=LN_EPS)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, need_weights=False)[0]
        h = self.norm2(x)
        x = x + self.multihead_attn(h, memory, memory, need_weights=False)[0]
        return x + self.linear2(F.relu(self.linear1(self.norm3(x))))


class _Stack(nn.Module):
    def __init__(self, layers: list[nn.Module], width: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(width, eps=LN_EPS)


class _Transformer(nn.Module):
    """The encoder-decoder under the names ``nn.Transformer`` gives its parameters."""

    def __init__(self, width: int, heads: int, ff: int, n_encoder: int, n_decoder: int) -> None:
        super().__init__()
        self.encoder = _Stack([_EncoderLayer(width, heads, ff) for _ in range(n_encoder)], width)
        self.decoder = _Stack([_DecoderLayer(width, heads, ff) for _ in range(n_decoder)], width)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        for layer in self.encoder.layers:
            src = layer(src)
        memory = self.encoder.norm(src)
        for layer in self.decoder.layers:
            tgt = layer(tgt, memory)
        return self.decoder.norm(tgt)


class STPrior(nn.Module):
    """The ST-prior estimator with the official parameter names (``STPriorExtractor``)."""

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        c = self.config = config
        self.spatial_query_emb = nn.Parameter(torch.zeros(1, c.spatial_token_num, c.hidden_size))
        self.temporal_query_emb = nn.Parameter(torch.zeros(1, c.temporal_token_num, c.hidden_size))
        self.in_proj = nn.Linear(c.text_emb_dim, c.hidden_size)
        self.prior_extractor = _Transformer(c.hidden_size, c.nhead, c.hidden_size * c.feedforward_scale,
                                            c.num_encoder_layers, c.num_decoder_layers)
        self.out_proj = nn.Linear(c.hidden_size, 2 * c.out_dim)  # mean, log-variance

    def distribution(self, text_hidden: torch.Tensor) -> PriorDistribution:
        """The deterministic part: ImageBind text hidden states (B, 77, D) -> the Gaussian."""
        p = self.out_proj.weight
        x = self.in_proj(text_hidden.to(device=p.device, dtype=p.dtype))
        queries = torch.cat((self.spatial_query_emb, self.temporal_query_emb), dim=1)
        out = self.out_proj(self.prior_extractor(x, queries.expand(x.shape[0], -1, -1)))
        mean, logvar = out.chunk(2, dim=-1)
        std = torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE))
        return PriorDistribution(mean, std, self.config.spatial_token_num)

    def forward(self, text_hidden: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(spatial (B, 32, C), temporal (B, 32, C)): one draw, from ``generator`` if given."""
        dist = self.distribution(text_hidden)
        return dist.sample(dist.draw(generator))


def text_tokens(texts: Sequence[str], tokenizer) -> torch.Tensor:
    """(B, 77) token ids as JavisDiT's copy of ImageBind's tokenizer makes them from ImageBind's
    BPE ``tokenizer``: start token, BPE, end token, cut to 77 (so a long text loses its end
    token, unlike imagebind-unofficial's tokenizer, which forces one into the last slot), zero
    padding."""
    if isinstance(texts, str) or not texts:
        raise ValueError("text_tokens takes a non-empty list of texts")
    sot, eot = tokenizer.encoder["<|startoftext|>"], tokenizer.encoder["<|endoftext|>"]
    out = torch.zeros(len(texts), tokenizer.context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = ([sot] + tokenizer.encode(text) + [eot])[:tokenizer.context_length]
        out[i, :len(ids)] = torch.tensor(ids)
    return out


@torch.no_grad()
def text_hidden(imagebind: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The (B, 77, D) input of the prior: the output of an already-loaded ImageBind's text trunk
    for ``text_tokens``, before its head (what JavisDiT's ``return_hidden_states=True`` returns)."""
    device = next(imagebind.parameters()).device
    inputs = imagebind.modality_preprocessors["text"](text=tokens.to(device))
    return imagebind.modality_trunks["text"](**inputs["trunk"])


def load_prior(folder: str | Path, dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu") -> STPrior:
    """An ``STPrior`` in eval mode from a folder as published (``config.json`` and
    ``model.safetensors``, or ``pytorch_model.bin`` read with ``weights_only=True``)."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"no ST-prior config at {config_path}; the official files "
                                f"(config.json, model.safetensors) are published at {PUBLISHED}")
    config = _read_config(config_path)
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"no ST-prior weights at {folder / WEIGHT_FILES[0]}; the official "
                                f"files are published at {PUBLISHED}")
    state = {k: v for k, v in read_file(weights).items() if not k.startswith(UNUSED_PREFIXES)}
    model = STPrior(config)
    load_strict(model, state, weights, "the ST-prior its config.json describes")
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def _read_config(path: Path) -> PriorConfig:
    try:
        config = PriorConfig.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path} is not an ST-prior config: {e}") from None
    if config.hidden_size % config.nhead:
        raise CheckpointError(f"{path}: hidden_size {config.hidden_size} does not divide into "
                                   f"{config.nhead} heads")
    return config


