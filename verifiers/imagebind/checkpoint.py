"""Loading an ImageBind checkpoint (``imagebind_huge.pth`` or any smaller twin) with the
architecture read off the state dict, so the published Huge file and tiny test files go through
the same code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch

from ...core.checkpoints import CheckpointError, load_strict, read_file
from .package import model_module

MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")
HEAD_DIM = {"vision": 80, "text": 64, "audio": 64, "depth": 48, "thermal": 64, "imu": 64}
"""Width of one attention head per trunk. Head counts leave no trace in a state dict; these are
ImageBind-Huge's (vision 1280 / 16 heads, text 1024 / 16, audio 768 / 12, depth 384 / 8, ...),
so the published file builds exactly, and a smaller twin has embed dims that are multiples."""
PUBLISHED = "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"


def architecture(state: Mapping[str, torch.Tensor]) -> dict:
    """ImageBindModel's constructor arguments for the trunks a state dict holds."""
    def dim(key: str, axis: int = 0) -> int:
        if key not in state:
            raise CheckpointError(f"no '{key}' in the checkpoint: not an ImageBind state dict")
        return int(state[key].shape[axis])

    kwargs = {"out_embed_dim": dim("modality_heads.vision.2.weight")}
    for m in MODALITIES:
        width = dim(f"modality_trunks.{m}.blocks.0.attn.in_proj_weight", 1)
        blocks = {int(k.group(1)) for k in map(re.compile(rf"modality_trunks\.{m}\.blocks\.(\d+)\.").match,
                                               state) if k}
        if width % HEAD_DIM[m]:
            raise CheckpointError(f"the {m} trunk is {width} wide, not a multiple of its head width "
                                  f"{HEAD_DIM[m]}: not an ImageBind layout this loader can build")
        kwargs[f"{m}_embed_dim"] = width
        kwargs[f"{m}_num_blocks"] = max(blocks) + 1
        kwargs[f"{m}_num_heads"] = width // HEAD_DIM[m]
    for m in ("audio", "depth", "thermal", "imu"):
        kwargs[f"{m}_drop_path"] = 0.0  # inference only
    return kwargs


def load_imagebind(path: str | Path, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float32):
    """An ``ImageBindModel`` in eval mode with the weights of ``path`` (a ``.pth`` state dict,
    read with ``weights_only=True``, or ``.safetensors``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ImageBind checkpoint at {path}; the official weights are "
                                f"published at {PUBLISHED}")
    state = read_file(path)
    model = model_module().ImageBindModel(**architecture(state))
    load_strict(model, state, path, "the ImageBind architecture its shapes imply")
    return model.to(device=device, dtype=dtype).eval()
