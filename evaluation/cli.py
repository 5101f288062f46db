"""``scripts/evaluate CONFIG`` / ``python -m comfyui_avits.evaluate CONFIG``: run (or resume) an
evaluation, then write its tables, plots and gallery next to the results file."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

from . import config as config_mod
from .comfy_queue import WorkflowError
from .prompts import load_prompts
from .results import Results, ResultsError, fingerprint
from .runner import InProcess, run, tasks

REPORTING_KEYS = ("gallery", "bootstrap")
"""Keys that change only the tables and pages, not the results: a run resumes across them."""


def _fingerprint(path: Path) -> str:
    raw = tomllib.loads(path.read_text())
    return fingerprint(json.dumps({k: v for k, v in raw.items() if k not in REPORTING_KEYS},
                                  sort_keys=True, default=str))


def backend_for(config: config_mod.EvalConfig, args: argparse.Namespace):
    if config.backend == "comfyui":
        from .comfy_queue import ComfyQueue
        return ComfyQueue(config)
    return InProcess(config)


def report(config: config_mod.EvalConfig, rows: list[dict]) -> dict[str, Path]:
    """Tables (Markdown + CSV), the scaling and ARW plots and the gallery page."""
    from . import agreement, capture, correlation, gallery, plots, tables
    from .metrics import infos
    out_corr = {**correlation.write(rows, config.output, config.bootstrap),
                **agreement.write(rows, config.output, config.bootstrap)}
    rows = [r for r in rows if r["method_kind"] not in (correlation.KIND, agreement.KIND)]
    if not rows:  # analyses only: no search to tabulate
        return out_corr
    names = sorted({m for r in rows for m in r["metrics"]})
    metrics = infos(names, config.groups)
    out = dict(tables.write_tables(rows, metrics, config.output, bootstrap=config.bootstrap))
    out.update(capture.write(rows, metrics, config.output, config.bootstrap))
    path = plots.gain_plot(tables.summarize(rows, metrics, config.bootstrap), config.output / "gain_vs_nfe.png")
    if path:
        out["gain_vs_nfe.png"] = path
    for name, write in (("scaling.png", plots.scaling_plot), ):
        path = write(rows, metrics, config.output / name)
        if path:
            out[name] = path
    path = plots.arw_scales_plot(rows, config.output / "arw_scales.png")
    if path:
        out["arw_scales.png"] = path
    out["gallery.html"] = gallery.write_gallery(rows, metrics, config.output, first=config.gallery)
    return {**out, **out_corr}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/evaluate", description=__doc__)
    parser.add_argument("configs", type=Path, nargs="+", metavar="CONFIG",
                        help="evaluation configs (TOML), run one after the other")
    parser.add_argument("--workers", type=int, default=0,
                        help="run on a local Ray with this many workers (needs ray)")
    parser.add_argument("--ray-address", default=None, help="join this Ray cluster")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore earlier results: set results.jsonl aside and run everything")
    args = parser.parse_args(argv)
    for path in args.configs:
        code = evaluate(path, args)
        if code:
            return code
    return 0


def evaluate(path: Path, args: argparse.Namespace) -> int:
    """Run (or resume) one config and write its report; 0 on success."""
    try:
        config = config_mod.load(path)
        prompts = load_prompts(config.prompts)
        backend = backend_for(config, args)
        if args.workers or args.ray_address:
            from .ray_backend import check_backend
            check_backend(config)
        results = Results(config.output / "results.jsonl", _fingerprint(path), fresh=args.fresh)
    except (config_mod.ConfigError, ResultsError, ConnectionError) as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return 2
    todo = [t for t in tasks(config, prompts) if t.key not in results]
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks(config, prompts)), initial=len(results.rows), unit="search",
                   desc=config.name, dynamic_ncols=True)
    try:
        if args.workers or args.ray_address:
            from .ray_backend import run_on_ray
            run_on_ray(config, prompts, results, args.workers, args.ray_address,
                       progress=bar.update if bar else None)
        else:
            run(config, prompts, results, backend, progress=bar.update if bar else None)
    except (WorkflowError, TimeoutError, ConnectionError) as e:  # a server failed, hung or went away
        print(f"evaluate: {e}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    written = report(config, results.in_order())
    print(f"{len(todo)} searches run, {len(results.rows)} results in {results.path}")
    for name, path in written.items():
        print(f"  {name}: {path}")
    return 0
