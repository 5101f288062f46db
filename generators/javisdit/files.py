"""Reading the weights of a published model folder: one safetensors file, its shards, or a
PyTorch file read with ``weights_only`` (never pickled code)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file


class CheckpointError(ValueError):
    """A model file that is missing, unreadable or of the wrong architecture."""


WEIGHT_FILES = ("model.safetensors", "diffusion_pytorch_model.safetensors", "pytorch_model.bin")


def read_state_dict(folder: Path, published: str) -> dict[str, torch.Tensor]:
    """All tensors of a model folder. A missing folder or file names what was looked for and
    where the official weights are published."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"model folder {folder} not found; download it from {published} "
                              f"(config.json and the weights) into that folder")
    for index in sorted(folder.glob("*.safetensors.index.json")):
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise CheckpointError(f"{index} lists shards that are not in {folder}: {missing}; "
                                  f"download them from {published}")
        sd: dict[str, torch.Tensor] = {}
        for shard in shards:
            sd.update(load_file(str(folder / shard)))
        return sd
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            if path.suffix == ".safetensors":
                return load_file(str(path))
            sd = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(sd, dict):
                raise CheckpointError(f"{path} does not hold a state dict")
            return sd
    raise CheckpointError(f"no weights in {folder} (looked for {', '.join(WEIGHT_FILES)} or "
                          f"sharded safetensors); download them from {published}")
