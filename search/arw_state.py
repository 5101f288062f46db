"""Named ARW states shared across searches and persisted on disk, changed only by transactions.

``ARWStore.open`` reads a state's file afresh (so a file edited or restored on disk is what the
next search builds on) into a working copy; a search updates the copy after every generation;
``ARWStore.commit`` writes it back atomically (temporary file, fsync, rename) only when the
whole unit of work (in ComfyUI: the queued prompt) succeeded. A failed or interrupted unit
simply drops its copy, so the file stays byte-identical. A file that is corrupt, not ours, or
holds out-of-range values is never overwritten silently: opening it raises, and only an
explicit reset replaces it, keeping the old file beside it as ``<name>.json.bak-<time>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .aggregation import (ARW, OPTIMIZERS, RewardError, RunningStats, Weights, check_arw_settings,
                          check_weights_arg)

FORMAT = "avits-arw-state"
VERSION = 2
TRACE_LIMIT = 1000
"""Updates kept in a state's trace of scales over time (the newest), so a file stays small."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

BEFORE_REPLACE: list[Callable[[Path], None]] = []
"""Called with the temporary file after it is written and synced, before it replaces the state
file: the moment a crash is most dangerous. Empty in normal use; tests pause here to kill the
process inside the write."""


class ARWStateError(RuntimeError):
    """A saved ARW state that cannot be used as it is, or settings that do not fit it."""


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write strict JSON (no NaN tokens) so that readers see either the old file or the whole
    new one."""
    text = json.dumps(payload, allow_nan=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    for hook in BEFORE_REPLACE:
        hook(tmp)
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ARWSettings:
    """What a user sets on a state (the ARW State node's inputs). ``optimizer`` and ``window``
    are fixed when a state is created; the others may change from one prompt to the next."""

    weights: Weights = None
    lr: float = 0.05
    iters: int = 50
    optimizer: str = "adam"
    window: int | None = None

    def __post_init__(self) -> None:
        try:
            check_arw_settings(self.lr, self.iters, self.optimizer, self.window)
            check_weights_arg(self.weights)
        except RewardError as e:
            raise ARWStateError(str(e)) from None


@dataclass
class SharedARW:
    """A working copy of a named state: the ARW, its trace of scales, and the identity of the
    verifier behind each reward it learned from."""

    name: str
    path: Path
    arw: ARW
    trace: list[dict[str, Any]] = field(default_factory=list)
    identities: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    base: str | None = None
    """sha256 of the file's bytes when the copy was opened (None: there was no file)."""

    def bind(self, identities: Mapping[str, str]) -> None:
        """Check a search's verifier set ({reward name: verifier identity}, in the set's
        order) against what this state learned from, before any work; then bind the ARW."""
        known = {k: v for k, v in self.identities.items() if k in identities}
        changed = {k: (v, identities[k]) for k, v in known.items() if v != identities[k]}
        if changed:
            lines = "; ".join(f"'{k}' was learned from {a}, this search uses {b}"
                              for k, (a, b) in changed.items())
            raise ARWStateError(f"ARW state '{self.name}': {lines}. Rewards of another model or "
                                "other settings are on another scale: reset the state or use "
                                "another state name")
        try:
            self.arw.bind(list(identities))
        except RewardError as e:
            raise ARWStateError(f"ARW state '{self.name}': {e}") from None
        self.identities = dict(identities)

    def after_observe(self) -> None:
        """Record the new scales (called by the search after each observe)."""
        self.trace.append({"history_size": self.arw.history_size, "sigmas": self.arw.sigmas(),
                           "time": time.time()})
        del self.trace[:-TRACE_LIMIT]

    def payload(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "name": self.name,
                "state": self.arw.state_dict(), "identities": self.identities,
                "trace": self.trace}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ARWStore:
    """The named states of one directory: ``<dir>/<name>.json`` each."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def path(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ARWStateError(f"ARW state name '{name}' must be 1-64 letters, digits, '_', '-' "
                                "or '.', starting with a letter or digit")
        return self.directory / f"{name}.json"

    def open(self, name: str, settings: ARWSettings | None = ARWSettings(),
             reset: bool = False) -> SharedARW:
        """A working copy of the state called ``name`` with ``settings`` applied: read from its
        file now, or new when there is none or ``reset`` is set. Nothing is written. ``settings``
        None: a saved state as it was saved (an import merges into it with its own settings);
        a new one with the defaults."""
        if not isinstance(reset, bool):
            raise ARWStateError(f"reset must be true or false, got {reset!r}")
        path = self.path(name)
        data = self._read_bytes(path)
        base = None if data is None else _digest(data)
        if reset or data is None:
            settings = settings or ARWSettings()
            arw = ARW(optimizer=settings.optimizer, history_size=settings.window)
            shared = SharedARW(name, path, arw, reset=reset and data is not None, base=base)
        else:
            shared = self._parse(name, path, data)
            shared.base = base
            if settings is None:
                return shared
            old = shared.arw
            if (old.optimizer_name, old.window) != (settings.optimizer, settings.window):
                raise ARWStateError(
                    f"ARW state '{name}' was created with optimizer '{old.optimizer_name}' and "
                    f"window {old.window or 0}, not '{settings.optimizer}' and "
                    f"{settings.window or 0}: these are fixed when a state is created; reset it "
                    "or choose another name")
        try:
            shared.arw.configure(settings.weights, settings.lr, settings.iters)
        except RewardError as e:
            raise ARWStateError(f"ARW state '{name}': {e}") from None
        return shared

    def commit(self, shared: SharedARW) -> None:
        """Write the working copy back. The file must still be what ``open`` read (else another
        writer or a restore happened in between, and this copy is refused); a reset keeps the
        old file beside the new one, under a name no other backup has."""
        current = self._read_bytes(shared.path)
        if (None if current is None else _digest(current)) != shared.base:
            raise ARWStateError(f"the ARW state file {shared.path} changed on disk while this "
                                "prompt ran; this prompt's update was not saved")
        shared.path.parent.mkdir(parents=True, exist_ok=True)
        if shared.reset and current is not None:
            self._keep_aside(shared.path)
        atomic_write_json(shared.path, shared.payload())
        shared.base, shared.reset = _digest(shared.path.read_bytes()), False

    @staticmethod
    def _keep_aside(path: Path) -> Path:
        """Copy ``path`` to ``<name>.bak-<time>[-n]``, a name no earlier backup has."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = 0
        while (aside := path.with_name(f"{path.name}.bak-{stamp}" + (f"-{n}" if n else ""))).exists():
            n += 1
        shutil.copy2(path, aside)
        return aside

    @staticmethod
    def _read_bytes(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ARWStateError(f"the ARW state file {path} cannot be read ({e})") from None

    def _parse(self, name: str, path: Path, data: bytes) -> SharedARW:
        return parse_state(data, name, path, f"the ARW state file {path}",
                           "it was left untouched: reset the state to start afresh (the file "
                           "is then kept aside) or restore it from a backup")


def parse_state(data: bytes, name: str, path: Path, what: str, hint: str) -> SharedARW:
    """A state file's bytes (or an exported copy of one) as a working copy, every value
    checked; an error names ``what`` was read and ends with ``hint``."""

    def bad(why: str) -> ARWStateError:
        return ARWStateError(f"{what} {why}; {hint}")

    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"is corrupt ({e})") from None
    except ValueError as e:
        raise bad(f"holds {e}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise bad("is not an AVITS ARW state file")
    if obj.get("version") == 1:
        obj = _from_version_1(obj)
    if obj.get("version") != VERSION:
        raise bad(f"has ARW state format version {obj.get('version')!r}; this AVITS reads "
                  f"versions 1 and {VERSION}")
    state, trace, identities = obj.get("state"), obj.get("trace", []), obj.get("identities", {})
    if not isinstance(state, dict) or state.get("optimizer") not in OPTIMIZERS:
        raise bad(f"has no valid 'state' (got {_short(state)})")
    if not isinstance(trace, list) or not isinstance(identities, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in identities.items()):
        raise bad("has a malformed 'trace' or 'identities'")
    arw = ARW(optimizer=state["optimizer"])
    try:
        arw.load_state_dict(state)
    except (RewardError, KeyError, TypeError) as e:
        raise bad(f"does not load ({e})") from None
    return SharedARW(name, path, arw, trace[-TRACE_LIMIT:], dict(identities))


def _reject_constant(token: str) -> Any:
    raise ValueError(f"a non-finite number ({token})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _from_version_1(obj: dict[str, Any]) -> dict[str, Any]:
    """The first format kept every reward and listed scales in the order of the first verifier
    set; carry it over by name, the history as running statistics (or, with a window, as the
    recent rewards). Anything malformed is left for the checks of the current format."""
    state = dict(obj.get("state") or {})
    names, history = state.get("verifiers") or [], state.pop("history", None) or {}
    if not isinstance(names, list) or not isinstance(history, dict):
        return {**obj, "version": VERSION}

    def by_name(values: Any) -> Any:
        return dict(zip(names, values)) if isinstance(values, list) else values

    try:
        if state.get("history_size") is None:
            state["stats"] = {k: RunningStats().merged(torch.tensor(v, dtype=torch.float64))
                              .state_dict() for k, v in history.items()}
        else:
            state["recent"] = history
    except (TypeError, ValueError, RuntimeError):
        return {**obj, "version": VERSION}
    if isinstance(state.get("weights"), list):
        state["weights"] = by_name(state["weights"])
    state["log_var"] = by_name(state.get("log_var"))
    opt = state.get("optimizer_state")
    if isinstance(opt, dict):
        state["optimizer_state"] = {**opt, "exp_avg": by_name(opt.get("exp_avg")),
                                    "exp_avg_sq": by_name(opt.get("exp_avg_sq"))}
    return {**obj, "version": VERSION, "state": state}
