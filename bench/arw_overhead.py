"""ARW's cost beside a plain weighted sum, measured side by side in one run.

One fit = 50 Adam steps on 2 verifiers with 1000 history values each (the default settings);
the weighted sum scores the same 1000 x 2 rewards. Prints medians, their ratio, and what share
of a search's time ARW takes when candidates cost seconds.
"""

from __future__ import annotations

import statistics
import time

import torch

from .common import comfyui_avits  # noqa: F401 (makes the package importable)
from comfyui_avits.search.aggregation import ARW, WeightedSum


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(repeats: int = 300) -> dict:
    g = torch.Generator().manual_seed(0)
    rewards = {"videoreward_ta": torch.randn(1000, generator=g) * 0.9 - 0.5,
               "javisscore": torch.rand(1000, generator=g) * 0.2}
    arw = ARW()
    arw.observe(rewards)  # 1000 values in the history
    wsum = WeightedSum()
    fit = median_seconds(arw.fit, repeats)
    observe_score = median_seconds(lambda: (arw.observe({k: v[:5] for k, v in rewards.items()}),
                                            arw.score(rewards)), repeats // 3)
    ws = median_seconds(lambda: wsum.score(rewards), repeats)
    print("ARW overhead (median of repeated runs, same rewards)")
    print(f"  ARW fit, 50 Adam steps, 2 verifiers x 1000 history: {fit * 1e3:8.3f} ms")
    print(f"  ARW observe 5 + fit + score 1000:                   {observe_score * 1e3:8.3f} ms")
    print(f"  weighted sum score of 1000 x 2 rewards:             {ws * 1e3:8.3f} ms")
    print(f"  ratio fit / weighted sum:                           {fit / ws:8.1f} x")
    for per_candidate in (1.0, 10.0, 60.0):
        share = observe_score / (5 * per_candidate + observe_score) * 100
        print(f"  share of a 5-candidate generation at {per_candidate:4.0f} s per candidate: "
              f"{share:.5f} %")
    return {"fit_ms": fit * 1e3, "observe_score_ms": observe_score * 1e3,
            "weighted_sum_ms": ws * 1e3}


if __name__ == "__main__":
    main()
