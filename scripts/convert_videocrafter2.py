"""One-time converter: VideoCrafter2's ``model.ckpt`` -> ``model.safetensors`` beside it.

    .venv/bin/python scripts/convert_videocrafter2.py models/mmdisco/videocrafter2/model.ckpt

Use it when the loader reports that ``model.ckpt`` holds more than weights (a PyTorch Lightning
checkpoint may pickle trainer objects that ``torch.load(weights_only=True)`` refuses). The file
is still read by torch's weights-only unpickler, never by plain pickle: each foreign class it
names is replaced by an inert placeholder (a foreign mapping by a plain dict), so no code from the
file runs. Only the weights the pack loads are kept: ``model.diffusion_model.*``,
``first_stage_model.*`` and ``cond_stage_model.model.*``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

KEEP = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.model.")
MAX_ROUNDS = 200  # distinct foreign classes a checkpoint may name before we give up


def placeholder(path: str) -> type:
    """An inert class standing for the foreign global ``path``: it takes any arguments and
    state and keeps them, so the weights around it can be read."""

    class Placeholder(list):
        def __new__(cls, *args, **kwargs):
            return super().__new__(cls)

        def __init__(self, *args, **kwargs):
            super().__init__()

        def __setstate__(self, state):
            self.state = state

    Placeholder.__qualname__ = Placeholder.__name__ = "Placeholder_" + re.sub(r"\W", "_", path)
    return Placeholder


def safe_load(path: Path) -> object:
    """``torch.load(weights_only=True)`` with a placeholder for every foreign global."""
    stand_ins: dict[str, type] = {}
    for _ in range(MAX_ROUNDS):
        try:
            with torch.serialization.safe_globals([(c, p) for p, c in stand_ins.items()]):
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:  # torch reports each refusal as an UnpicklingError
            msg = str(e)
            if m := re.search(r"Unsupported global: GLOBAL ([\w.]+)", msg):
                stand_ins[m.group(1)] = placeholder(m.group(1))
                continue
            if m := re.search(r"for dict.*but got <class '[\w.]*Placeholder_(\w+)'>", msg):
                name = next(p for p, c in stand_ins.items() if c.__name__.endswith(m.group(1)))
                stand_ins[name] = dict
                continue
            raise
    raise RuntimeError(f"{path} names more than {MAX_ROUNDS} foreign classes")


def state_dict(obj: object, source: Path) -> dict[str, torch.Tensor]:
    """The weights the pack loads, from ``{'state_dict': ...}``, ``{'module': ...}`` or flat."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("module"), dict):
        obj = {k.removeprefix("_forward_module."): v for k, v in obj["module"].items()}
    if not isinstance(obj, dict):
        raise ValueError(f"{source} does not hold a state dict")
    sd = {k: v for k, v in obj.items() if k.startswith(KEEP) and isinstance(v, torch.Tensor)}
    if not sd:
        raise ValueError(f"{source} has none of {', '.join(p + '*' for p in KEEP)}")
    return sd


def convert(src: Path, dst: Path | None = None) -> Path:
    """Write ``dst`` (default: ``model.safetensors`` beside ``src``) and return its path."""
    src = Path(src)
    dst = Path(dst) if dst else src.with_suffix(".safetensors")
    sd = state_dict(safe_load(src), src)
    seen: set[int] = set()
    out = {}
    for key, value in sd.items():  # safetensors refuses tensors that share memory
        ptr = value.untyped_storage().data_ptr()
        out[key] = value.contiguous().clone() if ptr in seen else value.contiguous()
        seen.add(ptr)
    save_file(out, str(dst))
    return dst


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: convert_videocrafter2.py MODEL_CKPT [OUT_SAFETENSORS]")
    print(convert(*map(Path, sys.argv[1:])))
