"""What a prompt pays to aggregate through a shared ARW state that already holds 10, 10^4 or
10^6 rewards per verifier, measured side by side in one run (the sizes take turns).

One prompt = what a search node does to its state: open it (read and check the file), bind the
verifier set, three generations of 5 candidates (observe + 50 Adam steps + re-score everything
so far), and the commit (an atomic, fsynced write). Without a window ARW keeps exact running
statistics, so the cost should not depend on how many rewards the state has seen.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from .common import comfyui_avits  # noqa: F401 (makes the package importable)
from comfyui_avits.search.arw_state import ARWStore

SIZES = (10, 10**4, 10**6)
IDS = {"videoreward_ta": "vr", "javisscore": "js"}


def rewards(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {"videoreward_ta": torch.randn(n, generator=g, dtype=torch.float64) * 0.9 - 0.5,
            "javisscore": torch.rand(n, generator=g, dtype=torch.float64) * 0.2}


def one_prompt(store: ARWStore, name: str, g: torch.Generator) -> float:
    t = time.perf_counter()
    shared = store.open(name)
    shared.bind(IDS)
    seen = {k: torch.empty(0, dtype=torch.float64) for k in IDS}
    for _ in range(3):
        batch = rewards(5, g)
        shared.arw.observe(batch)
        shared.after_observe()
        seen = {k: torch.cat([seen[k], batch[k]]) for k in IDS}
        shared.arw.score(seen)
    store.commit(shared)
    return time.perf_counter() - t


def main(prompts: int = 40) -> dict:
    g = torch.Generator().manual_seed(0)
    store = ARWStore(Path(tempfile.mkdtemp(prefix="avits-bench-state-")))
    for n in SIZES:  # states that already hold n rewards per verifier
        shared = store.open(f"s{n}")
        shared.bind(IDS)
        shared.arw.observe(rewards(n, g))
        store.commit(shared)
    times: dict[int, list[float]] = {n: [] for n in SIZES}
    for _ in range(prompts):
        for n in SIZES:
            times[n].append(one_prompt(store, f"s{n}", g))
    med = {n: statistics.median(ts) for n, ts in times.items()}
    print(f"Aggregation per prompt through a shared ARW state (median of {prompts} prompts each,")
    print("open + 3 generations of 5 (observe, fit, re-score) + atomic commit)")
    for n in SIZES:
        size = (store.directory / f"s{n}.json").stat().st_size
        print(f"  {n:>9,} rewards already in the state: {med[n] * 1e3:8.3f} ms   file {size:7,} bytes")
    ratio = med[SIZES[-1]] / med[SIZES[0]]
    print(f"  ratio 10^6 / 10: {ratio:.2f} x (flat: below 3)")
    return {"median_ms": {n: m * 1e3 for n, m in med.items()}, "ratio": ratio}


if __name__ == "__main__":
    main()
