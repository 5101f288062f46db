"""A tiny random twin of auffusion/auffusion-full in its published folder layout, for tests and
the tiny model set: ``.venv/bin/python scripts/tiny_auffusion.py MODELS_DIR`` writes
``MODELS_DIR/mmdisco/auffusion-full/``.

Every part is written by its own library's ``save_pretrained`` (diffusers UNet, VAE and PNDM
scheduler config; transformers CLIP text model and CLIP tokenizer) or in Auffusion's own format
(``condition_adapter.pt`` with ``proj.*``/``norm.*``, ``vocoder.pt`` = {"generator": the
weight-normalised HiFi-GAN state dict, ``weight_g``/``weight_v`` keys as
``torch.nn.utils.weight_norm`` writes them}). The widths are tiny (text width 32; UNet
8/16/16 channels over three levels, attention at the lowest only; VAE 8 channels over four
levels; vocoder 32 channels); the fixed numbers of the pipeline are kept: 256 mels, hop 160
(upsampling 5*4*4*2), 16 kHz, the VAE's factor 8, 77 tokens, so a 2 s latent is (4, 32, 25) as
with the real model. The tokenizer is a
byte-level CLIP BPE over the 256 byte symbols plus a few merges (the real vocabulary is not
needed offline). About 2 MB, fixed seed.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import torch

FOLDER = ("mmdisco", "auffusion-full")
TEXT_WIDTH = 32
VOCODER = dict(resblock="1", num_mels=256, upsample_rates=[5, 4, 4, 2], upsample_kernel_sizes=[10, 8, 8, 4],
               upsample_initial_channel=32, resblock_kernel_sizes=[3, 5],
               resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]], sampling_rate=16000, n_fft=2048,
               hop_size=160, win_size=1024, fmin=0, fmax=8000)
"""The first stage has an odd kernel - rate (10 - 5), the transposed-conv padding rule's other branch."""
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon",
                 clip_sample=False)
"""Stable Diffusion 1.5's PNDM config (``clip_sample`` is a key of the DDIM/DDPM schedulers it
is compatible with and is kept), the config Auffusion was fine-tuned with (not checked against
the published file)."""
MERGES = [("o", "r"), ("g", "a"), ("ga", "n</w>"), ("d", "r"), ("dr", "u"), ("dru", "m</w>"),
          ("b", "i"), ("bi", "r"), ("bir", "d"), ("t", "h"), ("th", "e</w>")]


def tokenizer():
    """A CLIP tokenizer (transformers ``CLIPTokenizer``) whose vocabulary is the 256 byte symbols,
    the same with CLIP's end-of-word mark, ``MERGES`` and the two special tokens."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=MERGES, model_max_length=77)


def _perturb(module: torch.nn.Module) -> None:
    """Non-trivial norms and biases, so a test notices a skipped LayerNorm/GroupNorm or bias."""
    for name, p in module.named_parameters():
        if name.endswith("bias") or "norm" in name:
            p.data.add_(0.2 * torch.randn_like(p))


def _vocoder_state(config: dict) -> dict[str, torch.Tensor]:
    """The HiFi-GAN's state dict as Auffusion saved it, written from the published layout
    (``conv_pre``, ``ups.i``, ``resblocks.(i * kernels + j).convs1/convs2.d``, ``conv_post``) with
    every conv weight-normalised by ``torch.nn.utils.weight_norm`` (keys ``weight_g``/``weight_v``)."""
    from torch.nn import Conv1d, ConvTranspose1d

    width, kernels = config["upsample_initial_channel"], config["resblock_kernel_sizes"]
    convs = {"conv_pre": Conv1d(config["num_mels"], width, 7, padding=3)}
    for i, (u, k) in enumerate(zip(config["upsample_rates"], config["upsample_kernel_sizes"])):
        c_out = width // 2 ** (i + 1)
        convs[f"ups.{i}"] = ConvTranspose1d(width // 2 ** i, c_out, k, u)
        for j, (rk, dilations) in enumerate(zip(kernels, config["resblock_dilation_sizes"])):
            for d in range(len(dilations)):
                for name in ("convs1", "convs2"):
                    convs[f"resblocks.{i * len(kernels) + j}.{name}.{d}"] = Conv1d(c_out, c_out, rk)
    convs["conv_post"] = Conv1d(width // 2 ** len(config["upsample_rates"]), 1, 7, padding=3)
    state = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for prefix, conv in convs.items():
            conv.weight.data.normal_(0.0, 0.1)
            torch.nn.utils.weight_norm(conv)
            conv.weight_g.data.mul_(1.0 + 0.5 * torch.rand_like(conv.weight_g))
            state.update({f"{prefix}.{k}": v.detach().clone() for k, v in conv.state_dict().items()})
    return state


def write(models_dir: Path, seed: int = 0) -> dict[str, Path]:
    """``models_dir/mmdisco/auffusion-full/`` (the folder the loader node is pointed at)."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = Path(models_dir).joinpath(*FOLDER)
    root.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=(32, 128), in_channels=4, out_channels=4, block_out_channels=(8, 16, 16),
            down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"), layers_per_block=1,
            cross_attention_dim=TEXT_WIDTH, attention_head_dim=8, norm_num_groups=4)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=1, norm_num_groups=4, sample_size=256)
        text = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tok), hidden_size=TEXT_WIDTH, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=77, bos_token_id=len(tok) - 2,
            eos_token_id=len(tok) - 1, pad_token_id=len(tok) - 1))
        adapter = {"proj.weight": torch.randn(TEXT_WIDTH, TEXT_WIDTH) / TEXT_WIDTH ** 0.5,
                   "proj.bias": 0.3 * torch.randn(TEXT_WIDTH),
                   "norm.weight": 1.0 + 0.2 * torch.randn(TEXT_WIDTH), "norm.bias": 0.2 * torch.randn(TEXT_WIDTH)}
        for module in (unet, vae, text):
            _perturb(module)
        vocoder = _vocoder_state(VOCODER)
    unet.save_pretrained(root / "unet")
    vae.save_pretrained(root / "vae")
    text.save_pretrained(root / "text_encoder_0")
    tok.save_pretrained(root / "text_encoder_0")
    PNDMScheduler.from_config(SCHEDULER).save_pretrained(root / "scheduler")
    condition = {"text_encoder_name": "text_encoder_0", "condition_adapter_name": "condition_adapter_0",
                 "condition_type": "clip-vit-large-patch14_text", "condition_max_length": 77,
                 "condition_dim": TEXT_WIDTH, "cross_attention_dim": TEXT_WIDTH}
    (root / "condition_config.json").write_text(json.dumps([condition], indent=4))
    (root / "condition_adapter_0").mkdir(exist_ok=True)
    (root / "condition_adapter_0" / "config.json").write_text(json.dumps({**condition, "model_name": "clip"}, indent=4))
    torch.save(adapter, root / "condition_adapter_0" / "condition_adapter.pt")
    (root / "vocoder").mkdir(exist_ok=True)
    (root / "vocoder" / "config.json").write_text(json.dumps(VOCODER, indent=4))
    torch.save({"generator": vocoder}, root / "vocoder" / "vocoder.pt")
    return {"auffusion": root}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: .venv/bin/python scripts/tiny_auffusion.py MODELS_DIR")
    for name, path in write(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
