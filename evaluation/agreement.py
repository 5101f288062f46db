"""Can a cheap decoder's scores be trusted? For each prompt and seed the user's workflow runs
twice on the same seeds: its candidates scored through the generator's scoring VAE, then through
the full VAE (the scoring VAE unplugged). Candidate k is the same latent in both (exact
reproduction), so the two reports differ only in the decoder. Per reward, and for the mean of
the per-reward ranks (a ranking that needs no aggregator state), the rank correlation between the
two (Spearman) and whether both pick the same best (top-1 agreement); means over prompts (seeds
first) with a 95 % bootstrap interval."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .tables import fmt_interval, prompt_mean

KIND = "decoder_agreement"


def _ranks(values: np.ndarray) -> np.ndarray:
    return values.argsort(kind="stable").argsort(kind="stable").astype(float)


def compare(cheap: dict, full: dict) -> dict[str, float | None]:
    """The metrics of one prompt and seed from the two reports (candidates matched by seed)."""
    from scipy.stats import spearmanr

    def scored(report):
        return {c["seed"]: c["rewards"] for c in report["candidates"] if c.get("rewards")}

    a, b = scored(cheap), scored(full)
    if sorted(a) != sorted(b) or len(a) < 2:
        raise ValueError(f"the two runs scored different or too few candidates: seeds "
                         f"{sorted(a)} and {sorted(b)}")
    seeds, names = sorted(a), sorted(next(iter(a.values())))
    table = {k: (np.array([a[s][k] for s in seeds]), np.array([b[s][k] for s in seeds])) for k in names}
    out: dict[str, float | None] = {}
    for k, (x, y) in table.items():
        rho = float(spearmanr(x, y).statistic)
        out[f"spearman:{k}"] = rho if rho == rho else None  # constant scores: no order
    mean_a = np.mean([_ranks(x) for x, _ in table.values()], axis=0)
    mean_b = np.mean([_ranks(y) for _, y in table.values()], axis=0)
    rho = float(spearmanr(mean_a, mean_b).statistic)
    out["spearman"] = rho if rho == rho else None
    out["top1"] = float(seeds[int(np.argmax(mean_a))] == seeds[int(np.argmax(mean_b))])
    return out


def summarize(rows: list[dict], bootstrap: int = 2000) -> dict[str, dict[str, dict]]:
    """{arm: {metric: interval and prompts}}."""
    out: dict[str, dict[str, dict]] = {}
    for arm in sorted({r["arm"] for r in rows}):
        mine = [r for r in rows if r["arm"] == arm]
        cells = {}
        for metric in sorted({m for r in mine for m in r["metrics"]}, key=lambda m: (":" in m, m)):
            got = prompt_mean(mine, metric, bootstrap)
            if got is not None:
                cells[metric] = {**got[0], "prompts": got[1]}
        out[arm] = cells
    return out


def write(rows: list[dict], out_dir: Path, bootstrap: int = 2000) -> dict[str, Path]:
    """agreement.md and agreement.csv for the decoder-agreement rows."""
    rows = [r for r in rows if r["method_kind"] == KIND]
    if not rows:
        return {}
    summary = summarize(rows, bootstrap)
    out_dir = Path(out_dir)
    lines = ["# Does the scoring decoder rank candidates as the full decoder does?", "",
             "Each prompt and seed ran twice on the same seeds: scored through the scoring VAE, "
             "then through the full VAE. Spearman: rank correlation of the candidates' rewards "
             "(per reward, and of their mean rank); top-1: both pick the same best. Means over "
             "prompts with 95 % bootstrap intervals.", ""]
    with open(out_dir / "agreement.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arm", "metric", "prompts", "value", "lo", "hi"])
        for arm, cells in summary.items():
            lines += [f"## {arm}", "", "| metric | prompts | mean [95 % interval] |", "|---|---|---|"]
            for metric, cell in cells.items():
                lines.append(f"| {metric} | {cell['prompts']} | {fmt_interval(cell, True)} |")
                w.writerow([arm, metric, cell["prompts"]] + [("" if cell[x] is None else f"{cell[x]:.12g}")
                                                             for x in ("value", "lo", "hi")])
            lines.append("")
    (out_dir / "agreement.md").write_text("\n".join(lines))
    return {"agreement.md": out_dir / "agreement.md", "agreement.csv": out_dir / "agreement.csv"}
