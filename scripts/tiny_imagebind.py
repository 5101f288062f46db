"""Tiny random ImageBind checkpoints in the published format (a state dict of ImageBindModel),
for tests and benchmarks: the loader reads their architecture off the shapes as it does for
imagebind_huge.pth."""

from __future__ import annotations

from pathlib import Path

import torch

SIZES = {
    # embed dims are multiples of each trunk's head width (80 vision, 48 depth, 64 the others)
    "tiny": dict(out_embed_dim=32, vision_embed_dim=80, vision_num_blocks=1, text_embed_dim=64,
                 text_num_blocks=1, audio_embed_dim=64, audio_num_blocks=1, depth_embed_dim=48,
                 depth_num_blocks=1, thermal_embed_dim=64, thermal_num_blocks=1, imu_embed_dim=64,
                 imu_num_blocks=1),
    "mid": dict(out_embed_dim=256, vision_embed_dim=320, vision_num_blocks=4, text_embed_dim=256,
                text_num_blocks=2, audio_embed_dim=256, audio_num_blocks=4, depth_embed_dim=48,
                depth_num_blocks=1, thermal_embed_dim=64, thermal_num_blocks=1, imu_embed_dim=64,
                imu_num_blocks=1),
}


def build(size: str = "tiny", seed: int = 0) -> torch.nn.Module:
    """A random ImageBindModel of one of SIZES, built by the installed model code."""
    from comfyui_avits.verifiers.imagebind.checkpoint import HEAD_DIM
    from comfyui_avits.verifiers.imagebind.package import model_module

    torch.manual_seed(seed)
    dims = SIZES[size]
    heads = {f"{m}_num_heads": dims[f"{m}_embed_dim"] // w for m, w in HEAD_DIM.items()}
    return model_module().ImageBindModel(**dims, **heads).eval()


def write(models_dir: Path, size: str = "tiny", name: str = "imagebind_huge.pth") -> Path:
    """``models_dir/imagebind/<name>``: the file name the shipped workflows use."""
    path = Path(models_dir) / "imagebind" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build(size).state_dict(), path)
    return path
