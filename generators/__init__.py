"""Generators in plain torch, none importing ComfyUI: the embedded ToyAV world (exported here),
JavisDiT's modules (registered as a ComfyUI model by nodes/javisdit_model.py) and MMDisCo's joint
sampler. LTX-2 and MiniMax H3 are ComfyUI's own models, searched through nodes/comfy_bridge.py."""

from .toyav import ToyAVGenerator

__all__ = ["ToyAVGenerator"]
