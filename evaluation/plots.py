"""Evaluation figures: how each metric scales with the search budget, and the ARW scales a
shared state learned over the prompts. Drawn on an Agg canvas without pyplot, so no global
backend is switched and nothing needs a display."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .tables import BOOT, SEED, Arm, MetricInfo, arm_keys, arm_means, collect_arms

BUDGET_LABEL = "N (Best-of-N) / mean candidates per sample (other searches)"
SHARED_ARW = "arw_shared"


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def _budget(arm: Arm) -> float:
    """Where an arm sits on the budget axis: Best-of-N's N, else its candidates per sample."""
    return float(arm.n) if arm.kind == "best_of_n" and arm.n is not None else arm.candidates


def _draw_metric(ax, name: str, info: MetricInfo, arms: list[Arm], means: list[dict]) -> None:
    """One panel: Best-of-N as a line with its interval band per aggregator, other searches as
    points with error bars, naive as a horizontal line with its band."""
    for arm, m in zip(arms, means):
        if arm.kind == "naive":
            c = m[name]
            ax.axhline(c["value"], color="black", lw=1, ls="--", label="naive")
            ax.axhspan(c["lo"], c["hi"], color="black", alpha=0.08)
    aggregators = list(dict.fromkeys(a.aggregator for a in arms if a.kind != "naive"))
    for k, agg in enumerate(aggregators):
        color = f"C{k % 10}"
        line = sorted(((_budget(a), m[name]) for a, m in zip(arms, means)
                       if a.aggregator == agg and a.kind == "best_of_n" and a.n is not None),
                      key=lambda p: p[0])
        if line:
            xs = [x for x, _ in line]
            ax.plot(xs, [c["value"] for _, c in line], marker="o", color=color,
                    label=f"best_of_n · {agg}")
            ax.fill_between(xs, [c["lo"] for _, c in line], [c["hi"] for _, c in line],
                            color=color, alpha=0.2)
        for j, (a, m) in enumerate((a, m) for a, m in zip(arms, means)
                                   if a.aggregator == agg and a.kind not in ("naive", "best_of_n")):
            c = m[name]
            ax.errorbar([_budget(a)], [c["value"]],
                        yerr=[[c["value"] - c["lo"]], [c["hi"] - c["value"]]], fmt="sd^v"[j % 4],
                        color=color, capsize=3, label=a.label)
    ax.set_title(info.name + ("" if info.higher_is_better else " (lower is better)"))
    ax.set_xlabel(BUDGET_LABEL, fontsize=7)
    ax.set_ylabel("mean over prompts (95 % CI)", fontsize=7)


def scaling_plot(rows: list[dict], metrics: dict[str, MetricInfo], path: str | Path,
                 bootstrap: int = BOOT, seed: int = SEED) -> Path | None:
    """Each metric's mean against the search budget, per aggregator; None (nothing written)
    when there is no search arm or no metric."""
    arms = collect_arms(rows, metrics)
    if not metrics or not any(a.kind != "naive" for a in arms):
        return None
    means = [arm_means(a, metrics, bootstrap, seed) for a in arms]
    cols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(4.5 * cols, 3.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, (name, info) in zip(axes, metrics.items()):
        _draw_metric(ax, name, info, arms, means)
        budgets = [_budget(a) for a in arms if a.kind != "naive"]
        if min(budgets) > 0 and max(budgets) / min(budgets) >= 4:
            ax.set_xscale("log", base=2)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def arw_scales_plot(rows: list[dict], path: str | Path) -> Path | None:
    """The scales of every shared-ARW arm after each run, in prompt order (a prompt's seeds in
    seed order), one line per reward per arm; None when no row carries shared-ARW scales."""
    series = []
    for method, agg in arm_keys(rows):
        if agg != SHARED_ARW:
            continue
        runs = sorted((r for r in rows if (r["method"], r["aggregator"]) == (method, agg)
                       and r.get("arw_scales")), key=lambda r: (r["prompt_index"], r["seed"]))
        for reward in dict.fromkeys(k for r in runs for k in r["arw_scales"]):
            pts = [(i, r["arw_scales"][reward]) for i, r in enumerate(runs, 1)
                   if reward in r["arw_scales"]]
            series.append((f"{reward} · {method}", pts))
    if not series:
        return None
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for label, pts in series:
        ax.plot(*zip(*pts), marker=".", label=label)
    if all(v > 0 for _, pts in series for _, v in pts):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("run, in prompt order (prompt index, then seed)")
    ax.set_ylabel("ARW scale (sigma)")
    ax.set_title("Shared ARW scales over prompts")
    ax.legend(fontsize=7)
    return _save(fig, path)


def gain_plot(summary: dict, path: str | Path) -> Path | None:
    """Overall improvement over naive against NFE per sample: Best-of-N as a line over its N per
    aggregator, every other search as a point, each with its paired-bootstrap interval."""
    arms = [a for a in summary["arms"] if "groups" in a and a["groups"]["overall"]["value"] is not None]
    if not arms:
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    series: dict[tuple[str, str], list[dict]] = {}
    for a in arms:
        family = a["method_kind"] if a["method_kind"] == "best_of_n" else a["method"]
        series.setdefault((family, a["aggregator"]), []).append(a)
    for (family, agg), members in sorted(series.items()):
        members.sort(key=lambda a: a["nfe"])
        x = [a["nfe"] for a in members]
        y = [a["groups"]["overall"]["value"] for a in members]
        lo = [a["groups"]["overall"]["lo"] if a["groups"]["overall"]["lo"] is not None else v for a, v in zip(members, y)]
        hi = [a["groups"]["overall"]["hi"] if a["groups"]["overall"]["hi"] is not None else v for a, v in zip(members, y)]
        label = f"{'Best-of-N' if family == 'best_of_n' else family} · {agg}"
        if len(members) > 1:
            line, = ax.plot(x, y, "-o", label=label, markersize=4)
            ax.fill_between(x, lo, hi, alpha=0.15, color=line.get_color())
        else:
            ax.errorbar(x, y, yerr=[[y[0] - lo[0]], [hi[0] - y[0]]], fmt="s", capsize=3, label=label)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("NFE per sample (denoiser calls, a CFG pair counts once)")
    ax.set_ylabel("Overall improvement over naive (%)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path)
