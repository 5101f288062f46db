"""Makes the checkout importable as ``comfyui_avits`` (the name ComfyUI loads it under) through
a symlink in a temporary directory placed on sys.path: no ComfyUI on the path."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_link_dir = Path(tempfile.mkdtemp(prefix="avits-import-"))
os.symlink(REPO, _link_dir / "comfyui_avits")
sys.path.insert(0, str(_link_dir))
