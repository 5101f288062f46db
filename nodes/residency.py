"""Putting a search phase's models on the device through ComfyUI's model management, so our
verifiers share the GPU with the user's other models the way ComfyUI's own models do (loaded
when needed, offloaded when something else needs the memory)."""

from __future__ import annotations

import weakref

import comfy.model_management
import comfy.model_patcher
import torch

_patchers: "weakref.WeakKeyDictionary[torch.nn.Module, comfy.model_patcher.ModelPatcher]" = \
    weakref.WeakKeyDictionary()


def patcher(model: torch.nn.Module | comfy.model_patcher.ModelPatcher) -> comfy.model_patcher.ModelPatcher:
    """The ModelPatcher that manages ``model`` (made once per module)."""
    if isinstance(model, comfy.model_patcher.ModelPatcher):
        return model
    if model not in _patchers:
        _patchers[model] = comfy.model_patcher.ModelPatcher(
            model, load_device=comfy.model_management.get_torch_device(),
            offload_device=comfy.model_management.unet_offload_device())
    return _patchers[model]


def place(phase: str, models: list) -> None:
    """The search's ``place`` hook: load the phase's models, offloading others if needed."""
    comfy.model_management.load_models_gpu([patcher(m) for m in models])
