"""VideoCrafter2 (``base_512_v2``) as MMDisCo's video model: the lvdm 3D UNet, the SD VAE
decoded frame by frame and the OpenCLIP ViT-H-14 text tower, all read from the official
``model.ckpt`` (or its safetensors twin made by ``scripts/convert_videocrafter2.py``).

MMDisCo samples VideoCrafter2 with a diffusers DDPM scheduler built with
``beta_schedule="linear"`` from lvdm's 0.00085..0.012, i.e. truly linear betas, not lvdm's
own sqrt-linear schedule, and without lvdm's ``scale_arr`` (``mmdisco/models/diffusion/video.py``);
:data:`alphas_cumprod` reproduces that, since MMDisCo's discriminator was trained with it.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import open_clip
import torch
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from open_clip.transformer import TextTransformer
from torch import nn

from ...core.checkpoints import CheckpointError, load_strict, read_file
from .sampler import EpsModel
from .videocrafter_unet import INIT_ATTN_HEADS, UNetSizes, VideoUNet

PUBLISHED = "https://huggingface.co/VideoCrafter/VideoCrafter2"
UNET, VAE, TEXT = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.model."
SCALE_FACTOR = 0.18215  # lvdm's latent scale of the SD VAE
FPS = 8  # MMDisCo conditions VideoCrafter2 on 8 fps (conf/model/auffusion_videocrafter2_vggsound.yaml)
TEXT_HEAD_WIDTH = 64  # OpenCLIP's text towers use 64-wide heads (ViT-H-14: 1024 wide, 16 heads)
UNUSED_TEXT_KEYS = ("logit_scale", "logit_bias", "attn_mask")  # CLIP's (and any visual.*), unused


def mmdisco_alphas_cumprod(steps: int = 1000, start: float = 0.00085,
                           end: float = 0.012) -> torch.Tensor:
    """alpha_bar of MMDisCo's VideoCrafter2 scheduler: linear betas, computed in float32 as
    diffusers' DDPMScheduler does, returned as float64."""
    betas = torch.linspace(start, end, steps, dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0).double()


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The flat state dict of ``model.ckpt`` (``{'state_dict': ...}``, deepspeed's
    ``{'module': ...}`` or flat) or ``model.safetensors``; never unpickles code."""
    path = Path(path)
    if not path.is_file():
        then = (" and convert it there with scripts/convert_videocrafter2.py"
                if path.suffix == ".safetensors" else "")
        raise FileNotFoundError(f"{path} not found: download checkpoints/base_512_v2/model.ckpt "
                                f"from {PUBLISHED} into {path.parent}{then}")
    try:
        obj = read_file(path)
    except CheckpointError as e:
        if isinstance(e.__cause__, pickle.UnpicklingError):
            raise CheckpointError(
                f"{path} holds more than weights and cannot be read safely; convert it once with "
                f"`python scripts/convert_videocrafter2.py {path}` and load model.safetensors") from e
        raise
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("module"), dict):
        obj = {k.removeprefix("_forward_module."): v for k, v in obj["module"].items()}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict")
    return obj


def part(sd: dict[str, torch.Tensor], prefix: str, source: Path) -> dict[str, torch.Tensor]:
    """The tensors under one prefix, prefix removed."""
    out = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if not out:
        raise CheckpointError(f"{source} has no '{prefix}*' weights: not a VideoCrafter2 "
                              f"checkpoint (the official file is at {PUBLISHED})")
    return out


def _need(sd: dict[str, torch.Tensor], key: str, source: Path, prefix: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"{source} has no '{prefix}{key}': not a VideoCrafter2 checkpoint")
    return sd[key]


def unet_sizes(sd: dict[str, torch.Tensor], source: Path) -> UNetSizes:
    """The UNet's architecture read off ``model.diffusion_model.*`` shapes."""
    def need(key: str) -> torch.Tensor:
        return _need(sd, key, source, UNET)
    mc, cin = need("input_blocks.0.0.weight").shape[:2]
    n_in = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"input_blocks\.(\d+)\.", k)))
    n_down = sum(1 for k in sd if re.fullmatch(r"input_blocks\.\d+\.0\.op\.weight", k))
    levels = n_down + 1
    blocks, rem = divmod(n_in - 1 - n_down, levels)
    if rem or blocks < 1:
        raise CheckpointError(f"{source}: {n_in} input blocks with {n_down} downsamplers do not "
                              f"form a UNet")
    firsts = [1 + level * (blocks + 1) for level in range(levels)]
    mult = tuple(need(f"input_blocks.{i}.0.in_layers.2.weight").shape[0] // mc for i in firsts)
    attn = tuple(lv for lv, i in enumerate(firsts) if f"input_blocks.{i}.1.proj_in.weight" in sd)
    need("input_blocks.1.0.temopral_conv.conv1.2.weight")  # VideoCrafter's temporal convs
    mid = "middle_block.1.transformer_blocks."
    return UNetSizes(
        in_channels=cin, out_channels=need("out.2.weight").shape[0], model_channels=mc,
        channel_mult=mult, num_res_blocks=blocks, attention_levels=attn,
        head_channels=need("init_attn.0.proj_in.weight").shape[0] // INIT_ATTN_HEADS,
        context_dim=need(mid + "0.attn2.to_k.weight").shape[1],
        depth=1 + max(int(k[len(mid):].split(".")[0]) for k in sd if k.startswith(mid)),
        fps_cond="fps_embedding.0.weight" in sd)


def build_text(sd: dict[str, torch.Tensor], source: Path) -> TextTransformer:
    """OpenCLIP's text transformer sized off ``cond_stage_model.model.*`` (no visual tower)."""
    sd = {k: v for k, v in sd.items() if k not in UNUSED_TEXT_KEYS and not k.startswith("visual.")}
    def need(key: str) -> torch.Tensor:
        return _need(sd, key, source, TEXT)
    vocab, width = need("token_embedding.weight").shape
    layers = 1 + max(int(m.group(1)) for k in sd
                     if (m := re.match(r"transformer\.resblocks\.(\d+)\.", k)))
    with torch.device("meta"):
        tower = TextTransformer(
            context_length=need("positional_embedding").shape[0], vocab_size=vocab, width=width,
            heads=max(1, width // TEXT_HEAD_WIDTH), layers=layers,
            mlp_ratio=need("transformer.resblocks.0.mlp.c_fc.weight").shape[0] / width,
            output_dim=need("text_projection").shape[1])
    load_strict(tower, sd, source, "VideoCrafter2's text tower", TEXT, assign=True)
    tower.register_buffer("attn_mask", tower.build_causal_mask(), persistent=False)  # was meta
    return tower


def build_vae(sd: dict[str, torch.Tensor], source: Path) -> AutoencoderKL:
    """The SD-style VAE of ``first_stage_model.*`` as a diffusers AutoencoderKL (its LDM keys
    converted by diffusers' own single-file helper)."""
    def need(key: str) -> torch.Tensor:
        return _need(sd, key, source, VAE)
    levels = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"encoder\.down\.(\d+)\.", k)))
    per_level = 1 + max(int(m.group(1)) for k in sd
                        if (m := re.match(r"encoder\.down\.0\.block\.(\d+)\.", k)))
    config = dict(
        in_channels=need("encoder.conv_in.weight").shape[1],
        out_channels=need("decoder.conv_out.weight").shape[0],
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(need(f"encoder.down.{i}.block.0.conv2.weight").shape[0]
                                 for i in range(levels)),
        layers_per_block=per_level, latent_channels=need("decoder.conv_in.weight").shape[1],
        scaling_factor=SCALE_FACTOR)
    with torch.device("meta"):
        vae = AutoencoderKL(**config)
    converted = convert_ldm_vae_checkpoint({VAE + k: v for k, v in sd.items()}, config)
    load_strict(vae, converted, source, "VideoCrafter2's VAE", VAE + "(as diffusers) ", assign=True)
    return vae


class VideoCrafter2(nn.Module, EpsModel):
    """MMDisCo's video EpsModel: text-to-video eps prediction on latents (B, 4, T, H/8, W/8)
    and frame-by-frame decoding, with the schedule MMDisCo samples it with."""

    fps = FPS

    def __init__(self, unet: VideoUNet, text: TextTransformer, vae: AutoencoderKL,
                 frames: int = 16, size: int = 256):
        super().__init__()
        self.unet, self.text, self.vae = unet.eval(), text.eval(), vae.eval()
        self.requires_grad_(False)
        self.alphas_cumprod = mmdisco_alphas_cumprod()
        self.latent_shape = (unet.sizes.out_channels, frames, size // 8, size // 8)

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.time_embed[0].weight.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.time_embed[0].weight.device

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """(B, 77, D): OpenCLIP's penultimate layer then ``ln_final`` (lvdm's ``penultimate``)."""
        length = self.text.positional_embedding.shape[0]
        tokens = open_clip.tokenize(list(prompts), context_length=length).to(self.device)
        x = self.text.token_embedding(tokens) + self.text.positional_embedding
        for block in self.text.transformer.resblocks[:-1]:
            x = block(x, attn_mask=self.text.attn_mask)
        return self.text.ln_final(x)

    def null_text(self, batch: int) -> torch.Tensor:
        """The unconditional context: the embedding of "" (lvdm's ``uncond_type: empty_seq``)."""
        return self.encode_text([""] * batch)

    def pooled_text(self, context: torch.Tensor) -> torch.Tensor:
        """(B, D) float32: the token average of the whole context, as MMDisCo feeds its
        discriminator (``prompt_embeds.mean(dim=1)`` in ``networks.py``)."""
        return context.float().mean(dim=1)

    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                      generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """One UNet call without guidance at MMDisCo's fps; no random draws (``generators``
        is unused). Returns float32 eps of x's shape."""
        return self.unet(x.to(self.device), t.to(self.device), context.to(self.device),
                         self.fps).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) in [0, 1]: each frame decoded by the 2D VAE, as lvdm's
        ``decode_first_stage_2DAE`` does."""
        z = z.to(self.device, self.vae.dtype) / SCALE_FACTOR
        frames = [self.vae.decode(z[:, :, i]).sample.float() for i in range(z.shape[2])]
        video = torch.stack(frames, dim=1).permute(0, 1, 3, 4, 2)
        return ((video + 1.0) / 2.0).clamp(0.0, 1.0)


def load_videocrafter2(path: str | Path, dtype: torch.dtype = torch.float32,
                       device: str | torch.device = "cpu", *, frames: int = 16,
                       size: int = 256) -> VideoCrafter2:
    """VideoCrafter2 from ``model.ckpt`` (or ``model.safetensors``), sized off its shapes so
    reduced-width test files load through the same code. ``frames``/``size`` set
    ``latent_shape`` (MMDisCo: 16 frames at 256 x 256 for 2 s)."""
    path = Path(path)
    sd = read_checkpoint(path)
    unet_sd = part(sd, UNET, path)
    with torch.device("meta"):
        unet = VideoUNet(unet_sizes(unet_sd, path))
    load_strict(unet, unet_sd, path, "VideoCrafter2's UNet", UNET, assign=True)
    text = build_text(part(sd, TEXT, path), path)
    if text.width != unet.sizes.context_dim:
        raise CheckpointError(f"{path}: the text tower is {text.width} wide but the UNet's "
                              f"cross-attention reads {unet.sizes.context_dim}")
    vae = build_vae(part(sd, VAE, path), path)
    return VideoCrafter2(unet, text, vae, frames, size).to(device=device, dtype=dtype)
