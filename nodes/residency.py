"""Putting a search phase's models on the device through ComfyUI's model management, so our
verifiers share the GPU with the user's other models the way ComfyUI's own models do (loaded
when needed, offloaded when something else needs the memory)."""

from __future__ import annotations

import comfy.model_management
import comfy.model_patcher
import torch


class Held(torch.nn.Module):
    """A module as ComfyUI's ModelPatcher holds it: the patcher keeps its bookkeeping
    (device, loaded memory) as attributes of the module it manages, which a transformers model
    refuses for ``device``, so it manages this holder instead."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner


def patcher(model: torch.nn.Module | comfy.model_patcher.ModelPatcher,
            device: torch.device | None = None) -> comfy.model_patcher.ModelPatcher:
    """The ModelPatcher that manages ``model``, made once and kept with the module (so it goes
    when the module goes): it loads onto ``device`` (a loader's choice, see ``pin``), by default
    ComfyUI's device."""
    if isinstance(model, comfy.model_patcher.ModelPatcher):
        return model
    if getattr(model, "_avits_patcher", None) is None:
        model._avits_patcher = comfy.model_patcher.ModelPatcher(
            Held(model), load_device=device or comfy.model_management.get_torch_device(),
            offload_device=comfy.model_management.unet_offload_device())
    return model._avits_patcher


def pin(models: list[torch.nn.Module], device: torch.device) -> None:
    """A loader's device choice for its modules: every later ``place`` loads them there (the
    CPU stays the CPU on a GPU host, so a step never mixes devices)."""
    for model in models:
        model._avits_patcher = None
        patcher(model, torch.device(device))


def place(phase: str, models: list) -> None:
    """The search's ``place`` hook: load the phase's models, offloading others if needed."""
    comfy.model_management.load_models_gpu([patcher(m) for m in models])
