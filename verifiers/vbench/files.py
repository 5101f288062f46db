"""The weight files of a VBench dimension in models/vbench/: each found or named with where to
get it, and the identity of a verifier built on them."""

from __future__ import annotations

from pathlib import Path

import torch

from ...core.checkpoints import CheckpointError, fingerprint


def require(folder: str | Path, files: tuple[tuple[str, str], ...]) -> dict[str, Path]:
    """{file name: path} of every (name, source) of ``files`` inside ``folder``; one error
    naming each missing file, the folder and where to get it."""
    folder = Path(folder)
    gone = [(name, source) for name, source in files if not (folder / name).is_file()]
    if gone:
        raise CheckpointError("; ".join(f"'{name}' is not in {folder}: download it from {source}"
                                        for name, source in gone))
    return {name: folder / name for name, _ in files}


def identity(name: str, paths: dict[str, Path], dtype: torch.dtype) -> str:
    """The reward name, a fingerprint of each file (changes when one is replaced) and the
    precision the model runs in."""
    prints = ", ".join(f"{file} {fingerprint(path)}" for file, path in paths.items())
    return f"{name}({prints}; {str(dtype).removeprefix('torch.')})"
