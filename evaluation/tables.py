"""The evaluation tables: per-arm metric means, Improvement % over naive sampling (per metric and
grouped Text / AV / Overall), cost, and search-vs-search comparisons at equal NFE, each with a
95 % bootstrap interval over prompts, as plain dicts, Markdown and CSV.

Prompts are the unit of resampling (a prompt's seeds are averaged first), and every paired
statistic resamples the same prompts for all arms it compares, so prompt difficulty cancels.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import MetricInfo

__all__ = ["SELECTION_NOTE", "Arm", "MetricInfo", "arm_means", "collect_arms", "fmt",
           "fmt_interval", "summarize", "write_tables"]

BOOT = 2000
SEED = 0
NFE_TOLERANCE = 0.01
ZERO = 1e-9
"""Below this a shown value is rounding noise (a difference of equal improvements), shown as 0."""
SELECTION_NOTE = "\\* also used for selection: reward hacking possible"
NA_NOTE = ("n/a: the naive mean is 0, so the relative improvement is undefined; such metrics are "
           "left out of the group means")
GROUP_TITLES = {"text": "Text", "av": "AV", "quality": "Quality"}
KIND_ORDER = {"evosearch": 0, "best_of_n": 1}
"""Comparisons put EvoSearch first, then Best-of-N, so a difference reads 'EvoSearch minus'."""

Interval = dict[str, "float | None"]


@dataclass(frozen=True)
class Arm:
    """One (method, aggregator) pair: its per-prompt metric means (seeds averaged) and cost."""

    method: str
    aggregator: str
    kind: str
    n: int | None
    prompts: tuple[int, ...]
    values: np.ndarray
    """[prompts, metrics] in the order of the ``metrics`` mapping."""
    runs: int
    nfe: float
    wall_s: float
    candidates: float
    selection: tuple[str, ...]

    @property
    def label(self) -> str:
        plain = self.aggregator in ("", "-")
        return self.method if plain else f"{self.method} · {self.aggregator}"

    def at(self, prompts: Iterable[int]) -> np.ndarray:
        """The per-prompt rows for ``prompts`` (in that order), for paired resampling."""
        where = {p: i for i, p in enumerate(self.prompts)}
        return self.values[[where[p] for p in prompts]]


def _metric_value(row: dict, name: str) -> float:
    value = (row.get("metrics") or {}).get(name)
    if value is None or not math.isfinite(float(value)):
        raise ValueError(f"result {row.get('key')!r} has no finite value for metric {name!r}")
    return float(value)


def arm_keys(rows: list[dict]) -> list[tuple[str, str]]:
    """(method, aggregator) of every arm, naive first, then in order of first appearance."""
    keys = list(dict.fromkeys((r["method"], r["aggregator"]) for r in rows))
    naive = [k for k in keys if any(r["method_kind"] == "naive" for r in rows
                                    if (r["method"], r["aggregator"]) == k)]
    return naive + [k for k in keys if k not in naive]


def _arm(key: tuple[str, str], rows: list[dict], names: list[str]) -> Arm:
    by_prompt: dict[int, list[list[float]]] = {}
    for r in rows:
        values = [_metric_value(r, m) for m in names]
        by_prompt.setdefault(int(r["prompt_index"]), []).append(values)
    prompts = tuple(sorted(by_prompt))
    values = np.array([np.mean(by_prompt[p], axis=0) for p in prompts], dtype=np.float64)
    selection = tuple(dict.fromkeys(s for r in rows for s in r.get("selection") or ()))
    return Arm(method=key[0], aggregator=key[1], kind=rows[0]["method_kind"], n=rows[0].get("n"),
               prompts=prompts, values=values.reshape(len(prompts), len(names)), runs=len(rows),
               nfe=float(np.mean([r["nfe"] for r in rows])),
               wall_s=float(np.mean([r["wall_s"] for r in rows])),
               candidates=float(np.mean([r["candidates"] for r in rows])), selection=selection)


def collect_arms(rows: list[dict], metrics: dict[str, MetricInfo]) -> list[Arm]:
    """The rows grouped into arms (naive first); a row missing a reported metric is an error."""
    seen = [r["key"] for r in rows]
    if len(set(seen)) != len(seen):
        raise ValueError("result keys are not unique: "
                         f"{sorted({k for k in seen if seen.count(k) > 1})}")
    names = list(metrics)
    return [_arm(k, [r for r in rows if (r["method"], r["aggregator"]) == k], names)
            for k in arm_keys(rows)]


def bootstrap_indices(n_prompts: int, bootstrap: int = BOOT, seed: int = SEED) -> np.ndarray:
    """[bootstrap, n_prompts] prompt indices drawn with replacement from a fixed seed, so the same
    inputs always give the same intervals."""
    return np.random.default_rng(seed).integers(0, n_prompts, size=(bootstrap, n_prompts))


def prompt_mean(rows: list[dict], metric: str, bootstrap: int = BOOT) -> tuple[Interval, int] | None:
    """A metric's mean over prompts (each prompt's seeds averaged first) with a 95 % bootstrap
    interval over prompts, and the number of prompts; None where no row has it."""
    per_prompt: dict[int, list[float]] = {}
    for r in rows:
        v = r["metrics"].get(metric)
        if v is not None:
            per_prompt.setdefault(r["prompt_index"], []).append(v)
    values = np.array([np.mean(v) for v in per_prompt.values()])
    if not len(values):
        return None
    reps = values[bootstrap_indices(len(values), bootstrap)].mean(axis=1)
    return _interval(float(values.mean()), reps), len(values)


def _interval(point: float, replicates: np.ndarray) -> Interval:
    """A point estimate and its 95 % percentile interval; undefined values become None."""
    finite = replicates[np.isfinite(replicates)]
    if not math.isfinite(point) or finite.size == 0:
        return {"value": None if not math.isfinite(point) else float(point), "lo": None, "hi": None}
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return {"value": float(point), "lo": float(lo), "hi": float(hi)}


def arm_means(arm: Arm, metrics: dict[str, MetricInfo], bootstrap: int = BOOT,
              seed: int = SEED) -> dict[str, Interval]:
    """Each metric's mean over the arm's prompts with its bootstrap interval."""
    idx = bootstrap_indices(len(arm.prompts), bootstrap, seed)
    reps = arm.values[idx].mean(axis=1)
    point = arm.values.mean(axis=0)
    return {m: _interval(point[j], reps[:, j]) for j, m in enumerate(metrics)}


def _improvement(means: np.ndarray, naive: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """(m - m_naive) / |m_naive| * 100, positive = better; NaN where the naive mean is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = signs * (means - naive) / np.abs(naive) * 100.0
    return np.where(naive == 0, np.nan, out)


def _improvement_in_spreads(means: np.ndarray, naive: np.ndarray, spread: np.ndarray,
                            signs: np.ndarray) -> np.ndarray:
    """(m - m_naive) / s_naive * 100, positive = better, where s_naive is the naive metric's
    spread across prompts (the standard deviation of its per-prompt means): a scale that does
    not explode where the naive mean is near 0; NaN where the naive metric does not vary."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = signs * (means - naive) / spread * 100.0
    return np.where(spread > 0, out, np.nan)


def _mean_defined(values: np.ndarray, columns: list[int]) -> np.ndarray:
    """The mean over ``columns`` of the last axis, skipping NaN (undefined) entries."""
    part = values[..., columns]
    count = np.isfinite(part).sum(axis=-1)
    total = np.where(np.isfinite(part), part, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _groups(metrics: dict[str, MetricInfo]) -> dict[str, list[int]]:
    """Group name -> metric columns: text, av, quality, then other groups as met, and overall
    (all)."""
    known = ["text", "av", "quality"]
    order = sorted(dict.fromkeys(i.group for i in metrics.values()),
                   key=lambda g: known.index(g) if g in known else len(known))
    out = {g: [j for j, i in enumerate(metrics.values()) if i.group == g] for g in order}
    out["overall"] = list(range(len(metrics)))
    return out


def _paired_improvements(arms: list[Arm], naive: Arm, metrics: dict[str, MetricInfo],
                         bootstrap: int, seed: int, scale: str = "relative"
                         ) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Per arm: (point [M], replicates [B, M]) of the improvement over naive, every arm and naive
    resampled on the same prompts (those they all share); also the number of shared prompts.
    ``scale``: "relative" (the paper's, per cent of the naive mean) or "spread" (per cent of
    the naive spread across the shared prompts, held fixed in the replicates)."""
    shared = sorted(set(naive.prompts).intersection(*(a.prompts for a in arms)))
    if not shared:
        raise ValueError(f"{', '.join(a.label for a in arms)} and the naive arm share no prompt")
    signs = np.array([1.0 if i.higher_is_better else -1.0 for i in metrics.values()])
    idx = bootstrap_indices(len(shared), bootstrap, seed)
    base = naive.at(shared)
    base_point, base_reps = base.mean(axis=0), base[idx].mean(axis=1)
    spread = base.std(axis=0)

    def improve(means: np.ndarray, naive_means: np.ndarray) -> np.ndarray:
        if scale == "spread":
            return _improvement_in_spreads(means, naive_means, spread, signs)
        return _improvement(means, naive_means, signs)

    out = []
    for arm in arms:
        x = arm.at(shared)
        out.append((improve(x.mean(axis=0), base_point), improve(x[idx].mean(axis=1), base_reps)))
    return len(shared), out


def _with_groups(point: np.ndarray, reps: np.ndarray, metrics: dict[str, MetricInfo]
                 ) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """Per-metric and per-group intervals; a group is recomputed inside every replicate and
    leaves out metrics whose point improvement is undefined."""
    per_metric = {m: _interval(point[j], reps[:, j]) for j, m in enumerate(metrics)}
    defined = set(np.flatnonzero(np.isfinite(point)))
    grouped = {}
    for g, cols in _groups(metrics).items():
        keep = [c for c in cols if c in defined]
        grouped[g] = _interval(float(_mean_defined(point, keep)) if keep else math.nan,
                               _mean_defined(reps, keep) if keep else np.full(1, np.nan))
    return per_metric, grouped


def _same_nfe(a: Arm, b: Arm) -> bool:
    return abs(a.nfe - b.nfe) <= NFE_TOLERANCE * max(abs(a.nfe), abs(b.nfe))


def _comparison(a: Arm, b: Arm, naive: Arm, metrics: dict[str, MetricInfo],
                bootstrap: int, seed: int) -> dict[str, Any]:
    """a minus b in improvement points, on the prompts a, b and naive share, paired."""
    shared, [(pa, ra), (pb, rb)] = _paired_improvements([a, b], naive, metrics, bootstrap, seed)
    per_metric, grouped = _with_groups(pa - pb, ra - rb, metrics)
    return {"a": _arm_id(a), "b": _arm_id(b), "aggregator": a.aggregator, "nfe_a": a.nfe,
            "nfe_b": b.nfe, "prompts": shared, "groups": grouped, "metrics": per_metric}


def _arm_id(arm: Arm) -> dict[str, Any]:
    return {"method": arm.method, "aggregator": arm.aggregator, "method_kind": arm.kind,
            "n": arm.n, "label": arm.label}


def summarize(rows: list[dict], metrics: dict[str, MetricInfo], bootstrap: int = BOOT,
              seed: int = SEED) -> dict[str, Any]:
    """Every number the tables show, as plain dicts (None where undefined)."""
    arms = collect_arms(rows, metrics)
    naives = [a for a in arms if a.kind == "naive"]
    if len(naives) != 1:
        raise ValueError(f"the results hold {len(naives)} naive arms (method_kind 'naive'); "
                         "Improvement % needs exactly one")
    naive = naives[0]
    out_arms = []
    for arm in arms:
        entry = {**_arm_id(arm), "prompts": len(arm.prompts), "runs": arm.runs,
                 "nfe": arm.nfe, "wall_s": arm.wall_s, "candidates": arm.candidates,
                 "selection": list(arm.selection),
                 "means": arm_means(arm, metrics, bootstrap, seed)}
        if arm is not naive:
            shared, [(point, reps)] = _paired_improvements([arm], naive, metrics, bootstrap, seed)
            entry["improvement"], entry["groups"] = _with_groups(point, reps, metrics)
            entry["paired_prompts"] = shared
            _, [(point, reps)] = _paired_improvements([arm], naive, metrics, bootstrap, seed, "spread")
            entry["improvement_spread"], entry["groups_spread"] = _with_groups(point, reps, metrics)
        out_arms.append(entry)
    searches = sorted((a for a in arms if a is not naive),
                      key=lambda a: KIND_ORDER.get(a.kind, len(KIND_ORDER)))
    comparisons = [_comparison(a, b, naive, metrics, bootstrap, seed)
                   for a, b in combinations(searches, 2)
                   if a.aggregator == b.aggregator and _same_nfe(a, b)]
    selected = [m for m in metrics if any(m in a.selection for a in arms)]
    return {"metrics": list(metrics), "selected": selected,
            "groups": {g: [list(metrics)[c] for c in cols] for g, cols in _groups(metrics).items()},
            "naive": _arm_id(naive), "arms": out_arms, "comparisons": comparisons,
            "bootstrap": bootstrap, "seed": seed}


# ---- formatting ------------------------------------------------------------------------------

def fmt(x: float | None, signed: bool = False) -> str:
    """Three significant digits without scientific notation; 'n/a' when undefined."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if abs(x) < ZERO:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(x))))
    text = f"{round(x, decimals):{'+' if signed else ''}.{decimals}f}"
    return "0" if float(text) == 0 else text


def fmt_interval(cell: Interval, signed: bool = False) -> str:
    """'value [lo, hi]', or just the value when the interval is undefined."""
    if cell["value"] is None:
        return "n/a"
    if cell["lo"] is None:
        return fmt(cell["value"], signed)
    return f"{fmt(cell['value'], signed)} [{fmt(cell['lo'], signed)}, {fmt(cell['hi'], signed)}]"


def _metric_heading(name: str, metrics: dict[str, MetricInfo], selected: list[str]) -> str:
    info = metrics[name]
    return info.name + ("" if info.higher_is_better else " ↓") + ("*" if name in selected else "")


def _group_heading(group: str, summary: dict) -> str:
    marked = any(m in summary["selected"] for m in summary["groups"][group])
    return GROUP_TITLES.get(group, group.capitalize()) + ("*" if marked else "")


def _markdown_table(head: list[str], body: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return [line(head), "|" + "---|" * len(head), *map(line, body), ""]


def _notes(summary: dict, undefined: bool) -> list[str]:
    out = [SELECTION_NOTE] if summary["selected"] else []
    return out + ([NA_NOTE] if undefined else []) + ([""] if out or undefined else [])


def _has_na(cells: Iterable[Interval]) -> bool:
    return any(c["value"] is None for c in cells)


IMPROVEMENT_TABLES = (
    ("## Improvement over naive (%)",
     "(m - m_naive) / |m_naive| × 100 (the paper's), sign flipped for ↓ metrics (positive = "
     "better); groups average their metrics, Overall averages all; paired bootstrap. Near a "
     "naive mean of 0 one metric can swing Overall by hundreds of points: see the next table.",
     ""),
    ("## Improvement over naive in naive spreads (%)",
     "(m - m_naive) / s_naive × 100, where s_naive is the naive metric's standard deviation "
     "across prompts: every metric on the scale of how much it varies, so none explodes near "
     "zero; sign flipped for ↓ metrics; groups and Overall average as above.",
     "_spread"),
)
"""(heading, how it is computed, the summary keys' suffix) of each improvement table."""


def markdown(summary: dict, metrics: dict[str, MetricInfo]) -> str:
    """tables.md: means, Improvement %, cost and comparisons, each selection metric starred."""
    names, sel, groups = summary["metrics"], summary["selected"], list(summary["groups"])
    m_heads = [_metric_heading(m, metrics, sel) for m in names]
    g_heads = [_group_heading(g, summary) for g in groups]
    searches = [a for a in summary["arms"] if "improvement" in a]
    lines = ["# Evaluation", "",
             (f"95 % percentile bootstrap intervals over prompts (B = {summary['bootstrap']}, seed "
              f"{summary['seed']}); a prompt's seeds are averaged first. ↓ lower is better."), "",
             "## Metric means", ""]
    lines += _markdown_table(["method", "aggregator", "prompts", *m_heads],
                             [[a["method"], a["aggregator"], str(a["prompts"]),
                               *(fmt_interval(a["means"][m]) for m in names)]
                              for a in summary["arms"]])
    lines += _notes(summary, False)
    for title, note, scale in IMPROVEMENT_TABLES:
        lines += [title, "", note, ""]
        lines += _markdown_table(["method", "aggregator", *g_heads, *m_heads],
                                 [[a["method"], a["aggregator"],
                                   *(fmt_interval(a["groups" + scale][g], True) for g in groups),
                                   *(fmt_interval(a["improvement" + scale][m], True) for m in names)]
                                  for a in searches])
        lines += _notes(summary, any(_has_na(a["improvement" + scale].values()) for a in searches))
    lines += ["## Cost", ""]
    lines += _markdown_table(["method", "aggregator", "prompts", "runs", "NFE / sample",
                              "wall s / sample", "candidates / sample"],
                             [[a["method"], a["aggregator"], str(a["prompts"]), str(a["runs"]),
                               fmt(a["nfe"]), fmt(a["wall_s"]), fmt(a["candidates"])]
                              for a in summary["arms"]])
    lines += ["## EvoSearch vs Best-of-N at equal NFE", "",
              ("A minus B in improvement points, same aggregator, mean NFE within "
               f"{NFE_TOLERANCE:.0%}; paired bootstrap. An interval above zero: A beats B."), ""]
    comps = summary["comparisons"]
    if comps:
        lines += _markdown_table(
            ["A", "B", "aggregator", "NFE A / B", "prompts", *(f"Δ {h}" for h in g_heads),
             *(f"Δ {h}" for h in m_heads)],
            [[c["a"]["method"], c["b"]["method"], c["aggregator"],
              f"{fmt(c['nfe_a'])} / {fmt(c['nfe_b'])}", str(c["prompts"]),
              *(fmt_interval(c["groups"][g], True) for g in groups),
              *(fmt_interval(c["metrics"][m], True) for m in names)] for c in comps])
        lines += _notes(summary, any(_has_na(c["metrics"].values()) for c in comps))
    else:
        lines += ["No two arms share an aggregator and NFE.", ""]
    return "\n".join(lines)


def _num(x: float | None) -> str:
    """CSV cells: 12 significant digits, empty when undefined (never inf or NaN)."""
    return "" if x is None or not math.isfinite(x) else f"{float(x) + 0.0:.12g}"


def _interval_columns(heads: list[str]) -> list[str]:
    return [c for h in heads for c in (h, f"{h} lo", f"{h} hi")]


def _interval_cells(cells: list[Interval]) -> list[str]:
    return [_num(c[k]) for c in cells for k in ("value", "lo", "hi")]


def _arm_cells(a: dict) -> list[str]:
    return [a["method"], a["aggregator"], a["method_kind"], "" if a["n"] is None else str(a["n"])]


ARM_COLUMNS = ["method", "aggregator", "method_kind", "n"]


def csv_tables(summary: dict, metrics: dict[str, MetricInfo]) -> dict[str, list[list[str]]]:
    """The CSV files as rows of cells; column names carry the same '*' selection marks."""
    names, sel, groups = summary["metrics"], summary["selected"], list(summary["groups"])
    m_heads = [_metric_heading(m, metrics, sel) for m in names]
    g_heads = [_group_heading(g, summary) for g in groups]
    arms = summary["arms"]
    searches = [a for a in arms if "improvement" in a]
    return {
        "means": [ARM_COLUMNS + ["selection", "prompts", *_interval_columns(m_heads)]] + [
            _arm_cells(a) + ["+".join(a["selection"]), str(a["prompts"]),
                             *_interval_cells([a["means"][m] for m in names])] for a in arms],
        **{"improvement" + scale: [ARM_COLUMNS + ["selection", "paired prompts",
                                                 *_interval_columns(g_heads + m_heads)]] + [
            _arm_cells(a) + ["+".join(a["selection"]), str(a["paired_prompts"]),
                             *_interval_cells([a["groups" + scale][g] for g in groups]
                                              + [a["improvement" + scale][m] for m in names])]
            for a in searches] for _, _, scale in IMPROVEMENT_TABLES},
        "cost": [ARM_COLUMNS + ["prompts", "runs", "nfe per sample", "wall s per sample",
                                "candidates per sample"]] + [
            _arm_cells(a) + [str(a["prompts"]), str(a["runs"]), _num(a["nfe"]),
                             _num(a["wall_s"]), _num(a["candidates"])] for a in arms],
        "comparisons": [["a method", "b method", "aggregator", "nfe a", "nfe b", "prompts",
                         *_interval_columns([f"delta {h}" for h in g_heads + m_heads])]] + [
            [c["a"]["method"], c["b"]["method"], c["aggregator"], _num(c["nfe_a"]),
             _num(c["nfe_b"]), str(c["prompts"]),
             *_interval_cells([c["groups"][g] for g in groups]
                              + [c["metrics"][m] for m in names])]
            for c in summary["comparisons"]],
    }


def write_tables(rows: list[dict], metrics: dict[str, MetricInfo], out_dir: str | Path,
                 bootstrap: int = BOOT, seed: int = SEED) -> dict[str, Path]:
    """tables.md, means.csv, improvement.csv, improvement_spread.csv, cost.csv and
    comparisons.csv in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows, metrics, bootstrap, seed)
    paths = {"tables": out / "tables.md"}
    paths["tables"].write_text(markdown(summary, metrics), encoding="utf-8")
    for name, table in csv_tables(summary, metrics).items():
        paths[name] = out / f"{name}.csv"
        with open(paths[name], "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(table)
    return paths
