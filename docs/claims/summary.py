"""The numbers of docs/claims.md's main table, read from the two draws' results (the CSVs that
scripts/evaluate writes), so the table is regenerated, not copied by hand. Run from the
repository root after the claims run: python docs/claims/summary.py"""
import csv
from pathlib import Path

HERE = Path(__file__).parent
DRAWS = {"draw 1": "", "draw 2": "_replicate"}
BON = "best_of_n[n={}]"
DRAFT, DRAFT4 = "draft_then_commit[n=10|commit=2|draft.steps=6]", "draft_then_commit[n=15|commit=2|draft.steps=4]"
EVO = "evosearch[evolution_steps=0,10|population_sizes=5,5,5|elites=2]"
PRUNED, PARTICLES = "pruned_best_of_n[n=10]", "particles[n=4|resample_steps=10,20]"


def rows(folder: str, name: str) -> list[dict[str, str]]:
    with open(HERE / folder / name, newline="") as f:
        return list(csv.DictReader(f))


def num(x: str) -> str:
    v = float(x)
    return f"{v:+.0f}" if abs(v) >= 100 else f"{v:+.1f}"


def ci(row: dict[str, str], key: str) -> str:
    return f"{num(row[key])} [{num(row[key + ' lo'])}, {num(row[key + ' hi'])}]"


def share(folder: str, search: str) -> str:
    row = next(r for r in rows(folder, "capture.csv") if r["search"].split(" · ")[0] == search)
    return f"{float(row['share']):.1f} % [{float(row['share_lo']):.1f}, {float(row['share_hi']):.1f}]"


def gain(folder: str, search: str) -> str:
    row = next(r for r in rows(folder, "capture.csv") if r["search"].split(" · ")[0] == search)
    return f"{num(row['gain'])} [{num(row['gain_lo'])}, {num(row['gain_hi'])}]"


def spread(folder: str, method: str) -> dict[str, str]:
    return next(r for r in rows(folder, "improvement_spread.csv") if r["method"] == method)


def delta(folder: str, a: str, b: str) -> str:
    row = next(r for r in rows(folder, "comparisons.csv") if r["a method"] == a and r["b method"] == b)
    return ci(row, "delta Overall")


for draw, tail in DRAWS.items():
    capture = "capture" + tail
    print(f"## {draw}")
    print("Best-of-N Overall (spreads):", ", ".join(f"N={n} {gain(capture, BON.format(n))}" for n in (2, 4, 8, 10)))
    best = spread(capture, BON.format(10))
    metrics = [k for k in best if k.endswith(("_error ↓", "_s ↓", "text_match")) and not k.endswith((" lo", " hi"))]
    print("Best-of-10 per metric (spreads):", "; ".join(f"{m.rstrip(' ↓')} {ci(best, m)}" for m in metrics))
    print("  intervals above 0:", sum(float(best[m + " lo"]) > 0 for m in metrics), "of", len(metrics))
    for alone in ("text", "sync"):
        row = spread(f"hacking_{alone}{tail}", BON.format(10))
        print(f"Best-of-10 on {alone} alone: Text {ci(row, 'Text')}, AV {ci(row, 'AV')}")
    print(f"Best-of-10 on the pair: Text {ci(best, 'Text')}, AV {ci(best, 'AV')}")
    print("EvoSearch 300 NFE share of Best-of-10:", share(capture, EVO), "| minus Best-of-10 (relative %):", delta(capture, EVO, BON.format(10)))
    print("draft 10x6 share:", share(capture, DRAFT), "| Best-of-4 minus draft:", delta(capture, BON.format(4), DRAFT),
          "| pruned minus draft:", delta(capture, PRUNED, DRAFT))
    print("draft 15x4 share:", share(capture, DRAFT4), "| pruned share:", share(capture, PRUNED),
          "| particles share:", share(capture, PARTICLES), "| Best-of-4 share:", share(capture, BON.format(4)))
    wall = {r["search"].split(" · ")[0]: float(r["wall_ratio"]) for r in rows(capture, "capture.csv")}
    print(f"wall / Best-of-10: draft {wall[DRAFT]:.2f}, pruned {wall[PRUNED]:.2f}, evo {wall[EVO]:.2f}, Best-of-4 {wall[BON.format(4)]:.2f}")
