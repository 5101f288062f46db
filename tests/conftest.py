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


def pytest_configure(config):
    """One torch thread for the whole session, whatever the machine: numerics that depend on the
    conv / matmul blocking (a batch of 4 against a batch of 1) then do not change with the core
    count, and the many tiny ops of the twins run faster than with threads on a busy 2-core box.
    The ComfyUI servers the integration tests start are separate processes and keep theirs."""
    import torch

    torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--reverse", action="store_true",
                     help="run the tests in reverse order (checks that none depends on another)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse"):
        items.reverse()
