"""Model files for the neural verifiers: ComfyUI model folders registered for them, the choice
of files a loader offers, the dtype a device supports, and errors that say which file is
missing, where it goes and where the official one is published."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import comfy.model_management
import folder_paths
import torch
from comfy_api.latest import io

from ..core.checkpoints import fingerprint


def register_folder(name: str, extensions: set[str] | None = None) -> None:
    """``models/<name>/`` as a ComfyUI model folder (also under --base-directory)."""
    path = os.path.join(folder_paths.models_dir, name)
    if name not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[name] = ([path], extensions or set())
    elif path not in folder_paths.folder_names_and_paths[name][0]:
        folder_paths.add_model_folder_path(name, path)


def file_choices(folder: str, default: str) -> list[str]:
    """The files in a model folder, with the name the shipped workflows use always listed (a
    missing default is then refused by the loader's ``missing`` check, which says where to get
    it, not by ComfyUI's 'Value not in list')."""
    return sorted(set(folder_paths.get_filename_list(folder)) | {default})


def subfolder_choices(folder: str, default: str) -> list[str]:
    """The checkpoint folders inside a model folder (for models published as folders)."""
    names = {default}
    for base in folder_paths.get_folder_paths(folder):
        if os.path.isdir(base):
            names |= {d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))}
    return sorted(names)


def folder_input(folder: str, default: str, tooltip: str) -> io.Combo.Input:
    """A loader's choice of checkpoint folder inside ``models/<folder>/``."""
    return io.Combo.Input("folder", options=subfolder_choices(folder, default), default=default,
                          tooltip=tooltip)


class Need(NamedTuple):
    """A file or folder a loader reads: its model folder, its name there, what it is and where
    the official one is published (the last two for the messages)."""

    folder: str
    name: str
    what: str
    published: str
    is_dir: bool = False


def _in(base: str, name: str) -> Path:
    """``name`` inside ``base``, never outside it (as ComfyUI's get_full_path reads names)."""
    return Path(base) / os.path.relpath(os.path.join("/", name), "/")


def _locate(need: Need) -> Path | None:
    for base in folder_paths.get_folder_paths(need.folder):
        path = _in(base, need.name)
        if (path.is_dir() if need.is_dir else path.is_file()):
            return path
    return None


def _not_found(need: Need) -> str:
    searched = ", ".join(folder_paths.get_folder_paths(need.folder))
    return (f"{need.what} '{need.name}' was not found in models/{need.folder}/ ({searched}). "
            f"Put the official {need.what} there: {need.published}")


def find(need: Need) -> Path:
    """The full path of a loader's file, or an error that names the file, the folders searched
    and where to get the official weights."""
    path = _locate(need)
    if path is None:
        raise FileNotFoundError(_not_found(need))
    return path


def missing(needs: Iterable[Need]) -> bool | str:
    """A loader's ``validate_inputs``: True when every file it reads is in place, else one
    message naming each missing one, so a prompt is refused when queued with all of them listed
    (not one per run). A linked input (None while validating) is found when the loader runs."""
    gone = [_not_found(n) for n in needs if n.name is not None and _locate(n) is None]
    if not gone:
        return True
    return f"Model files missing ({len(gone)}):\n" + "\n".join(f"- {g}" for g in gone)


def file_state(folder: str, name: str) -> str:
    """What a loader's cache key should follow: the file's or model folder's path and the
    fingerprint of everything in it (or that it is missing), so a weight file replaced on disk,
    inside a folder too, is loaded again."""
    for base in folder_paths.get_folder_paths(folder):
        path = _in(base, name)
        if path.exists():
            return f"{path}:{fingerprint(path)}"
    return f"missing:{name}"


def dtype_for(choice: str) -> torch.dtype:
    """'auto': bf16 or fp16 where the compute device supports them, else fp32."""
    if choice != "auto":
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[choice]
    device = comfy.model_management.get_torch_device()
    if comfy.model_management.should_use_bf16(device):
        return torch.bfloat16
    if comfy.model_management.should_use_fp16(device):
        return torch.float16
    return torch.float32


DTYPES = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("default", "cpu")
"""Where a loader runs its model: ComfyUI's device, or the CPU."""


def dtype_input() -> io.Combo.Input:
    """The loaders' precision choice (resolved by ``dtype_for``)."""
    return io.Combo.Input("dtype", options=list(DTYPES), default=DTYPES[0], advanced=True,
                          tooltip="auto: bf16 or fp16 where the GPU supports it, else fp32.")


def device_input(what: str) -> io.Combo.Input:
    """A generator loader's choice of where ``what`` runs (resolved by ``device_for``)."""
    return io.Combo.Input("device", options=list(DEVICES), default=DEVICES[0], advanced=True,
                          tooltip=f"Where {what} runs: default is ComfyUI's device (the GPU); "
                                  "cpu runs it on the CPU (slow, in fp32).")


def device_for(choice: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """(device, weight dtype) of a loader's device and dtype choices: the CPU runs in fp32."""
    if choice == "cpu":
        return torch.device("cpu"), torch.float32
    return comfy.model_management.get_torch_device(), dtype_for(dtype)
