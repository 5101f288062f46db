"""Makes the checkout importable as ``comfyui_avits`` (a symlink in a temporary directory on
sys.path), as ComfyUI and the tests import it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_link = Path(tempfile.mkdtemp(prefix="avits-bench-")) / "comfyui_avits"
os.symlink(REPO, _link)
sys.path.insert(0, str(_link.parent))

import comfyui_avits  # noqa: E402,F401
