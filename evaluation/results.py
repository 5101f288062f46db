"""The results file: one JSON line per (arm, prompt, seed), appended as each finishes and synced
to disk, so a run killed at any point resumes where it stopped with nothing recomputed. A line
cut short by the kill is dropped on reopening; a results file made by another config or another
version of the code is refused (its header line records both fingerprints), so results never
silently go stale: ``--fresh`` starts over."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


class ResultsError(ValueError):
    pass


PACK = Path(__file__).resolve().parents[1]
CODE = ("core", "search", "generators", "verifiers", "evaluation")
"""The packages whose code decides a result."""


def fingerprint(raw_config: str) -> str:
    return hashlib.sha256(raw_config.encode()).hexdigest()[:16]


def code_version(root: Path = PACK) -> str:
    """A hash of every Python file of the packages that compute results (names and contents):
    any change to them is a new version, with or without git."""
    h = hashlib.sha256()
    for package in CODE:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


class Results:
    """``results.jsonl`` in the run's output folder."""

    def __init__(self, path: Path, config_fingerprint: str, code: str | None = None,
                 fresh: bool = False) -> None:
        """``code`` is the code version (``code_version()`` by default); ``fresh`` sets an
        existing file aside (as ``results.jsonl.previous``) and starts over."""
        self.path = Path(path)
        self.rows: dict[str, dict[str, Any]] = {}
        self._header = {"config": config_fingerprint, "code": code or code_version()}
        if fresh and self.path.exists():
            self.path.replace(self.path.with_name(self.path.name + ".previous"))
        if self.path.exists():
            self._read()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_line({"header": self._header})

    def _read(self) -> None:
        data = self.path.read_bytes()
        good = data[:data.rfind(b"\n") + 1]  # a last line without its newline was cut by a kill
        if len(good) != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(len(good))
        lines = good.decode().splitlines()
        header = json.loads(lines[0]).get("header", {}) if lines else {}
        if header.get("config") != self._header["config"]:
            raise ResultsError(f"{self.path} was written by another config; run with --fresh (or "
                               f"set another 'output') to start this one")
        if header.get("code") != self._header["code"]:
            raise ResultsError(f"{self.path} was written by another version of the code (code "
                               f"{header.get('code')}, now {self._header['code']}); its results "
                               f"may be stale: run with --fresh to recompute them")
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
