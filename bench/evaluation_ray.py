"""Evaluation throughput on Ray, measured side by side in one run: the same small ToyAV
evaluation (naive, Best-of-4 and a small EvoSearch; weighted sum and the ARW shared across
prompts) run sequentially in this process and on 1, 2 (and 4 where there are 4 CPUs) local Ray
workers. Printed: searches per second end to end (Ray's start and the workers' loading
included) and in the steady state (first to last recorded result), each as a ratio to 1 worker.
A Ray worker runs torch on one thread (Ray sets OMP_NUM_THREADS=1), so the sequential run is
also shown with one torch thread, the like-for-like baseline.

    python -m bench.evaluation_ray [--prompts 4 --seeds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import torch

from .common import comfyui_avits  # noqa: F401
from comfyui_avits.evaluation import config as config_mod
from comfyui_avits.evaluation.prompts import load_prompts
from comfyui_avits.evaluation.ray_backend import run_on_ray
from comfyui_avits.evaluation.results import Results
from comfyui_avits.evaluation.runner import InProcess, run, tasks

CONFIG = """
name = "bench_ray"
seeds = {seeds}
aggregators = ["weighted_sum", "arw_shared"]
gallery = 0
[prompts]
set = "toyav"
count = {prompts}
[generator]
kind = "toyav"
steps = 10
[selection]
verifiers = ["toy_text_match", "av_align"]
[[methods]]
kind = "naive"
[[methods]]
kind = "best_of_n"
n = 4
[[methods]]
kind = "evosearch"
evolution_steps = [0]
population_sizes = [3, 3]
elites = 1
"""


def measure(config, prompts, out: Path, workers: int | None, threads: int | None = None) -> tuple[float, float]:
    """(searches/s end to end, searches/s from the first recorded result to the last); the
    sequential run (``workers`` None) with ``threads`` torch threads if given."""
    config = dataclasses.replace(config, output=out)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    results = Results(out / "results.jsonl", "bench")
    stamps: list[float] = []
    t0 = time.perf_counter()
    if workers is None:
        run(config, prompts, results, InProcess(config), progress=lambda _: stamps.append(time.perf_counter()))
    else:
        run_on_ray(config, prompts, results, workers, None,
                   progress=lambda _: stamps.append(time.perf_counter()))
    total = time.perf_counter() - t0
    torch.set_num_threads(before)
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    return len(stamps) / total, steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    counts = [1, 2] + ([4] if (os.cpu_count() or 1) >= 4 else [])
    with tempfile.TemporaryDirectory(prefix="avits-bench-ray-") as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(CONFIG.format(seeds=list(range(args.seeds)), prompts=args.prompts))
        config = config_mod.load(path)
        prompts = load_prompts(config.prompts)
        n = len(tasks(config, prompts))
        print(f"Evaluation throughput: {n} ToyAV searches, {os.cpu_count()} CPUs")
        rows = {"sequential (no Ray)": measure(config, prompts, Path(tmp) / "seq", None),
                "sequential, 1 thread": measure(config, prompts, Path(tmp) / "seq1", None, 1)}
        for w in counts:
            rows[f"Ray, {w} worker{'s' if w > 1 else ''}"] = measure(config, prompts, Path(tmp) / f"w{w}", w)
    base = rows["Ray, 1 worker"]
    print(f"| {'backend':<20} | end-to-end search/s | x 1 worker | steady search/s | x 1 worker |")
    print(f"|{'-' * 22}|{'-' * 21}|{'-' * 12}|{'-' * 17}|{'-' * 12}|")
    for label, (e2e, steady) in rows.items():
        print(f"| {label:<20} | {e2e:>19.2f} | {e2e / base[0]:>10.2f} | {steady:>15.2f} | "
              f"{steady / base[1]:>10.2f} |")


if __name__ == "__main__":
    main()
