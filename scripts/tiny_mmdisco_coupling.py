"""A tiny random twin of MMDisCo's coupling checkpoint ``auffusion_videocrafter2_vggsound.pt``
(HF AkioHayakawa/MMDisCo) in its published format: a plain state dict of the discriminator under
the official key names (``time_embed.*``, ``video_text_embed.*``, ``audio_text_embed.*``,
``feature_extractor.input_blocks.N.0.*``, ``fusion_model.*``, ``last_linear.*``), at reduced widths,
written to ``models/mmdisco/``: ``.venv/bin/python scripts/tiny_mmdisco_coupling.py MODELS_DIR``.

The text widths are those of the tiny VideoCrafter2 and Auffusion twins (32 each; the official
1024 / 768); every tensor is random, including the convolutions the official model initialises to
zero, so the gradient reaches every layer. About 3 MB, fixed seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

FILE = Path("mmdisco") / "auffusion_videocrafter2_vggsound.pt"
TINY = dict(time_dim=32, video_text_dim=32, audio_text_dim=32, model_channels=32, channel_mult=(1, 2, 2),
            num_res_blocks=2, fusion_dim=64, fusion_layers=2, heads=2, ff_dim=128, fusion_out=64)
"""Two ResBlocks per level over three levels (official: four over 128/256/512), a 64-wide fusion
transformer of 1 + 1 layers with two 64-wide heads (official: 256 wide, 4 + 1 layers, 8 heads)."""


def state_dict(seed: int = 0, **sizes) -> dict[str, torch.Tensor]:
    """Random weights at TINY sizes (overridden by ``sizes``), float32."""
    from comfyui_avits.generators.mmdisco.discriminator import DiscriminatorSizes, MultimodalDiscriminator

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MultimodalDiscriminator(DiscriminatorSizes(**{**TINY, **sizes}))
        for name, p in model.named_parameters():  # norms near 1, the rest around 0
            base = 1.0 if name.endswith("weight") and p.ndim == 1 else 0.0
            scale = 0.1 if p.ndim == 1 else 1.0 / max(1, p[0].numel()) ** 0.5
            p.data = base + scale * torch.randn_like(p)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def write(models_dir: Path, seed: int = 0) -> dict[str, Path]:
    """``models_dir/mmdisco/auffusion_videocrafter2_vggsound.pt``."""
    path = Path(models_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict(seed), path)
    return {"coupling": path}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: .venv/bin/python scripts/tiny_mmdisco_coupling.py MODELS_DIR")
    import os
    import tempfile

    # importable as comfyui_avits from a standalone run, as tests/conftest.py does
    link = Path(tempfile.mkdtemp(prefix="avits-import-")) / "comfyui_avits"
    os.symlink(Path(__file__).resolve().parents[1], link)
    sys.path.insert(0, str(link.parent))
    for name, path in write(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
