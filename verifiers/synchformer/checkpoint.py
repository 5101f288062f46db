"""Loading ``synchformer_state_dict.pth`` (the whole model, as released with MMAudio and read by
av-benchmark) or a smaller twin of it: the sizes are read off the state dict, the load is
strict, the file is read with ``weights_only=True``."""

from __future__ import annotations

from functools import partial

import re
from pathlib import Path
from typing import Mapping

import torch

from ...core.checkpoints import CheckpointError, load_strict, read_file, shape_of
from .audio_encoder import TIME_TOKENS
from .model import VIDEO_TOKENS, Architecture, Synchformer

FILE = "synchformer_state_dict.pth"
PUBLISHED = f"https://github.com/hkchengrex/MMAudio/releases/download/v0.1/{FILE}"
HEAD_DIM = {"video": 64, "audio": 64, "transformer": 96}
"""Width of one attention head per part (head counts leave no trace in a state dict): the
published model has 12 heads of 64 in both extractors and 8 of 96 in the classifier."""
CLASSES = 21
"""DeSync's offset grid: 21 classes from -2 s to +2 s."""


def architecture(state: Mapping[str, torch.Tensor]) -> Architecture:
    """The sizes a Synchformer state dict implies; an error naming the key if it is not one."""
    shape = partial(shape_of, state, source="the checkpoint",
                    what=f"a Synchformer state dict (the official one is {PUBLISHED})")

    def depth(pattern: str) -> int:
        found = {int(m.group(1)) for m in map(re.compile(pattern).match, state) if m}
        return max(found) + 1 if found else 0

    def heads(part: str, width: int) -> int:
        if width % HEAD_DIM[part]:
            raise CheckpointError(f"the {part} part is {width} wide, not a multiple of its head "
                                  f"width {HEAD_DIM[part]}: not a Synchformer layout this loader builds")
        return width // HEAD_DIM[part]

    v, a = "vfeat_extractor.", "afeat_extractor."
    video_dim = shape(v + "cls_token")[-1]
    audio_dim = shape(a + "ast.embeddings.cls_token")[-1]
    dim = shape("transformer.OFF_tok")[-1]
    classes = shape("transformer.off_head.weight")[0]
    if classes != CLASSES:
        raise CheckpointError(f"'transformer.off_head.weight' has {classes} offset classes; "
                              f"DeSync's grid is {CLASSES} classes over -2..2 s")
    tokens = shape("transformer.pos_emb_cfg.pos_emb")[1] - 2
    per_segment = VIDEO_TOKENS + TIME_TOKENS
    if tokens % per_segment:
        raise CheckpointError(f"'transformer.pos_emb_cfg.pos_emb' holds {tokens + 2} positions, "
                              f"not 2 + {per_segment} per segment")
    return Architecture(
        video_dim=video_dim, video_depth=depth(r"vfeat_extractor\.blocks\.(\d+)\."),
        video_heads=heads("video", video_dim), video_hidden=shape(v + "blocks.0.mlp.fc1.weight")[0],
        video_pool_hidden=shape(v + "spatial_attn_agg.linear1.weight")[0],
        audio_dim=audio_dim, audio_depth=depth(r"afeat_extractor\.ast\.encoder\.layer\.(\d+)\."),
        audio_heads=heads("audio", audio_dim),
        audio_hidden=shape(a + "ast.encoder.layer.0.intermediate.dense.weight")[0],
        audio_pool_hidden=shape(a + "freq_attn_agg.linear1.weight")[0],
        dim=dim, depth=depth(r"transformer\.blocks\.(\d+)\."), heads=heads("transformer", dim),
        hidden=shape("transformer.blocks.0.mlp.0.weight")[0], classes=classes,
        segments=tokens // per_segment)


def load_synchformer(path: str | Path, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32) -> Synchformer:
    """A Synchformer in eval mode with the weights of ``path`` (built on the meta device, so
    the 907 MB file is not initialised twice)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Synchformer checkpoint at {path}; the official weights are "
                                f"published at {PUBLISHED}")
    state = read_file(path)
    with torch.device("meta"):
        model = Synchformer(architecture(state))
    load_strict(model, state, path, "the Synchformer architecture its shapes imply", assign=True)
    return model.to(device=device, dtype=dtype).eval()
