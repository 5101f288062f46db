"""Gain capture: the share of Best-of-N's improvement over naive sampling that a cheaper search
keeps, against its NFE and wall-clock as fractions of Best-of-N's. The improvement is the
Overall group in spreads of the naive metric (robust where a naive mean is near 0); every arm,
the reference and naive are resampled on the same prompts, so the ratio's interval is paired.
A reference whose own gain interval includes 0 makes every ratio meaningless: then the table
says so instead of showing ratios."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import MetricInfo
from .tables import (BOOT, SEED, Interval, _groups, _interval, _mean_defined, _paired_improvements,
                     collect_arms, fmt, fmt_interval)

REFERENCE = "best_of_n[n=10]"


def gain_capture(rows: list[dict], metrics: dict[str, MetricInfo], reference: str = REFERENCE,
                 bootstrap: int = BOOT, seed: int = SEED) -> dict[str, Any]:
    """Per search arm (of the reference's aggregator): NFE and wall-clock over the reference's,
    its Overall gain, and that gain over the reference's, each with a paired interval."""
    arms = collect_arms(rows, metrics)
    naive = next(a for a in arms if a.kind == "naive")
    refs = [a for a in arms if a.method == reference]
    if not refs:
        raise ValueError(f"no arm {reference!r} to measure gain capture against")
    ref = refs[0]
    overall = _groups(metrics)["overall"]
    out = []
    for arm in arms:
        if arm is naive or arm.aggregator != ref.aggregator:
            continue
        shared, [(pa, ra), (pr, rr)] = _paired_improvements([arm, ref], naive, metrics,
                                                            bootstrap, seed, "spread")
        keep = [c for c in overall if np.isfinite(pa[c]) and np.isfinite(pr[c])]
        gain, gain_reps = float(_mean_defined(pa, keep)), _mean_defined(ra, keep)
        ref_gain, ref_reps = float(_mean_defined(pr, keep)), _mean_defined(rr, keep)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = _interval(float(np.divide(100 * gain, ref_gain)), 100 * gain_reps / ref_reps)
        out.append({"label": arm.label, "method": arm.method, "kind": arm.kind, "n": arm.n,
                    "nfe": arm.nfe, "nfe_ratio": arm.nfe / ref.nfe, "wall_s": arm.wall_s,
                    "wall_ratio": arm.wall_s / ref.wall_s if ref.wall_s else None,
                    "prompts": shared, "gain": _interval(gain, gain_reps),
                    "reference_gain": _interval(ref_gain, ref_reps), "capture": share})
    out.sort(key=lambda r: (r["nfe"], r["label"]))
    ref_gain = next(r["reference_gain"] for r in out if r["method"] == reference)
    return {"reference": ref.label, "arms": out, "bootstrap": bootstrap,
            "meaningful": ref_gain["lo"] is not None and ref_gain["lo"] > 0}


def markdown(capture: dict[str, Any]) -> str:
    lines = [f"# Gain capture against {capture['reference']}", "",
             "Share of the reference's Overall gain over naive sampling (in naive spreads) that "
             "each search keeps, with its NFE and wall-clock as fractions of the reference's; "
             f"95 % paired bootstrap intervals over prompts ({capture['bootstrap']} resamples).", ""]
    if not capture["meaningful"]:
        lines += ["**The reference's own gain interval includes 0: the shares below are not "
                  "meaningful.**", ""]
    lines += ["| search | NFE | NFE / ref | wall s | wall / ref | Overall gain | share of ref's gain |",
              "|---|---|---|---|---|---|---|"]
    for r in capture["arms"]:
        lines.append(f"| {r['label']} | {r['nfe']:.0f} | {r['nfe_ratio']:.2f} | {r['wall_s']:.2f} | "
                     f"{fmt(r['wall_ratio'])} | {fmt_interval(r['gain'], signed=True)} | "
                     f"{fmt_interval(r['capture'])} % |")
    return "\n".join(lines) + "\n"


def plot(capture: dict[str, Any], path: Path) -> Path:
    """Share of the reference's gain against NFE / reference: Best-of-N as a line, others as points."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    rows = [r for r in capture["arms"] if r["capture"]["value"] is not None]

    def bars(rs: list[dict]) -> list[list[float]]:
        return [[r["capture"]["value"] - (r["capture"]["lo"] if r["capture"]["lo"] is not None else r["capture"]["value"]) for r in rs],
                [(r["capture"]["hi"] if r["capture"]["hi"] is not None else r["capture"]["value"]) - r["capture"]["value"] for r in rs]]

    bon = [r for r in rows if r["kind"] == "best_of_n"]
    if bon:
        ax.errorbar([r["nfe_ratio"] for r in bon], [r["capture"]["value"] for r in bon], yerr=bars(bon),
                    fmt="-o", markersize=4, capsize=2, label="Best-of-N")
    for r in (r for r in rows if r["kind"] != "best_of_n"):
        ax.errorbar([r["nfe_ratio"]], [r["capture"]["value"]], yerr=bars([r]), fmt="s", capsize=3,
                    label=r["label"])
    ax.axhline(95, color="grey", lw=0.6, ls="--")
    ax.axvline(0.4, color="grey", lw=0.6, ls=":")
    ax.set_xlabel(f"NFE / {capture['reference']}")
    ax.set_ylabel("share of its Overall gain (%)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def write(rows: list[dict], metrics: dict[str, MetricInfo], out_dir: Path,
          bootstrap: int = BOOT) -> dict[str, Path]:
    """capture.md, capture.csv and capture.png, where the results hold the reference arm."""
    if not any(r["method"] == REFERENCE for r in rows):
        return {}
    capture = gain_capture(rows, metrics, bootstrap=bootstrap)
    out = {"capture.md": out_dir / "capture.md", "capture.csv": out_dir / "capture.csv"}
    out["capture.md"].write_text(markdown(capture), encoding="utf-8")
    with open(out["capture.csv"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["search", "nfe", "nfe_ratio", "wall_s", "wall_ratio", "gain", "gain_lo",
                    "gain_hi", "share", "share_lo", "share_hi"])
        for r in capture["arms"]:
            w.writerow([r["label"], r["nfe"], r["nfe_ratio"], r["wall_s"], r["wall_ratio"],
                        *_cells(r["gain"]), *_cells(r["capture"])])
    out["capture.png"] = plot(capture, out_dir / "capture.png")
    return out


def _cells(i: Interval) -> list[Any]:
    return [i["value"], i["lo"], i["hi"]]
