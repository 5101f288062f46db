"""Reading model weights, once for every loader of the pack: a safetensors file, its shards, or a
PyTorch file read with ``weights_only`` (never pickled code), memory-mapped where it can be; one
strict load that names the file, the key and the shapes; one error; and a fingerprint of a file
or folder that changes when a weight file inside it does."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Mapping

import torch


class CheckpointError(ValueError):
    """A model file that is missing, unreadable, or of the wrong architecture or shape; the
    message names the file (and the key) and where the official weights are published."""


WEIGHT_FILES = ("model.safetensors", "diffusion_pytorch_model.safetensors", "pytorch_model.bin")


def read_file(path: str | Path, device: str | torch.device = "cpu", mmap: bool = True
              ) -> dict[str, torch.Tensor]:
    """The tensors of one file: ``.safetensors``, else a PyTorch file read with
    ``weights_only=True`` (memory-mapped unless ``mmap`` is off or the file is not a zip)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no file {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path), device=str(device))
        try:
            state = torch.load(path, map_location=device, weights_only=True, mmap=mmap)
        except RuntimeError as e:
            if not mmap or "mmap" not in str(e):
                raise
            state = torch.load(path, map_location=device, weights_only=True)  # an old format
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"{path} is not a readable state dict ({type(e).__name__}: {e})") from e
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict")
    return dict(state)


def read_folder(folder: str | Path, published: str,
                names: Iterable[str] = WEIGHT_FILES) -> dict[str, torch.Tensor]:
    """All tensors of a published model folder: sharded safetensors (``*.safetensors.index.json``)
    or the first of ``names`` present. A missing folder or file names what was looked for and
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
            sd.update(read_file(folder / shard))
        return sd
    names = tuple(names)
    for name in names:
        if (folder / name).is_file():
            return read_file(folder / name)
    raise CheckpointError(f"no weights in {folder} (looked for {', '.join(names)} or "
                          f"sharded safetensors); download them from {published}")


def check_keys(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
               source: str | Path, what: str = "the architecture", prefix: str = "") -> None:
    """That ``state`` has exactly the keys and shapes of ``expected``, else one error naming the
    file, the missing and unexpected keys and the first key of another shape (keys shown with
    ``prefix``, the name they have in the file)."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shaped = [k for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    keys = [f"missing {_few(missing, prefix)}" if missing else "",
            f"unexpected {_few(unexpected, prefix)}" if unexpected else ""]
    keys = [k for k in keys if k]
    if shaped:
        k, more = prefix + shaped[0], len(shaped) - 1
        raise CheckpointError(
            f"{source}: '{k}' is {tuple(state[shaped[0]].shape)} in the file; the file does not fit "
            f"{what}, whose {k} is {tuple(expected[shaped[0]].shape)}"
            + (f" ({more} more keys of another shape)" if more else "")
            + "".join(f"; {part}" for part in keys))
    if keys:
        raise CheckpointError(f"{source} does not fit {what}: {'; '.join(keys)}")


def shape_of(state: Mapping[str, torch.Tensor], key: str, source: str | Path,
             what: str) -> tuple[int, ...]:
    """The shape of ``state[key]``, for reading an architecture off a file; a file without the
    key is an error naming the file, the key and what the file should have been."""
    if key not in state:
        raise CheckpointError(f"{source}: no '{key}': not {what}")
    return tuple(state[key].shape)


def load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str | Path,
                what: str = "the architecture", prefix: str = "", assign: bool = False) -> None:
    """``module.load_state_dict(state, strict=True)`` after ``check_keys``, so a file of another
    layout is named with its key and shapes; ``assign`` for a module built on the meta device."""
    check_keys(module.state_dict(), state, source, what, prefix)
    module.load_state_dict(state, strict=True, assign=assign)


def _few(keys: list[str], prefix: str, n: int = 3) -> str:
    shown = ", ".join(prefix + k for k in keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def fingerprint(path: str | Path) -> str:
    """Changes when ``path`` or any file inside it (a model folder) is replaced: the relative
    names, sizes and modification times of its files."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        name = p.relative_to(path) if path.is_dir() else p.name
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
