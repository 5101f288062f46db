"""Shrinks finished claims results for committing: a shared ARW arm's state is kept only on the
row that has seen the most rewards (the one a resumed run loads; evaluation/runner.py), every
other row's ``aggregator_state`` becomes null. Everything else, the header included, is kept, so
the tables regenerate from the file unchanged. Run after the claims run:
python docs/claims/compact.py docs/claims/*/results.jsonl"""
import json
import sys
from pathlib import Path

for path in map(Path, sys.argv[1:]):
    header, *lines = path.read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    keep: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.get("aggregator_state") is not None:
            best = keep.get(row["arm"])
            if best is None or (row["history_size"] or 0) > (rows[best]["history_size"] or 0):
                keep[row["arm"]] = i
    for i, row in enumerate(rows):
        if row.get("aggregator_state") is not None and keep[row["arm"]] != i:
            row["aggregator_state"] = None
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join([header, *(json.dumps(r, allow_nan=False) for r in rows)]) + "\n")
    tmp.replace(path)
    print(f"{path}: {len(rows)} rows, states kept on {len(keep)}, {path.stat().st_size // 1024} KiB")
