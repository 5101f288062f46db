"""What the search costs on top of ComfyUI's own sampling, measured side by side in one run on
the tiny twins (CPU) of LTX-AV and of JavisDiT: seconds per candidate of Best-of-4 through
AVITS_ComfyAVGenerator (one candidate per model call, and four at once) against one plain
SamplerCustomAdvanced run per seed, generation only (decoding and verifiers are the search's
other costs); then decoding per candidate with the full VAE against the scoring decoder
(taeltx_2's TAEHV). On the tiny twins the TAE, whose widths are fixed, is the bigger network;
at real size the ratio is the other way round (scripts/bench gpu measures it there).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from .common import REPO, comfyui_avits  # noqa: F401 (makes the package importable)

sys.path.insert(0, str(REPO / "scripts"))
import tiny_javisdit  # noqa: E402
import tiny_ltx  # noqa: E402

N = 4


def graphs() -> dict:
    """The tiny LTX-AV graph (33 frames at 128 x 128 + audio, 5 steps) and the tiny JavisDiT
    graph (17 frames at 64 x 96 + audio, 30 steps, the reference's sampling)."""
    files = tiny_ltx.in_process(Path(tempfile.mkdtemp(prefix="avits-ltx-")))
    tiny_javisdit.in_process(Path(tempfile.mkdtemp(prefix="avits-javisdit-")))
    return {"tiny LTX-AV (33 x 128 x 128 + audio, 5 steps, CFG)": tiny_ltx.StandardGraph(files, frames=33, side=128),
            "tiny JavisDiT (17 x 64 x 96 + audio, 30 steps, CFG 7)": tiny_javisdit.StandardGraph()}


def measure(graph, repeats: int) -> dict[str, float]:
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
    return {k: statistics.median(v) for k, v in times.items()}


def main(repeats: int = 5) -> dict:
    built = graphs()
    import comfy.utils
    out = {}
    for name, graph in built.items():
        comfy.utils.PROGRESS_BAR_ENABLED = False  # SamplerCustomAdvanced's own console bar
        med = measure(graph, repeats)
        base = med["SamplerCustomAdvanced"]
        print(f"Generation per candidate, {name}, CPU, median of {repeats}")
        for k, v in med.items():
            print(f"  {k:28s} {v * 1e3:8.1f} ms   ratio {v / base:5.2f}")
        out[name] = {k: v * 1e3 for k, v in med.items()}
    ltx = built[next(iter(built))]
    print(batching_line(ltx))
    print(decode_line(ltx, repeats))
    return out


def batching_line(graph) -> str:
    """The price of the opt-in batching: candidates of a batch of 4 against the same seeds one
    at a time (the default, SamplerCustomAdvanced bit for bit)."""
    states = {}
    for batch in (1, N):
        gen = graph.generator(max_batch=batch)
        states[batch], _ = gen.denoise(gen.initial_noise(range(N)), 0, gen.steps, list(range(N)))
    diff = max(float((p - q).abs().max()) for a, b in zip(states[1], states[N])
               for p, q in zip(a.unbind(), b.unbind()))
    return f"Batching {N} candidates per call, tiny LTX-AV: max |batched - one at a time| = {diff:.1e}"


def decode_line(graph, repeats: int) -> str:
    """Decode time per candidate of the tiny LTX-AV: full VAE vs the scoring decoder."""
    import nodes as comfy_nodes
    import torch
    tae = comfy_nodes.VAELoader().load_vae(tiny_ltx.FILES["tae"].split("/")[-1])[0]
    gen = graph.generator()
    state = gen.denoise(gen.initial_noise([0]), 0, gen.steps, [0])[0]
    times: dict[str, list[float]] = {"vae": [], "scoring_vae (TAEHV)": []}
    with torch.no_grad():
        for _ in range(repeats):
            for name, g in (("vae", gen), ("scoring_vae (TAEHV)", graph.generator(scoring_vae=tae))):
                t = time.perf_counter()
                g.decode(state)
                times[name].append(time.perf_counter() - t)
    full, cheap = (statistics.median(v) for v in times.values())
    return (f"Decode per candidate, tiny LTX-AV, CPU, median of {repeats}: vae {full * 1e3:.1f} ms, "
            f"scoring_vae (TAEHV) {cheap * 1e3:.1f} ms, ratio {cheap / full:.2f}")


if __name__ == "__main__":
    main()
