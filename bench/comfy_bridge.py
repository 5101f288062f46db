"""What the search costs on top of ComfyUI's own sampling, measured side by side in one run on
the tiny LTX-AV twins (CPU): seconds per candidate of Best-of-4 through AVITS_ComfyAVGenerator
(one candidate per model call, and four at once) against one plain SamplerCustomAdvanced run per
seed, generation only (decoding and verifiers are the search's other costs). On a GPU with the
real model, the same script shows the same ratio at scale.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from .common import REPO, comfyui_avits  # noqa: F401 (makes the package importable)

sys.path.insert(0, str(REPO / "scripts"))
import tiny_ltx  # noqa: E402

N = 4


def main(repeats: int = 5) -> dict:
    files = tiny_ltx.in_process(Path(tempfile.mkdtemp(prefix="avits-ltx-")))
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False  # SamplerCustomAdvanced's own console bar
    graph = tiny_ltx.StandardGraph(files, frames=33, side=128)
    times = {"SamplerCustomAdvanced": [], "bridge, max_batch 1": [], "bridge, max_batch 4": []}
    for _ in range(repeats):
        t = time.perf_counter()
        for k in range(N):
            graph.reference(k)
        times["SamplerCustomAdvanced"].append((time.perf_counter() - t) / N)
        for batch in (1, 4):
            gen = graph.generator(max_batch=batch)
            t = time.perf_counter()
            gen.denoise(gen.initial_noise(range(N)), 0, gen.steps, list(range(N)))
            times[f"bridge, max_batch {batch}"].append((time.perf_counter() - t) / N)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["SamplerCustomAdvanced"]
    print(f"Generation per candidate, tiny LTX-AV (33 frames at 128 x 128 + audio, 5 steps, CFG), "
          f"CPU, median of {repeats}")
    for k, v in med.items():
        print(f"  {k:28s} {v * 1e3:8.1f} ms   ratio {v / base:5.2f}")
    return {"ms": {k: v * 1e3 for k, v in med.items()}}


if __name__ == "__main__":
    main()
