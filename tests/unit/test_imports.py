"""The core imports as a plain library: no ComfyUI module is loaded by it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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
import comfyui_avits.generators.javisdit.dit, comfyui_avits.generators.javisdit.prior
import comfyui_avits.generators.javisdit.text, comfyui_avits.generators.javisdit.video_vae
import comfyui_avits.generators.javisdit.audio_vae, comfyui_avits.generators.javisdit.schedule
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


FLOORS = {"core": set(), "search": {"core"}, "verifiers": {"core"}, "generators": {"core"}}
"""What each lower package may import of the pack: core nothing, the first floor only core."""


def _pack_imports(path: Path, package: Path) -> set[str]:
    """The top-level pack packages a module imports (relative imports resolved)."""
    parts = path.relative_to(package).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[:len(parts) - node.level])
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.add(target[0])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found |= {n.split(".")[1] for n in names if n.startswith("comfyui_avits.")}
    return found


def test_no_import_runs_upward_or_sideways():
    package = Path(comfyui_avits.__path__[0])
    bad = []
    for floor, allowed in FLOORS.items():
        for path in sorted((package / floor).rglob("*.py")):
            wrong = _pack_imports(path, package) - allowed - {floor}
            if wrong:
                bad.append(f"{path.relative_to(package)} imports {sorted(wrong)}")
    assert not bad, bad
