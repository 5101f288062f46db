"""The core imports as a plain library: no ComfyUI module is loaded by it."""

from __future__ import annotations

import subprocess
import sys

import comfyui_avits

COMFY_MODULES = ("comfy", "comfy_api", "comfy_execution", "folder_paths", "server",
                 "latent_preview", "node_helpers", "nodes")

CHECK = """
import sys
sys.path.insert(0, {path!r})
import comfyui_avits, comfyui_avits.search, comfyui_avits.verifiers, comfyui_avits.generators
import comfyui_avits.search.aggregation, comfyui_avits.search.strategies, comfyui_avits.search.arw_state
import comfyui_avits.verifiers.av_align, comfyui_avits.generators.toyav.text_match, comfyui_avits.core
import comfyui_avits.generators.toyav
from comfyui_avits.search.aggregation import ARW
from comfyui_avits.verifiers import AVBatch, JavisScore, AVHScore, ImageBindScore
ARW(weights=None, lr=0.05, iters=50, optimizer="adam", history_size=None)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {mods!r})
print(",".join(loaded))
"""


def test_core_imports_without_comfyui():
    link_dir = str(__import__("pathlib").Path(comfyui_avits.__path__[0]).parent)
    out = subprocess.run([sys.executable, "-c", CHECK.format(path=link_dir, mods=COMFY_MODULES)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the core imported ComfyUI modules: {out.stdout}"


def test_entrypoint_is_v3_only():
    assert hasattr(comfyui_avits, "comfy_entrypoint")
    assert not hasattr(comfyui_avits, "NODE_CLASS_MAPPINGS")
