"""Search quality and cost on ToyAV, measured side by side in one run.

Table 1: naive sampling vs Best-of-8, Best-of-10 and EvoSearch (Best-of-10 and both EvoSearch
configs spend 300 denoiser calls: the reference config, evolving at steps 0 and 10, and one that
evolves only the step-10 states), each with the text verifier alone, the sync verifier alone,
and both combined by ARW (one ARW state per row, shared across all prompts, as in the paper).
Table 2: aggregators for Best-of-10 with the text and the sync verifier on scales 100x apart.
Table 3: where the time goes (generate / decode / verify / aggregate / search bookkeeping).

Quality is the generator's ground truth (the oracle): text_match (higher is better) and
sync_error_s (lower is better). Improvement (%) per metric is (m - m_naive) / |m_naive| * 100
with the sign flipped for sync error, so positive is always better; Text = text_match,
AV = sync error, Overall = the mean of both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import defaultdict

import torch

from .common import REPO, comfyui_avits  # noqa: F401
from comfyui_avits.generators.toyav import ToyAVGenerator, prompt_set
from comfyui_avits.search.aggregation import make_aggregator
from comfyui_avits.search.strategies import BestOfNConfig, EvoSearchConfig, best_of_n, evosearch, naive
from comfyui_avits.verifiers.av_align import AVAlign
from comfyui_avits.generators.toyav import ToyTextMatch

PHASES = ("generate", "decode", "verify", "aggregate", "oracle", "bookkeeping")


class Scaled:
    """A verifier whose rewards are multiplied by a constant (to put two on different scales)."""

    def __init__(self, verifier, factor: float):
        self.verifier, self.factor, self.name = verifier, factor, verifier.name

    def __call__(self, batch, prompts):
        return self.verifier(batch, prompts) * self.factor


class Memo:
    """Caches a verifier's rewards by clip content, so the aggregator comparison, which sees the
    same candidates many times, verifies each clip once."""

    def __init__(self, verifier):
        self.verifier, self.name, self.cache = verifier, verifier.name, {}

    def __call__(self, batch, prompts):
        out = []
        for i in range(len(batch)):
            key = hashlib.sha1(batch.video[i].numpy().tobytes() + batch.audio[i].numpy().tobytes()
                               + prompts[i].encode()).hexdigest()
            if key not in self.cache:
                self.cache[key] = float(self.verifier(batch.clip(i), prompts[i:i + 1])[0])
            out.append(self.cache[key])
        return torch.tensor(out)


def oracle_of(result) -> tuple[float, float]:
    return result.best.oracle["text_match"], result.best.oracle["sync_error_s"]


def improvement(text: float, sync: float, base: tuple[float, float]) -> tuple[float, float, float]:
    t = (text - base[0]) / abs(base[0]) * 100
    a = (base[1] - sync) / abs(base[1]) * 100
    return t, a, (t + a) / 2


def run_rows(prompts, seeds, rows, timings=None):
    """rows: {label: (search fn(gen, verifiers, aggregator, seed), verifiers, aggregator name,
    its options)}. Prompt i uses seeds 100 i + k for k in ``seeds`` (in ToyAV the seed, not the
    prompt, decides whether a sample is in sync, so every prompt gets its own seeds).
    Returns {label: (mean text_match, mean sync error, mean NFE)}."""
    out = {}
    for label, (search, verifiers, agg_name, agg_kwargs) in rows.items():
        agg = make_aggregator(agg_name, **agg_kwargs)  # shared across every prompt of the row
        tm, se, nfe = [], [], []
        for i, prompt in enumerate(prompts):
            for seed in (100 * i + k for k in seeds):
                res = search(ToyAVGenerator(prompt), verifiers, agg, seed)
                t, s = oracle_of(res)
                tm.append(t), se.append(s), nfe.append(res.nfe)
                if timings is not None:
                    for k in PHASES:
                        timings[k] += res.timings[k]
                    timings["total"] += res.timings["total"]
        out[label] = (sum(tm) / len(tm), sum(se) / len(se), sum(nfe) / len(nfe))
    return out


def table(title, results, base):
    lines = [title, f"  {'':40s} {'text_match':>10s} {'sync_err_s':>10s} {'NFE':>5s} "
                    f"{'Text %':>8s} {'AV %':>8s} {'Overall %':>9s}"]
    for label, (t, s, nfe) in results.items():
        ti, ai, oi = improvement(t, s, base)
        lines.append(f"  {label:40s} {t:10.4f} {s:10.4f} {nfe:5.0f} {ti:8.1f} {ai:8.1f} {oi:9.1f}")
    return "\n".join(lines)


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=6, help="seeds per prompt")
    args = ap.parse_args()
    prompts = prompt_set(args.prompts, seed=0)
    seeds = list(range(args.seeds))
    text, sync = ToyTextMatch(), AVAlign()

    bo = lambda n: lambda g, v, a, s: best_of_n(g, v, a, BestOfNConfig(n, s))  # noqa: E731
    evo = lambda g, v, a, s: evosearch(g, v, a, EvoSearchConfig(seed=s))  # noqa: E731
    evo_late = lambda g, v, a, s: evosearch(  # noqa: E731
        g, v, a, EvoSearchConfig((10,), (6, 8), 2, seed=s))
    timings = defaultdict(float)
    base_rows = {"naive": (lambda g, v, a, s: naive(g, v, a, s), [text, sync], "arw", {})}
    base = run_rows(prompts, seeds, base_rows)["naive"][:2]
    rows = {}
    for name, fn in (("Best-of-8", bo(8)), ("Best-of-10", bo(10)), ("EvoSearch", evo),
                     ("EvoSearch at 10 (6, 8)", evo_late)):
        for vname, vs in (("text only", [text]), ("sync only", [sync]), ("text + sync, ARW", [text, sync])):
            rows[f"{name}, {vname}"] = (fn, vs, "arw", {})
    results = {"naive": (*base, 30.0), **run_rows(prompts, seeds, rows, timings)}
    print(table(f"Search on ToyAV: {len(prompts)} prompts x {len(seeds)} seeds, mean over "
                "the chosen candidates", results, base))

    # aggregators with the sync verifier on a scale 100x the text verifier's
    memo_text, memo_sync = Memo(text), Memo(Scaled(sync, 100.0))
    vs = [memo_text, memo_sync]
    tune_prompts = [p for p in prompt_set(36, seed=1) if p not in prompts][: len(prompts)]
    grid = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 0.997, 0.999]
    tune_base = run_rows(tune_prompts, seeds, base_rows)["naive"][:2]
    tuned = {w: run_rows(tune_prompts, seeds, {"ws": (bo(10), vs, "weighted_sum",
                                                      {"weights": [w, 1 - w]})})["ws"] for w in grid}
    best_w = max(grid, key=lambda w: improvement(*tuned[w][:2], tune_base)[2])
    agg_rows = {
        "weighted sum, untuned (0.5/0.5)": (bo(10), vs, "weighted_sum", {}),
        f"weighted sum, tuned ({best_w:g}/{1 - best_w:g})": (bo(10), vs, "weighted_sum",
                                                           {"weights": [best_w, 1 - best_w]}),
        "rank": (bo(10), vs, "rank", {}),
        "min-max": (bo(10), vs, "min_max", {}),
        "z-score, history": (bo(10), vs, "z_score_history", {}),
        "z-score, candidate set": (bo(10), vs, "z_score_candidate", {}),
        "ARW": (bo(10), vs, "arw", {}),
    }
    agg_results = run_rows(prompts, seeds, agg_rows)
    print()
    print(table("Aggregators, Best-of-10, sync reward x100 (weights tuned on other prompts)",
                agg_results, base))

    total = timings["total"]
    print("\nWhere the time goes (all searches of table 1):")
    for k in PHASES:
        print(f"  {k:12s} {timings[k]:8.2f} s  {timings[k] / total * 100:6.2f} %")
    print(f"  {'total':12s} {total:8.2f} s")
    out = {"prompts": prompts, "seeds": seeds, "naive": base, "search": results,
           "aggregators": agg_results, "tuned_text_weight": best_w,
           "time_shares": {k: timings[k] / total for k in PHASES}}
    path = REPO / "bench" / "results" / "toyav_search.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"\nsaved {path.relative_to(REPO)}")
    return out


if __name__ == "__main__":
    main()
