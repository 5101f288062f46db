"""Tiny random twins of MMDisCo's three files in the published layouts, under ComfyUI's models
folder (``mmdisco/``): VideoCrafter2's ``videocrafter2/model.ckpt`` (official key names at a
reduced width), the Auffusion diffusers folder ``auffusion-full/`` (save_pretrained, with its
vocoder) and the coupling state dict ``auffusion_videocrafter2_vggsound.pt``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def write(models_dir: Path) -> dict[str, Path]:
    import tiny_auffusion
    import tiny_mmdisco_coupling
    import tiny_videocrafter

    out: dict[str, Path] = {}
    for writer in (tiny_videocrafter, tiny_auffusion, tiny_mmdisco_coupling):
        out.update(writer.write(Path(models_dir)))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_mmdisco.py MODELS_DIR")
    for name, path in write(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
