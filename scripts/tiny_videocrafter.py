"""A tiny random twin of VideoCrafter2's ``model.ckpt`` in the official layout, under ComfyUI's
models folder: ``mmdisco/videocrafter2/model.ckpt``, a ``{'state_dict': ...}`` file with
``model.diffusion_model.*`` (the lvdm 3D UNet), ``first_stage_model.*`` (the SD VAE in LDM key
names) and ``cond_stage_model.model.*`` (an OpenCLIP text tower with the real 49408-token
vocabulary and 77 positions), plus the DDPM buffers lvdm saves beside them. Only widths and the
VAE's depth shrink, so the loader reads the same layout it reads off the real file.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

FILE = Path("mmdisco") / "videocrafter2" / "model.ckpt"
# 3 levels of 1 ResBlock, attention on the first two (the official file: 4 levels of 2, attention
# on the first three), 8-wide heads (the official 64); stored in float16 to stay a few MB
UNET = dict(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 2),
            num_res_blocks=1, attention_levels=(0, 1), head_channels=8, context_dim=32,
            depth=1, fps_cond=True)
TEXT = dict(width=32, layers=2)  # one 32-wide head: heads = width // 64, at least 1
VAE = dict(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, z_channels=4, in_channels=3)


def _resnet(prefix: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}.norm1.weight": (cin,), f"{prefix}.norm1.bias": (cin,),
              f"{prefix}.conv1.weight": (cout, cin, 3, 3), f"{prefix}.conv1.bias": (cout,),
              f"{prefix}.norm2.weight": (cout,), f"{prefix}.norm2.bias": (cout,),
              f"{prefix}.conv2.weight": (cout, cout, 3, 3), f"{prefix}.conv2.bias": (cout,)}
    if cin != cout:
        shapes |= {f"{prefix}.nin_shortcut.weight": (cout, cin, 1, 1),
                   f"{prefix}.nin_shortcut.bias": (cout,)}
    return shapes


def _mid(prefix: str, ch: int) -> dict[str, tuple[int, ...]]:
    shapes = _resnet(f"{prefix}.block_1", ch, ch) | _resnet(f"{prefix}.block_2", ch, ch)
    shapes |= {f"{prefix}.attn_1.norm.weight": (ch,), f"{prefix}.attn_1.norm.bias": (ch,)}
    for name in ("q", "k", "v", "proj_out"):
        shapes |= {f"{prefix}.attn_1.{name}.weight": (ch, ch, 1, 1),
                   f"{prefix}.attn_1.{name}.bias": (ch,)}
    return shapes


def ldm_vae_shapes(ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z_channels: int,
                   in_channels: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of lvdm's ``AutoencoderKL`` (LDM ``Encoder``/``Decoder``, double z,
    embed_dim = z_channels), written out from that architecture."""
    s: dict[str, tuple[int, ...]] = {"encoder.conv_in.weight": (ch, in_channels, 3, 3),
                                     "encoder.conv_in.bias": (ch,)}
    cin = ch
    for i, mult in enumerate(ch_mult):
        for j in range(num_res_blocks):
            s |= _resnet(f"encoder.down.{i}.block.{j}", cin, ch * mult)
            cin = ch * mult
        if i != len(ch_mult) - 1:
            s |= {f"encoder.down.{i}.downsample.conv.weight": (cin, cin, 3, 3),
                  f"encoder.down.{i}.downsample.conv.bias": (cin,)}
    s |= _mid("encoder.mid", cin)
    s |= {"encoder.norm_out.weight": (cin,), "encoder.norm_out.bias": (cin,),
          "encoder.conv_out.weight": (2 * z_channels, cin, 3, 3),
          "encoder.conv_out.bias": (2 * z_channels,),
          "quant_conv.weight": (2 * z_channels, 2 * z_channels, 1, 1),
          "quant_conv.bias": (2 * z_channels,),
          "post_quant_conv.weight": (z_channels, z_channels, 1, 1),
          "post_quant_conv.bias": (z_channels,)}
    cin = ch * ch_mult[-1]
    s |= {"decoder.conv_in.weight": (cin, z_channels, 3, 3), "decoder.conv_in.bias": (cin,)}
    s |= _mid("decoder.mid", cin)
    for i in reversed(range(len(ch_mult))):
        for j in range(num_res_blocks + 1):
            s |= _resnet(f"decoder.up.{i}.block.{j}", cin, ch * ch_mult[i])
            cin = ch * ch_mult[i]
        if i != 0:
            s |= {f"decoder.up.{i}.upsample.conv.weight": (cin, cin, 3, 3),
                  f"decoder.up.{i}.upsample.conv.bias": (cin,)}
    s |= {"decoder.norm_out.weight": (cin,), "decoder.norm_out.bias": (cin,),
          "decoder.conv_out.weight": (in_channels, cin, 3, 3),
          "decoder.conv_out.bias": (in_channels,)}
    return s


def _random(shape: tuple[int, ...], weight: bool, gen: torch.Generator) -> torch.Tensor:
    """Weights of unit gain (1/sqrt(fan-in)); 1-D weights (every norm's scale) near 1; small
    biases. Every tensor is random, the ones lvdm initialises to zero included."""
    if len(shape) > 1:
        return torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))
    return (1.0 if weight else 0.0) + 0.1 * torch.randn(shape, generator=gen)


def state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """The twin's flat state dict, official prefixes and key names."""
    from open_clip.transformer import TextTransformer

    from comfyui_avits.generators.mmdisco.videocrafter import TEXT as TEXT_PREFIX
    from comfyui_avits.generators.mmdisco.videocrafter import UNET as UNET_PREFIX
    from comfyui_avits.generators.mmdisco.videocrafter import VAE as VAE_PREFIX
    from comfyui_avits.generators.mmdisco.videocrafter import mmdisco_alphas_cumprod
    from comfyui_avits.generators.mmdisco.videocrafter_unet import UNetSizes, VideoUNet

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for key, value in VideoUNet(UNetSizes(**UNET)).state_dict().items():
        sd[UNET_PREFIX + key] = _random(tuple(value.shape), key.endswith("weight"), gen)
    tower = TextTransformer(width=TEXT["width"], heads=1, layers=TEXT["layers"],
                            output_dim=TEXT["width"])
    for key, value in tower.state_dict().items():
        if key != "attn_mask":
            sd[TEXT_PREFIX + key] = value.clone()
    sd[TEXT_PREFIX + "logit_scale"] = torch.tensor(math.log(1 / 0.07))
    for key, shape in ldm_vae_shapes(**VAE).items():
        sd[VAE_PREFIX + key] = _random(shape, key.endswith("weight"), gen)
    abar = mmdisco_alphas_cumprod().float()  # lvdm also saves its schedule buffers
    sd |= {"alphas_cumprod": abar, "scale_arr": torch.linspace(1.0, 0.7, 1000)}
    return sd


def write(models_dir: Path) -> dict[str, Path]:
    """``models_dir/mmdisco/videocrafter2/model.ckpt``, a ``{'state_dict': ...}`` file."""
    path = Path(models_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.half() if v.is_floating_point() else v for k, v in state_dict().items()}
    torch.save({"state_dict": sd, "global_step": 0}, path)
    return {"videocrafter2": path}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: .venv/bin/python scripts/tiny_videocrafter.py MODELS_DIR")
    import os
    import tempfile

    # importable as comfyui_avits from a standalone run, as tests/conftest.py does
    link = Path(tempfile.mkdtemp(prefix="avits-import-")) / "comfyui_avits"
    os.symlink(Path(__file__).resolve().parents[1], link)
    sys.path.insert(0, str(link.parent))
    for name, path in write(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
