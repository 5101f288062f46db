"""The results file: one JSON line per (arm, prompt, seed), appended as each finishes and synced
to disk, so a run killed at any point resumes where it stopped with nothing recomputed. A line
cut short by the kill is dropped on reopening; a results file made by another config is refused
(its header line records the config's fingerprint)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


class ResultsError(ValueError):
    pass


def fingerprint(raw_config: str) -> str:
    return hashlib.sha256(raw_config.encode()).hexdigest()[:16]


class Results:
    """``results.jsonl`` in the run's output folder."""

    def __init__(self, path: Path, config_fingerprint: str) -> None:
        self.path = Path(path)
        self.rows: dict[str, dict[str, Any]] = {}
        self._fingerprint = config_fingerprint
        if self.path.exists():
            self._read()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_line({"header": {"config": config_fingerprint}})

    def _read(self) -> None:
        data = self.path.read_bytes()
        good = data[:data.rfind(b"\n") + 1]  # a last line without its newline was cut by a kill
        if len(good) != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(len(good))
        lines = good.decode().splitlines()
        if not lines or json.loads(lines[0]).get("header", {}).get("config") != self._fingerprint:
            raise ResultsError(f"{self.path} was written by another config; delete it (or set "
                               f"another 'output') to start this one")
        for line in lines[1:]:
            row = json.loads(line)
            self.rows[row["key"]] = row

    def _write_line(self, obj: dict) -> None:
        line = json.dumps(obj, allow_nan=False) + "\n"  # complete before anything is written
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def add(self, row: dict[str, Any]) -> None:
        if row["key"] in self.rows:
            raise ResultsError(f"result {row['key']} is already recorded")
        self._write_line(row)
        self.rows[row["key"]] = row

    def in_order(self) -> list[dict[str, Any]]:
        return list(self.rows.values())
