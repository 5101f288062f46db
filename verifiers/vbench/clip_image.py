"""OpenAI CLIP's image tower (the vision transformer and its projection) from the Hugging Face
``model.safetensors`` of openai/clip-vit-*: the same weights as OpenAI's TorchScript files that
VBench loads, in a format read without unpickling. Only ``vision_model.*`` and
``visual_projection.weight`` are used; the text tower in the file is ignored."""

from __future__ import annotations

from functools import partial

import math
import re
from pathlib import Path
from typing import Mapping

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from ...core.checkpoints import CheckpointError, load_strict, read_file, shape_of
from .frames import SIZE

HEAD_DIM = 64
"""OpenAI CLIP's vision heads are width // 64 (ViT-B/32: 12, ViT-L/14: 16)."""
PREFIXES = ("vision_model.", "visual_projection.")


def vision_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The image tower's tensors of a whole CLIPModel file (an old file's ``position_ids``
    buffer, an arange, left out)."""
    return {k: v for k, v in state.items()
            if k.startswith(PREFIXES) and not k.endswith("embeddings.position_ids")}


def config(state: Mapping[str, torch.Tensor], source: str | Path) -> CLIPVisionConfig:
    """The CLIPVisionConfig the tensors imply (OpenAI's quick GELU, 64-wide heads); an error
    naming the key if they are not a CLIP image tower at VBench's 224 px."""
    shape = partial(shape_of, state, source=source, what="a CLIP model in the Hugging Face "
                    "layout (openai/clip-vit-* model.safetensors)")

    e = "vision_model.embeddings."
    width, patch = shape(e + "class_embedding")[0], shape(e + "patch_embedding.weight")[-1]
    grid = math.isqrt(shape(e + "position_embedding.weight")[0] - 1)
    if grid * patch != SIZE:
        raise CheckpointError(f"{source}: '{e}position_embedding.weight' and the {patch} px patches "
                              f"make a {grid * patch} px image; VBench's CLIP models take {SIZE} px")
    layers = {int(m.group(1)) for m in
              map(re.compile(r"vision_model\.encoder\.layers\.(\d+)\.").match, state) if m}
    return CLIPVisionConfig(
        hidden_size=width, num_attention_heads=max(width // HEAD_DIM, 1),
        intermediate_size=shape("vision_model.encoder.layers.0.mlp.fc1.weight")[0],
        num_hidden_layers=max(layers) + 1 if layers else 0, image_size=SIZE, patch_size=patch,
        projection_dim=shape("visual_projection.weight")[0], hidden_act="quick_gelu",
        layer_norm_eps=1e-5)


class ClipImage(torch.nn.Module):
    """Images [B, 3, 224, 224] (CLIP-normalised) to CLIP image features [B, projection_dim],
    OpenAI's ``encode_image``."""

    def __init__(self, cfg: CLIPVisionConfig) -> None:
        super().__init__()
        self.tower = CLIPVisionModelWithProjection(cfg)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tower(pixel_values=images).image_embeds


def load_clip_image(path: str | Path, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> ClipImage:
    """The image tower of the CLIP in ``path`` (safetensors), in eval mode, loaded strictly."""
    state = vision_state(read_file(path))
    cfg = config(state, path)
    with torch.device("meta"):
        model = ClipImage(cfg)
    load_strict(model.tower, state, path, "CLIP's image tower of the sizes its shapes imply",
                assign=True)
    embeddings = model.tower.vision_model.embeddings
    embeddings.register_buffer("position_ids", torch.arange(embeddings.num_positions)[None],
                               persistent=False)
    return model.to(device=device, dtype=dtype).eval()
