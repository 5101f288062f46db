"""Reaching the model code and tokenizer of ``imagebind-unofficial`` without running its package
``__init__`` (which imports its data module, whose dependencies are broken on current
torchvision). The code is CC BY-NC-SA 4.0: it is installed, never vendored:

    pip install --no-deps imagebind-unofficial==0.1.1 ftfy regex iopath einops timm
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import lru_cache
from pathlib import Path

INSTALL = "pip install --no-deps imagebind-unofficial==0.1.1 ftfy regex iopath einops timm"


class ImageBindMissing(ImportError):
    """The ImageBind model code is not installed."""


def _package_dir() -> Path:
    spec = importlib.util.find_spec("imagebind")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImageBindMissing(f"the ImageBind model code is not installed; install it with: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations)))


def _module(name: str) -> types.ModuleType:
    if "imagebind" not in sys.modules:
        root = _package_dir()
        stub = types.ModuleType("imagebind")
        stub.__path__ = [str(root)]
        stub.__spec__ = importlib.util.spec_from_file_location("imagebind", root / "__init__.py",
                                                               submodule_search_locations=[str(root)])
        sys.modules["imagebind"] = stub
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImageBindMissing(f"the ImageBind model code does not import ({e}); install it "
                               f"with: {INSTALL}") from None


def model_module() -> types.ModuleType:
    """``imagebind.models.imagebind_model`` (ImageBindModel, ModalityType)."""
    return _module("imagebind.models.imagebind_model")


@lru_cache(maxsize=1)
def tokenizer():
    """ImageBind's BPE tokenizer (77 tokens), from the vocabulary inside the wheel."""
    preprocessors = _module("imagebind.models.multimodal_preprocessors")
    return preprocessors.SimpleTokenizer(str(_package_dir() / "bpe" / "bpe_simple_vocab_16e6.txt.gz"))
