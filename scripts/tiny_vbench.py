"""Tiny random twins of the files VBench's subject consistency, background consistency and
aesthetic quality read, in their official formats and names in models/vbench/: DINO's ViT
state dict (``dino_vitbase16_pretrain.pth``), the two OpenAI CLIPs as Hugging Face CLIPModel
safetensors (text tower included, as published) and LAION's linear predictor. Only widths and
depths shrink; patch sizes, the 224 px input and the formats are the published ones."""

from __future__ import annotations

from pathlib import Path

import torch

DINO = dict(dim=64, depth=1, hidden=256, patch=16, grid=14)
CLIP_B32 = dict(patch_size=32)
CLIP_L14 = dict(patch_size=14)
CLIP = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=1, num_attention_heads=1,
            image_size=224, hidden_act="quick_gelu")
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
            vocab_size=64, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1)
PROJECTION = 32


def _wide(model: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    """Weights drawn wide enough that the features follow the image (not the CLS token)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim <= 1:
                mean = 1.0 if "norm" in name and name.endswith("weight") else 0.0
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3 + mean)
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * 2.0 / p[0].numel() ** 0.5)
    return model


def dino_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from comfyui_avits.verifiers.vbench.dino import Architecture, DinoViT
    return _wide(DinoViT(Architecture(**DINO)), torch.Generator().manual_seed(seed)).state_dict()


def clip_state(patch: dict, seed: int) -> dict[str, torch.Tensor]:
    """A whole CLIPModel's tensors, as openai/clip-vit-* model.safetensors holds them."""
    from transformers import CLIPConfig, CLIPModel
    cfg = CLIPConfig(text_config=TEXT, vision_config={**CLIP, **patch}, projection_dim=PROJECTION)
    model = _wide(CLIPModel(cfg), torch.Generator().manual_seed(seed))
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def write(models_dir: Path) -> Path:
    """``models_dir/vbench/`` with the four files; the folder."""
    from safetensors.torch import save_file
    folder = Path(models_dir) / "vbench"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(dino_state(0), folder / "dino_vitbase16_pretrain.pth")
    save_file(clip_state(CLIP_B32, 1), str(folder / "clip-vit-base-patch32.safetensors"))
    save_file(clip_state(CLIP_L14, 2), str(folder / "clip-vit-large-patch14.safetensors"))
    head = torch.nn.Linear(PROJECTION, 1)
    _wide(head, torch.Generator().manual_seed(3))
    with torch.no_grad():
        head.bias.fill_(5.0)  # ratings about the predictor's 1..10 middle
    torch.save(head.state_dict(), folder / "sa_0_4_vit_l_14_linear.pth")
    return folder
