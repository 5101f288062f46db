"""MMDisCo's coupling for the Auffusion + VideoCrafter2 pair: a small discriminator D(x_v, x_a, t,
text) over the two noisy latents whose logit gradient steers both base models at every step.

The architecture is the public one (``MultimodalDiscriminator`` with ``VAResidualBlocks`` and a
``cat_time_and_apply_transformer`` fusion model); the module and parameter names follow the
released state dict exactly so ``auffusion_videocrafter2_vggsound.pt`` loads strictly. Internally
the video runs channel-first (B, C, T, H, W) and the audio as (B, C, time, mel); the public code
keeps (B, T, C, H, W), which changes nothing but the order of axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...core.checkpoints import CheckpointError, load_strict, read_file

PUBLISHED = "https://huggingface.co/AkioHayakawa/MMDisCo"
FILE_NAME = "auffusion_videocrafter2_vggsound.pt"
HEAD_DIM = 64
"""Width of one attention head in the fusion transformer (x-transformers' default, which the
public code keeps); the head count is read off the projection width."""
GROUPS = 32
"""Groups of every GroupNorm (the public ``normalization``), so widths are multiples of 32."""


@dataclass(frozen=True)
class DiscriminatorSizes:
    """The sizes of one discriminator; the defaults are the released Auffusion + VC2 coupling."""

    time_dim: int = 128
    video_text_dim: int = 1024
    audio_text_dim: int = 768
    video_channels: int = 4
    audio_channels: int = 4
    model_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 4
    fusion_dim: int = 256
    fusion_layers: int = 5
    """Attention + feed-forward pairs: the configured 4 plus one for the class token."""
    heads: int = 8
    ff_dim: int = 1024
    fusion_out: int = 256
    max_tokens: int = 128


# ---- small pieces ---------------------------------------------------------------------------

class _Norm(nn.Module):
    """GroupNorm(32) computed in fp32 (the wrapper's inner module is called ``GroupNorm``)."""

    def __init__(self, channels: int, affine: bool = True) -> None:
        super().__init__()
        self.GroupNorm = nn.GroupNorm(GROUPS, channels, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.GroupNorm(x.float()).to(x.dtype)


class _VideoConv(nn.Module):
    """A 3x3 spatial conv per frame, then a size-3 temporal conv per pixel (the "2d+1d" conv)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.video_conv_spatial = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.video_conv_temporal = nn.Conv1d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        b, c, t, h, w = x.shape
        x = self.video_conv_spatial(x.transpose(1, 2).reshape(b * t, c, h, w))
        c = x.shape[1]
        x = x.reshape(b, t, c, h, w).permute(0, 3, 4, 2, 1).reshape(b * h * w, c, t)
        x = self.video_conv_temporal(x)
        return x.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)


class _VideoPointwise(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.video_conv = nn.Conv3d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.video_conv(x)


class _AudioConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.audio_conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.audio_conv(x)


class _ScaleShiftNorm(nn.Module):
    """Parameter-free GroupNorm, then x * (1 + scale) + shift with (scale, shift) from the
    embedding: how every ResBlock is conditioned on time and text."""

    def __init__(self, emb_dim: int, channels: int) -> None:
        super().__init__()
        self.norm = _Norm(channels, affine=False)
        self.projection = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * channels))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.projection(emb).chunk(2, dim=1)
        view = (*scale.shape, *([1] * (x.ndim - 2)))
        return self.norm(x) * (1 + scale.reshape(view)) + shift.reshape(view)


class _Modulated(nn.Sequential):
    """The published ``*_out_layers``: [modulated norm, SiLU, dropout slot, 1x1 conv]."""

    def __init__(self, emb_dim: int, channels: int, conv: nn.Module) -> None:
        super().__init__(_ScaleShiftNorm(emb_dim, channels), nn.SiLU(), nn.Identity(), conv)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        norm, act, _, conv = self
        return conv(act(norm(x, emb)))


class _ResBlock(nn.Module):
    """Two-stream residual block: video and audio each get norm -> SiLU -> conv, an embedding-
    modulated norm -> SiLU -> 1x1 conv, and a skip; ``down`` average-pools space (video) and mel
    (audio) by 2 after the first conv, never time."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, down: bool = False) -> None:
        super().__init__()
        self.video_in_layers = nn.Sequential(_Norm(c_in), nn.SiLU(), _VideoConv(c_in, c_out))
        self.audio_in_layers = nn.Sequential(_Norm(c_in), nn.SiLU(), _AudioConv(c_in, c_out, 3))
        self.video_out_layers = _Modulated(emb_dim, c_out, _VideoPointwise(c_out, c_out))
        self.audio_out_layers = _Modulated(emb_dim, c_out, _AudioConv(c_out, c_out, 1))
        same = c_in == c_out
        self.video_skip_connection = nn.Identity() if same else _VideoPointwise(c_in, c_out)
        self.audio_skip_connection = nn.Identity() if same else _AudioConv(c_in, c_out, 1)
        self.down = down

    def forward(self, v: torch.Tensor, a: torch.Tensor, emb_v: torch.Tensor, emb_a: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        hv, ha = self.video_in_layers(v), self.audio_in_layers(a)
        if self.down:
            hv, v = (F.avg_pool3d(x, (1, 2, 2)) for x in (hv, v))
            ha, a = (F.avg_pool2d(x, (1, 2)) for x in (ha, a))
        v = self.video_skip_connection(v) + self.video_out_layers(hv, emb_v)
        a = self.audio_skip_connection(a) + self.audio_out_layers(ha, emb_a)
        return v, a


class _InitialBlock(nn.Module):
    def __init__(self, video_in: int, audio_in: int, channels: int) -> None:
        super().__init__()
        self.video_conv = _VideoConv(video_in, channels)
        self.audio_conv = _AudioConv(audio_in, channels, 3)

    def forward(self, v: torch.Tensor, a: torch.Tensor, emb_v: torch.Tensor, emb_a: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.video_conv(v), self.audio_conv(a)  # no embedding in the input block


class _FeatureExtractor(nn.Module):
    """``VAResidualBlocks``: an input conv, then ``num_res_blocks`` ResBlocks per width level with
    a pooling ResBlock between levels; features are averaged over space / mel, so the video gives
    one token per frame and the audio one per latent time step."""

    def __init__(self, s: DiscriminatorSizes) -> None:
        super().__init__()
        ch = s.model_channels * s.channel_mult[0]
        blocks: list[nn.Module] = [_InitialBlock(s.video_channels, s.audio_channels, ch)]
        for level, mult in enumerate(s.channel_mult):
            for _ in range(s.num_res_blocks):
                blocks.append(_ResBlock(ch, s.model_channels * mult, s.time_dim))
                ch = s.model_channels * mult
            if level != len(s.channel_mult) - 1:
                blocks.append(_ResBlock(ch, ch, s.time_dim, down=True))
        # each published input block is a one-element sequential: keys read input_blocks.N.0.*
        self.input_blocks = nn.ModuleList(nn.ModuleList([b]) for b in blocks)
        self.out_channels = ch

    def forward(self, v: torch.Tensor, a: torch.Tensor, emb_v: torch.Tensor, emb_a: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        for (block,) in self.input_blocks:
            v, a = block(v, a, emb_v, emb_a)
        return v.mean(dim=(3, 4)).transpose(1, 2), a.mean(dim=3).transpose(1, 2)  # (B, tokens, C)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        inner = heads * HEAD_DIM
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (f(x).reshape(b, n, self.heads, HEAD_DIM).transpose(1, 2)
                   for f in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(64)) v
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Sequential(nn.Linear(dim, hidden), nn.GELU()), nn.Identity(),
                                 nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _PositionalEmbedding(nn.Module):
    def __init__(self, dim: int, max_tokens: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(max_tokens, dim)


class _Encoder(nn.Module):
    """x-transformers' pre-norm ``Encoder`` behind ``TransformerWrapperNoTokenEmb``: a learned
    class token and learned absolute positions, (attention, feed-forward) pairs with residuals,
    a final LayerNorm and an output projection."""

    def __init__(self, s: DiscriminatorSizes) -> None:
        super().__init__()
        d = s.fusion_dim
        self.cls_emb = nn.Parameter(torch.randn(1, 1, d) * d ** -0.5)
        self.pos_emb = _PositionalEmbedding(d, s.max_tokens)
        self.attn_layers = nn.Module()
        layers = []
        for _ in range(s.fusion_layers):
            layers.append(nn.ModuleList([nn.LayerNorm(d), _Attention(d, s.heads)]))
            layers.append(nn.ModuleList([nn.LayerNorm(d), _FeedForward(d, s.ff_dim)]))
        self.attn_layers.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d)
        self.out_layer = nn.Linear(d, s.fusion_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls_emb.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1)
        if x.shape[1] > self.pos_emb.emb.num_embeddings:
            raise ValueError(f"the discriminator takes at most {self.pos_emb.emb.num_embeddings} "
                             f"tokens (class, time, video frames, audio steps), got {x.shape[1]}: "
                             "the clip is too long")
        x = x + self.pos_emb.emb.weight[: x.shape[1]]
        for norm, block in self.attn_layers.layers:
            x = x + block(norm(x))
        return self.out_layer(self.norm(x))


class _Fusion(nn.Module):
    """Tokens [class, time, video frames..., audio steps...] through the encoder; the class
    token's output is the clip's feature."""

    def __init__(self, s: DiscriminatorSizes, feature_channels: int) -> None:
        super().__init__()
        self.fm_video_in = nn.Linear(feature_channels, s.fusion_dim)
        self.fm_audio_in = nn.Linear(feature_channels, s.fusion_dim)
        self.fm_time_in = nn.Linear(s.time_dim, s.fusion_dim)
        self.fm = _Encoder(s)

    def forward(self, v: torch.Tensor, a: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([self.fm_time_in(temb)[:, None], self.fm_video_in(v), self.fm_audio_in(a)], 1)
        return self.fm(tokens)[:, 0]


class _TimeProjection(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class _TimeEmbedding(nn.Module):
    """Sinusoidal features of the integer timestep ([sin | cos], frequencies
    exp(-ln(10^4) i / (half - 1))), then Linear -> SiLU -> Linear."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.projection = _TimeProjection(dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.projection.linear_1.in_features // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32,
                                                            device=t.device) / (half - 1))
        angles = t.float()[:, None] * freqs[None]
        features = torch.cat([angles.sin(), angles.cos()], dim=1)
        return self.projection(features.to(self.projection.linear_1.weight.dtype))


# ---- the discriminator ------------------------------------------------------------------------

class MultimodalDiscriminator(nn.Module):
    """D(x_v, x_a, t, text): the probability that a video latent and an audio latent at timestep
    t belong together for the given text. Video latents are (B, C, T, H, W) as VideoCrafter2
    makes them, audio latents (B, C, mel, time) as Auffusion makes them."""

    def __init__(self, sizes: DiscriminatorSizes = DiscriminatorSizes()) -> None:
        super().__init__()
        self.sizes = sizes
        self.time_embed = _TimeEmbedding(sizes.time_dim)
        self.video_text_embed = nn.Linear(sizes.video_text_dim, sizes.time_dim)
        self.audio_text_embed = nn.Linear(sizes.audio_text_dim, sizes.time_dim)
        self.feature_extractor = _FeatureExtractor(sizes)
        self.fusion_model = _Fusion(sizes, self.feature_extractor.out_channels)
        self.last_linear = nn.Linear(sizes.fusion_out, 1)

    def forward(self, video: torch.Tensor, audio: torch.Tensor, t: torch.Tensor,
                video_text: torch.Tensor, audio_text: torch.Tensor) -> torch.Tensor:
        """The head's raw output h (B,); ``video_text`` / ``audio_text`` are the token-averaged
        text embeddings (B, D) of each base model."""
        temb = self.time_embed(t)
        emb_v = temb + self.video_text_embed(video_text.to(video.dtype))
        emb_a = temb + self.audio_text_embed(audio_text.to(audio.dtype))
        v, a = self.feature_extractor(video, audio.transpose(2, 3), emb_v, emb_a)
        return self.last_linear(self.fusion_model(v, a, temb)).squeeze(1)

    def logit(self, *args: torch.Tensor) -> torch.Tensor:
        """log(p + 1e-5) - log(1 - p + 1e-5) with p = sigmoid(h): the quantity whose gradient
        MMDisCo follows (the 1e-5 keeps it finite where p saturates)."""
        prob = torch.sigmoid(self(*args))
        return torch.log(prob + 1e-5) - torch.log1p(1e-5 - prob)


# ---- loading ------------------------------------------------------------------------------------

def _shape(sd: dict[str, torch.Tensor], key: str, path: Path) -> tuple[int, ...]:
    if key not in sd:
        raise CheckpointError(f"{path} is not an MMDisCo Auffusion + VideoCrafter2 coupling: it has "
                              f"no '{key}' (download {FILE_NAME} from {PUBLISHED})")
    return tuple(sd[key].shape)


def _res_blocks_per_level(widths: list[int], path: Path) -> int:
    """ResBlocks per level from the output widths of input blocks 1.. (the layout is L levels of
    n blocks with a pooling block after every level but the last, so len = L (n + 1) - 1 and the
    width may change only at a level's first block). The released 4 wins where several fit."""
    fits = []
    for n in range(1, len(widths) + 1):
        levels, rest = divmod(len(widths) + 1, n + 1)
        if rest or levels < 1:
            continue
        starts = {lv * (n + 1) for lv in range(levels)}
        if all(widths[i] == widths[i - 1] for i in range(1, len(widths)) if i not in starts):
            fits.append(n)
    if not fits:
        raise CheckpointError(f"{path}: the feature extractor's {len(widths) + 1} input blocks "
                              f"(widths {widths}) fit no level layout")
    return 4 if 4 in fits else fits[0]


def sizes_of(sd: dict[str, torch.Tensor], path: Path = Path("<state dict>")) -> DiscriminatorSizes:
    """The sizes of the discriminator a state dict holds, read off its tensor shapes."""
    p = "feature_extractor.input_blocks."
    time_dim, time_in = _shape(sd, "time_embed.projection.linear_1.weight", path)
    first = _shape(sd, p + "0.0.video_conv.video_conv_spatial.weight", path)
    audio_in = _shape(sd, p + "0.0.audio_conv.audio_conv.weight", path)[1]
    count = 1 + max(int(k[len(p):].split(".")[0]) for k in sd if k.startswith(p))  # >= 1 here
    widths = [_shape(sd, f"{p}{i}.0.video_in_layers.2.video_conv_spatial.weight", path)[0]
              for i in range(1, count)]
    n = _res_blocks_per_level(widths, path)
    model_channels = first[0]
    mults = [widths[lv * (n + 1)] for lv in range((len(widths) + 1) // (n + 1))]
    if any(w % model_channels for w in mults):
        raise CheckpointError(f"{path}: level widths {mults} are not multiples of {model_channels}")
    f, lp = "fusion_model.fm.", "fusion_model.fm.attn_layers.layers."
    layers = 1 + max((int(k[len(lp):].split(".")[0]) for k in sd if k.startswith(lp)), default=-1)
    fusion_dim = _shape(sd, "fusion_model.fm_time_in.weight", path)[0]
    inner = _shape(sd, f + "attn_layers.layers.0.1.to_q.weight", path)[0]
    if layers % 2 or inner % HEAD_DIM or time_in != time_dim:
        raise CheckpointError(f"{path}: unexpected fusion layout ({layers} layers, attention width "
                              f"{inner}) or time embedding ({time_in} -> {time_dim})")
    return DiscriminatorSizes(
        time_dim=time_dim,
        video_text_dim=_shape(sd, "video_text_embed.weight", path)[1],
        audio_text_dim=_shape(sd, "audio_text_embed.weight", path)[1],
        video_channels=first[1], audio_channels=audio_in, model_channels=model_channels,
        channel_mult=tuple(w // model_channels for w in mults), num_res_blocks=n,
        fusion_dim=fusion_dim, fusion_layers=layers // 2, heads=inner // HEAD_DIM,
        ff_dim=_shape(sd, f + "attn_layers.layers.1.1.net.0.0.weight", path)[0],
        fusion_out=_shape(sd, f + "out_layer.weight", path)[0],
        max_tokens=_shape(sd, f + "pos_emb.emb.weight", path)[0])


def load_discriminator(path: str | Path, device: str | torch.device = "cpu") -> MultimodalDiscriminator:
    """The coupling checkpoint (a plain state dict, read with ``weights_only``) strict-loaded into
    a MultimodalDiscriminator of the sizes it holds, in fp32 and eval mode. The parameters are made
    outside inference mode, so the gradient can be taken under ComfyUI's inference mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MMDisCo coupling file {path} not found; download {FILE_NAME} "
                                f"from {PUBLISHED} and put it there")
    sd = read_file(path)
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    prefix = "residual_predictor."
    if sd and all(k.startswith(prefix) for k in sd):  # saved from the joint model
        sd = {k[len(prefix):]: v for k, v in sd.items()}
    sizes = sizes_of(sd, path)
    with torch.inference_mode(False):
        model = MultimodalDiscriminator(sizes)
        load_strict(model, {k: v.float() for k, v in sd.items()}, path,
                    "the discriminator it describes")
        model = model.to(device).eval().requires_grad_(False)
    return model
