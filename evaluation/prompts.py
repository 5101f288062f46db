"""The prompts of an evaluation: a built-in ToyAV set or a user's caption list (a text file with
one prompt per line, a CSV or a JSONL file with the prompt in a named column)."""

from __future__ import annotations

import csv
import json

from .config import ConfigError, Prompts

BUILT_IN = {"toyav": "discrete", "toyav_continuous": "continuous"}


def load_prompts(spec: Prompts) -> list[str]:
    """The prompt list, cut to ``count``; an empty or missing file is an error naming it."""
    if spec.set is not None:
        if spec.set not in BUILT_IN:
            raise ConfigError(f"prompts.set {spec.set!r} unknown; built-in sets: {', '.join(BUILT_IN)}")
        from ..generators.toyav import prompt_set
        kwargs = {} if BUILT_IN[spec.set] == "discrete" else {"world": BUILT_IN[spec.set]}
        return prompt_set(spec.count or 8, spec.seed, **kwargs)
    path = spec.file
    if not path.is_file():
        raise ConfigError(f"prompts.file {path} not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if spec.column not in (reader.fieldnames or []):
            raise ConfigError(f"{path} has no column {spec.column!r} (prompts.column); its columns "
                              f"are {reader.fieldnames}")
        prompts = [row[spec.column] for row in reader]
    elif path.suffix == ".jsonl":
        prompts = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if spec.column not in row:
                    raise ConfigError(f"{path}:{n} has no field {spec.column!r} (prompts.column)")
                prompts.append(row[spec.column])
    else:
        prompts = text.splitlines()
    prompts = [p.strip() for p in prompts if p and p.strip()]
    if not prompts:
        raise ConfigError(f"{path} holds no prompts")
    return prompts[:spec.count] if spec.count else prompts
