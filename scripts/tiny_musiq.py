"""A tiny random MUSIQ in the published format (a plain state dict under pyiqa's key names, in the
official file name ``musiq_spaq_ckpt-358bb6af.pth``), for tests and benchmarks: the loader reads
its sizes off the shapes as it does for the real file. The transformer shrinks (2 layers of 2
heads, 128 wide) and so do the patches (16 px instead of 32); the stem's widths, the hash grid,
the three scales and the one-score head are the published ones."""

from __future__ import annotations

from pathlib import Path

import torch

FILE = "musiq_spaq_ckpt-358bb6af.pth"
SIZES = {"tiny": dict(patch=16, stem=64, hidden=128, mlp=64, layers=2, heads=2, scales=3, grid=10)}


def build(size: str = "tiny", seed: int = 0) -> torch.nn.Module:
    """A random MUSIQ of one of SIZES, its weights drawn wide enough (attention far from
    uniform, embeddings of positions and scales that matter) that the score follows the image."""
    from comfyui_avits.verifiers.vbench.musiq import MUSIQ, Architecture

    torch.manual_seed(seed)
    model = MUSIQ(Architecture(**SIZES[size]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.3)
            elif name.endswith(("_emb", "cls")):
                p.normal_(0.0, 0.5)
            else:
                p.normal_(0.0, 2.0 / p[0].numel() ** 0.5)
    return model.eval()


def write(models_dir: Path, size: str = "tiny") -> Path:
    """``models_dir/vbench/musiq_spaq_ckpt-358bb6af.pth``: the official file name and folder."""
    path = Path(models_dir) / "vbench" / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build(size).state_dict(), path)
    return path
