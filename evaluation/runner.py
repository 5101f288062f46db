"""Running an evaluation: the arms (method x aggregator) over every prompt and seed, in a fixed
order (arm, prompt, seed) so an ARW state shared across prompts sees them as the paper does;
each result is recorded as soon as it is known. The in-process backend runs the pack's own
generators and verifiers; the ComfyUI backend queues a user's workflow on running servers."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ..search import methods as search_methods
from ..search.strategies import naive
from .config import ConfigError, EvalConfig, Method
from .results import Results

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Task:
    """One search to run and record: ``seed`` is the config's, ``draw`` the seed the search
    starts from (the same, or the prompt's own: ``prompt_seed``)."""

    method: Method
    aggregator: str
    prompt_index: int
    prompt: str
    seed: int
    draw: int

    @property
    def arm(self) -> str:
        return f"{self.method.label}/{self.aggregator}"

    @property
    def key(self) -> str:
        return f"{self.arm}/p{self.prompt_index:04d}/s{self.seed}"


def prompt_seed(prompt: str, seed: int) -> int:
    """A prompt's own seed for the config's ``seed`` (31 bits, the same on every machine)."""
    return int.from_bytes(hashlib.sha256(f"{prompt}\n{seed}".encode()).digest()[:4], "big") >> 1


def tasks(config: EvalConfig, prompts: list[str]) -> list[Task]:
    return [Task(m, a, i, p, s, prompt_seed(p, s) if config.seed_per_prompt else s)
            for m, a in config.arms() for i, p in enumerate(prompts) for s in config.seeds]


def clip_name(prompt_index: int, seed: int, arm: str) -> str:
    """The gallery clip of one result, relative to the output folder."""
    return f"clips/p{prompt_index:04d}_s{seed}_{re.sub(r'[^A-Za-z0-9]+', '_', arm).strip('_')}.mp4"


def wants_clip(config: EvalConfig, task: Task) -> bool:
    return task.prompt_index < config.gallery and task.seed == config.seeds[0]


# --- the in-process backend ---------------------------------------------------------------------

def selection_verifiers(config: EvalConfig) -> list:
    """The selection set: the named verifiers, each reward multiplied by its ``scale``."""
    return [_Scaled(v, config.scale[v.name]) if v.name in config.scale else v
            for v in make_verifiers(config.selection)]


def make_verifiers(names: Iterable[str]) -> list:
    """The weight-free verifiers the in-process backend builds by name."""
    from ..generators.toyav import ToyTextMatch
    from ..verifiers.av_align import AVAlign
    known = {"toy_text_match": ToyTextMatch, "av_align": AVAlign}
    out = []
    for name in names:
        if name not in known:
            raise ConfigError(f"verifier {name!r} is not built in-process (built in: "
                              f"{', '.join(known)}); evaluate models with weights through a "
                              f"ComfyUI workflow (generator.kind = 'comfyui')")
        out.append(known[name]())
    return out


def quality_verifiers(config: EvalConfig) -> list:
    """VBench's dimensions of ``[metrics] quality`` on the config's folder, in fp32 (VBench's
    precision but for its fp16 CLIPs) on the GPU if there is one; a missing file is a config
    error naming it and where to get it."""
    if not config.metrics_quality:
        return []
    import torch

    from ..core.checkpoints import CheckpointError
    from ..verifiers import vbench
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return vbench.load(config.metrics_quality, config.quality_models, device)
    except CheckpointError as e:
        raise ConfigError(f"metrics.quality: {e}") from None


class _Scaled:
    """A verifier's reward times a constant (to put two rewards on different scales)."""

    def __init__(self, verifier, factor: float) -> None:
        self.verifier, self.factor, self.name = verifier, factor, verifier.name

    def __call__(self, batch, prompts):
        return self.verifier(batch, prompts) * self.factor


def make_aggregator(config: EvalConfig, label: str):
    """A fresh aggregator for an arm's label (its own weights, else the config's)."""
    from ..search.aggregation import make_aggregator as build
    if label == "-":
        return build("weighted_sum", None)
    name, weights = config.aggregator_specs.get(label, (label, None))
    weights = weights if weights is not None else config.weights
    if name in ("arw", "arw_shared"):
        return build("arw", weights, **config.arw)
    return build(name, weights)


class InProcess:
    """Searches on the pack's own generators (ToyAV), verifiers built once and reused."""

    def __init__(self, config: EvalConfig) -> None:
        self.config = config
        self.verifiers = selection_verifiers(config)
        self.metric_verifiers = make_verifiers(config.metrics_verifiers) + quality_verifiers(config)

    def generator(self, prompt: str, **changes: Any):
        """The config's generator for ``prompt``, with ``changes`` to its settings (a draft)."""
        from ..generators.toyav import ToyAVGenerator
        options = {k: v for k, v in self.config.generator.items() if k != "kind"}
        return ToyAVGenerator(prompt, **{**options, **changes})

    def run(self, task: Task, aggregator, out_dir: Path) -> dict[str, Any]:
        gen = self.generator(task.prompt)
        m = task.method
        t0 = time.perf_counter()
        if m.kind == "naive":
            result = naive(gen, self.verifiers, aggregator, seed=task.draw)
        elif m.kind == "x0_correlation":
            return self._correlation(task, aggregator)
        else:
            method = search_methods.get(m.kind)
            extra = {"draft": self.generator(task.prompt, **(m.draft or {}))} if method.draft else {}
            result = method.run(gen, self.verifiers, aggregator, method.make(m.options, task.draw),
                                **extra)
        wall = time.perf_counter() - t0 - result.timings.get("oracle", 0.0)
        metrics = dict(result.best.oracle or {}) if self.config.metrics_oracle else {}
        for v in self.metric_verifiers:
            metrics[v.name] = float(v(result.best_av, [task.prompt])[0])
        clip = None
        if wants_clip(self.config, task):
            from ..core.media import write_mp4
            clip = clip_name(task.prompt_index, task.seed, task.arm)
            (out_dir / clip).parent.mkdir(parents=True, exist_ok=True)
            av = result.best_av
            write_mp4(out_dir / clip, av.video[0], av.fps, av.audio[0], av.sample_rate)
        return _row(task, self.config, metrics, result.nfe, wall, len(result.candidates),
                    result.best.rewards, aggregator, clip)


    def _correlation(self, task: Task, aggregator) -> dict[str, Any]:
        """How well the score of the step-k x0 prediction ranks the final score: Spearman and
        Kendall over n candidates, both scored with the aggregator after it has seen the
        finals (one scale for both)."""
        from scipy.stats import kendalltau, spearmanr

        from ..core import verifier as verifier_api
        gen = self.generator(task.prompt)
        n, marks = task.method.options["n"], sorted(task.method.options["steps"])
        seeds = [task.draw + i for i in range(n)]
        states, at, inter = gen.initial_noise(seeds), 0, {}
        t0 = time.perf_counter()
        for k in marks:
            states, x0 = gen.denoise_predicting(states, at, k, seeds)
            inter[k] = verifier_api.score(self.verifiers, gen.decode(x0), [task.prompt] * n)
            at = k
        finals, _ = gen.denoise(states, at, gen.steps, seeds)
        final = verifier_api.score(self.verifiers, gen.decode(finals), [task.prompt] * n)
        aggregator.bind(list(final))
        aggregator.observe(final)
        target = aggregator.score(final).numpy()
        metrics = {}
        for k in marks:
            got = aggregator.score(inter[k]).numpy()
            metrics[f"spearman@{k}"] = float(spearmanr(got, target).statistic)
            metrics[f"kendall@{k}"] = float(kendalltau(got, target).statistic)
        metrics = {k: (v if v == v else None) for k, v in metrics.items()}  # constant scores: no order
        return _row(task, self.config, metrics, gen.nfe, time.perf_counter() - t0, n, {}, aggregator, None)


def _row(task: Task, config: EvalConfig, metrics: dict, nfe: int, wall: float, candidates: int,
         rewards: dict, aggregator, clip: str | None) -> dict[str, Any]:
    sigmas = aggregator.sigmas() if aggregator is not None and hasattr(aggregator, "sigmas") else None
    naive_clip = clip_name(task.prompt_index, task.seed, "naive/-") if clip else None
    return {"key": task.key, "arm": task.arm, "prompt_index": task.prompt_index,
            "prompt": task.prompt, "seed": task.seed, "draw": task.draw, "method": task.method.label,
            "method_kind": "naive" if task.method.label == "naive" else task.method.kind,
            "n": task.method.options.get("n"), "aggregator": task.aggregator,
            "selection": list(config.selection), "metrics": metrics, "rewards": rewards,
            "nfe": int(nfe), "wall_s": float(wall), "candidates": int(candidates),
            "arw_scales": sigmas, "history_size": aggregator.history_size if aggregator is not None else None,
            "clips": {"chosen": clip, "naive": naive_clip},
            "aggregator_state": aggregator.state_dict()
            if shared_arw(config, task.aggregator) else None}


# --- running ------------------------------------------------------------------------------------

def shared_arw(config: EvalConfig, label: str) -> bool:
    """An arm whose ARW state is carried across the prompts."""
    return config.aggregator_specs.get(label, (label, None))[0] == "arw_shared"


def run(config: EvalConfig, prompts: list[str], results: Results, backend,
        progress: Progress | None = None) -> None:
    """Every task not yet in ``results``, in order; the ARW shared across prompts resumes from
    the state the last recorded result of its arm carries. A backend with its own ``run_all``
    (several ComfyUI servers at once) runs the tasks itself."""
    if hasattr(backend, "run_all"):
        backend.run_all(config, prompts, results, progress)
        return
    shared: dict[str, Any] = {}
    for task in tasks(config, prompts):
        if task.key in results:
            row = results.rows[task.key]
            if shared_arw(config, task.aggregator) and row.get("aggregator_state"):
                # the state after the arm's latest recorded search (committed results keep only
                # the last one of each arm)
                agg = shared.setdefault(task.arm, make_aggregator(config, task.aggregator))
                agg.load_state_dict(row["aggregator_state"])
            continue
        if shared_arw(config, task.aggregator):
            agg = shared.setdefault(task.arm, make_aggregator(config, task.aggregator))
        else:
            agg = make_aggregator(config, task.aggregator)
        results.add(backend.run(task, agg, config.output))
        if progress is not None:
            progress(1)
