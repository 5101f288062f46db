"""How early a score predicts the final one: for each step k, the rank correlation (Spearman and
Kendall tau) between the scores of the candidates' step-k x0 predictions and their final scores,
averaged over prompts (seeds first) with a 95 % bootstrap interval over prompts."""

from __future__ import annotations

import csv
from pathlib import Path


from .tables import fmt_interval, prompt_mean

KIND = "x0_correlation"


def _steps(rows: list[dict]) -> list[int]:
    return sorted({int(m.split("@")[1]) for r in rows for m in r["metrics"]})


def summarize(rows: list[dict], bootstrap: int = 2000) -> dict[str, dict[int, dict]]:
    """{arm: {step: {"spearman": interval, "kendall": interval, "prompts": n}}}; a prompt whose
    scores were all equal (no order) is left out of that step."""
    out: dict[str, dict[int, dict]] = {}
    for arm in sorted({r["arm"] for r in rows}):
        mine = [r for r in rows if r["arm"] == arm]
        table = {}
        for k in _steps(mine):
            cell: dict = {}
            for stat in ("spearman", "kendall"):
                got = prompt_mean(mine, f"{stat}@{k}", bootstrap)
                if got is None:
                    cell[stat] = {"value": None, "lo": None, "hi": None}
                    continue
                cell[stat], cell["prompts"] = got
            table[k] = cell
        out[arm] = table
    return out


def write(rows: list[dict], out_dir: Path, bootstrap: int = 2000) -> dict[str, Path]:
    """correlation.md, correlation.csv and correlation.png for the x0-correlation rows."""
    rows = [r for r in rows if r["method_kind"] == KIND]
    if not rows:
        return {}
    summary = summarize(rows, bootstrap)
    out_dir = Path(out_dir)
    lines = ["# Do early scores predict final ones?", "",
             "Rank correlation between the score of each candidate's x0 prediction at step k and "
             "its final score (the same aggregator scale for both), mean over prompts with a 95 % "
             "bootstrap interval.", ""]
    with open(out_dir / "correlation.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arm", "step", "prompts", "spearman", "spearman lo", "spearman hi",
                    "kendall", "kendall lo", "kendall hi"])
        for arm, table in summary.items():
            lines += [f"## {arm}", "", "| step | prompts | Spearman | Kendall tau |", "|---|---|---|---|"]
            for k, cell in table.items():
                lines.append(f"| {k} | {cell.get('prompts', 0)} | {fmt_interval(cell['spearman'], True)} | "
                             f"{fmt_interval(cell['kendall'], True)} |")
                w.writerow([arm, k, cell.get("prompts", 0)] +
                           [("" if cell[s][x] is None else f"{cell[s][x]:.12g}")
                            for s in ("spearman", "kendall") for x in ("value", "lo", "hi")])
            lines.append("")
    (out_dir / "correlation.md").write_text("\n".join(lines))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for arm, table in summary.items():
        for stat, style in (("spearman", "-o"), ("kendall", "--s")):
            ks = [k for k in table if table[k][stat]["value"] is not None]
            v = [table[k][stat]["value"] for k in ks]
            lo = [table[k][stat]["lo"] if table[k][stat]["lo"] is not None else table[k][stat]["value"] for k in ks]
            hi = [table[k][stat]["hi"] if table[k][stat]["hi"] is not None else table[k][stat]["value"] for k in ks]
            line, = ax.plot(ks, v, style, label=f"{stat} ({arm.split('/')[0]})")
            ax.fill_between(ks, lo, hi, alpha=0.15, color=line.get_color())
    ax.set_xlabel("step k of the x0 prediction")
    ax.set_ylabel("rank correlation with the final score")
    ax.set_ylim(-1, 1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "correlation.png", dpi=120)
    plt.close(fig)
    return {"correlation.md": out_dir / "correlation.md", "correlation.csv": out_dir / "correlation.csv",
            "correlation.png": out_dir / "correlation.png"}
