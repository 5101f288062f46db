"""A tiny random Synchformer in the published format (the state dict of the whole model under
the official key names, in the official file name), for tests and benchmarks: the loader reads
its sizes off the shapes as it does for synchformer_state_dict.pth. Only widths and depths
shrink; the input sizes (224 px, 16-frame segments, 128 x 66 log-mels, 14 segments, 21
classes) are the published ones."""

from __future__ import annotations

from pathlib import Path

import torch

SIZES = {
    # widths are multiples of each part's head width (64 in the extractors, 96 in the classifier)
    "tiny": dict(video_dim=64, video_depth=1, video_heads=1, video_hidden=128, video_pool_hidden=128,
                 audio_dim=64, audio_depth=1, audio_heads=1, audio_hidden=128, audio_pool_hidden=128,
                 dim=96, depth=1, heads=1, hidden=192),
}


def build(size: str = "tiny", seed: int = 0) -> torch.nn.Module:
    """A random Synchformer of one of SIZES, its weights drawn wide enough (attention far from
    uniform) that the offset logits follow the input."""
    from comfyui_avits.verifiers.synchformer import Architecture, Synchformer

    torch.manual_seed(seed)
    model = Synchformer(Architecture(**SIZES[size]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.normal_(1.0 if "norm" in name and name.endswith("weight") else 0.0, 0.3)
            else:
                p.normal_(0.0, 2.0 / p[0].numel() ** 0.5 if p.shape[0] > 1 else 0.5)
    return model.eval()


def write(models_dir: Path, size: str = "tiny", name: str = "synchformer_state_dict.pth") -> Path:
    """``models_dir/synchformer/<name>``: the official file name."""
    path = Path(models_dir) / "synchformer" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build(size).state_dict(), path)
    return path
