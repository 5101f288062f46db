"""Running an in-process evaluation on Ray: one actor per worker holds a loaded backend (its
generator factory and verifiers built once), the searches not yet recorded flow to idle actors
in task order, and each row is appended to the same results file as soon as it comes back.

The ARW shared across prompts ("arw_shared") lives in one actor per arm, which applies the
updates one at a time; a worker's search talks to it through a proxy aggregator. The prompts of
such an arm then run concurrently, so its rows depend on the order the searches finished in;
every other aggregator is per search and gives the sequential run's rows (but wall_s).

Ray is optional: without it the evaluation runs sequentially, with the same outputs."""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..search.methods import PLUGINS
from .config import ConfigError, EvalConfig
from .results import Results
from .runner import InProcess, Progress, Task, make_aggregator, run, shared_arw, tasks


def _pack_path() -> str:
    """The folder that holds the importable pack (the workers need it on their path)."""
    root = importlib.import_module(__package__.split(".")[0])
    return str(Path(root.__file__).parent.parent)


class AggregatorProxy:
    """What a worker's search sees of a shared ARW: every call SearchRun and the row make,
    forwarded to the arm's actor (which serialises them)."""

    def __init__(self, actor, name: str) -> None:
        self.actor, self.name = actor, name

    def _call(self, method: str, *args):
        import ray
        return ray.get(self.actor.call.remote(method, *args))

    def bind(self, names) -> None:
        self._call("bind", list(names))

    def observe(self, rewards) -> None:
        self._call("observe", dict(rewards))

    def score(self, rewards):
        return self._call("score", dict(rewards))

    def sigmas(self):
        return self._call("sigmas")

    @property
    def history_size(self) -> int:
        return self._call("history_size")

    def state_dict(self) -> dict:
        return self._call("state_dict")


class SharedAggregator:
    """The state of one arm's ARW shared across prompts (a Ray actor: one call at a time)."""

    def __init__(self, config: EvalConfig, label: str, state: dict | None) -> None:
        self.aggregator = make_aggregator(config, label)
        if state is not None:
            self.aggregator.load_state_dict(state)

    def call(self, method: str, *args):
        attr = getattr(self.aggregator, method)
        return attr(*args) if callable(attr) else attr

    def snapshot(self) -> dict:
        """Scales, history size and state read together, so a row's three agree."""
        a = self.aggregator
        return {"arw_scales": a.sigmas(), "history_size": a.history_size,
                "aggregator_state": a.state_dict()}


class Worker:
    """One Ray worker: a loaded in-process backend running one search at a time."""

    def __init__(self, config: EvalConfig) -> None:
        self.backend = InProcess(config)
        self.config = config

    def run(self, task: Task, shared=None) -> tuple[dict, bytes | None]:
        """The row, and the gallery clip's bytes (written by the driver: a worker of a cluster
        may not share its file system)."""
        agg = (AggregatorProxy(shared, "arw") if shared is not None
               else make_aggregator(self.config, task.aggregator))
        with tempfile.TemporaryDirectory(prefix="avits-eval-") as tmp:
            row = self.backend.run(task, agg, Path(tmp))
            clip = row["clips"]["chosen"]
            data = (Path(tmp) / clip).read_bytes() if clip else None
        if shared is not None:
            import ray
            row.update(ray.get(shared.snapshot.remote()))
        return row, data


def _resume_state(results: Results, arm: str) -> dict | None:
    """The recorded state of a shared arm that has seen the most rewards."""
    rows = [r for r in results.rows.values() if r["arm"] == arm and r.get("aggregator_state")]
    return max(rows, key=lambda r: r["history_size"] or 0)["aggregator_state"] if rows else None


def check_backend(config: EvalConfig) -> None:
    """Ray runs the in-process backend only (ComfyUI servers are parallel by themselves)."""
    if config.backend != "inprocess":
        raise ConfigError("--workers / --ray-address run in-process searches; a generator.kind = "
                          "'comfyui' config runs on its servers (list several in comfyui.servers)")


def run_on_ray(config: EvalConfig, prompts: list[str], results: Results, workers: int,
               address: str | None, progress: Progress | None = None) -> None:
    """Every task not yet in ``results`` on ``workers`` Ray actors (a local Ray with that many
    CPUs, or the cluster at ``address``: then by default one actor per CPU of the cluster)."""
    check_backend(config)
    try:
        import ray
    except ImportError:
        print("evaluate: ray is not installed (pip install 'ray[default]'); running the searches "
              "sequentially", file=sys.stderr)
        run(config, prompts, results, InProcess(config), progress)
        return
    todo = [t for t in tasks(config, prompts) if t.key not in results]
    if not todo:
        return
    started = not ray.is_initialized()
    if started:
        plugins = {PLUGINS: os.environ[PLUGINS]} if os.environ.get(PLUGINS) else {}
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
            p for p in (_pack_path(), os.environ.get("PYTHONPATH")) if p), **plugins}}
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False, runtime_env=env,
                     log_to_driver=False)
    try:
        count = workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
        _dispatch(ray, config, todo, results, count, progress)
    finally:
        if started:
            ray.shutdown()


def _dispatch(ray, config: EvalConfig, todo: list[Task], results: Results, count: int,
              progress: Progress | None) -> None:
    """Hand the tasks out in order to idle actors and record rows as they come back. On a
    failed search nothing new starts; the searches running finish and are recorded, then the
    first error is raised."""
    shared_cls = ray.remote(num_cpus=0)(SharedAggregator)
    arms = {t.arm: t.aggregator for t in todo if shared_arw(config, t.aggregator)}
    shared = {arm: shared_cls.remote(config, label, _resume_state(results, arm))
              for arm, label in arms.items()}
    worker_cls = ray.remote(num_cpus=1)(Worker)
    idle = [worker_cls.remote(config) for _ in range(min(count, len(todo)))]
    pending: dict[Any, Any] = {}
    queue, error = list(reversed(todo)), None
    while pending or (queue and error is None):
        while idle and queue and error is None:
            task, actor = queue.pop(), idle.pop()
            pending[actor.run.remote(task, shared.get(task.arm))] = actor
        done, _ = ray.wait(list(pending), num_returns=1)
        idle.append(pending.pop(done[0]))
        try:
            row, clip = ray.get(done[0])
        except ray.exceptions.RayError as e:
            error = error or e
            continue
        if clip is not None:
            path = config.output / row["clips"]["chosen"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(clip)
        results.add(row)
        if progress is not None:
            progress(1)
    if error is not None:
        cause = getattr(error, "cause", None)
        raise cause if isinstance(cause, Exception) else error
