"""Generators that need no ComfyUI: the embedded ToyAV world."""
