"""scripts/tiny_models DIR: tiny random twins of every model the pack loads, in the official
formats and ComfyUI's models-folder layout, under the file names the shipped workflows use
(``scripts/tiny_models .comfy/models`` makes every shipped workflow runnable on scripts/serve)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import tiny_amt  # noqa: E402
import tiny_h3  # noqa: E402
import tiny_imagebind  # noqa: E402
import tiny_javisdit  # noqa: E402
import tiny_ltx  # noqa: E402
import tiny_mmdisco  # noqa: E402
import tiny_musiq  # noqa: E402
import tiny_synchformer  # noqa: E402
import tiny_vbench  # noqa: E402
import tiny_videoreward  # noqa: E402

WRITERS = {"imagebind": tiny_imagebind.write, "videoreward": tiny_videoreward.write,
           "vqascore": tiny_videoreward.write_vqascore, "synchformer": tiny_synchformer.write,
           "vbench": tiny_vbench.write, "musiq": tiny_musiq.write, "amt": tiny_amt.write}


def write_all(models_dir: Path) -> dict[str, Path]:
    """Every verifier's twin, the LTX-2 twins (LTX-AV, LTX-Video, their VAEs, the TAE and the
    latent upsampler), the MiniMax H3 twin (its audio VAE loads where tiny_h3.use_twin_sizes()
    ran: the test server) and every JavisDiT
    file (DiT, prior, OpenSora VAE, AudioLDM2 VAE + vocoder, T5) and MMDisCo's three files. The shipped LTX-2 workflows
    also need a Gemma 3 text encoder, which has no tiny twin (ComfyUI fixes its size), so on
    tiny models those run with LotusConditioning in its place."""
    out = {name: write(Path(models_dir)) for name, write in WRITERS.items()}
    out.update({f"ltx_{k}": p for k, p in tiny_ltx.write(Path(models_dir)).items()})
    out.update({f"h3_{k}": p for k, p in tiny_h3.write(Path(models_dir)).items()})
    out.update({f"javisdit_{k}": p for k, p in tiny_javisdit.write(Path(models_dir), imagebind=False).items()})
    out.update({f"mmdisco_{k}": p for k, p in tiny_mmdisco.write(Path(models_dir)).items()})
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/tiny_models MODELS_DIR")
    for name, path in write_all(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
