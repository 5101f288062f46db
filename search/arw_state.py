"""Named ARW states shared across searches and persisted on disk.

One ARW object per name in the process, so every queued prompt that names the same state keeps
teaching the same scales; after each update it is written to ``<dir>/<name>.json`` atomically
(temporary file, fsync, rename), so a crash mid-write leaves the previous state loadable. A file
that is corrupt or not ours is never overwritten silently: loading it raises, and only an
explicit reset moves it aside.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from .aggregation import ARW, RewardError

FORMAT = "avits-arw-state"
VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ARWStateError(RuntimeError):
    """A saved ARW state that cannot be used as it is."""


def atomic_write_json(path: Path, payload: dict) -> None:
    """Write JSON so that readers see either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SharedARW:
    """An ARW state with a name, a file, and a trace of its scales after every update."""

    def __init__(self, name: str, path: Path, arw: ARW, trace: list[dict] | None = None):
        self.name, self.path, self.arw = name, path, arw
        self.trace: list[dict] = trace or []

    def after_observe(self) -> None:
        """Record the new scales and persist (called by the search after each observe)."""
        self.trace.append({"history_size": self.arw.history_size, "sigmas": self.arw.sigmas(),
                           "time": time.time()})
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, {"format": FORMAT, "version": VERSION, "name": self.name,
                                      "state": self.arw.state_dict(), "trace": self.trace})


class ARWRegistry:
    """The process-wide map from state name to SharedARW, backed by one directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._states: dict[str, SharedARW] = {}

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ARWStateError(f"ARW state name '{name}' must be 1-64 letters, digits, '_', '-' "
                                "or '.', starting with a letter or digit")
        return self.directory / f"{name}.json"

    def get(self, name: str, optimizer: str = "adam", reset: bool = False) -> SharedARW:
        """The state called ``name``: from memory, else from its file, else new. ``reset``
        starts it afresh (a corrupt file is kept beside it as ``.corrupt-<time>``)."""
        path = self.path(name)
        if reset:
            self._states.pop(name, None)
            if path.exists() and not self._readable(path):
                path.rename(path.with_name(f"{path.name}.corrupt-{int(time.time())}"))
            shared = SharedARW(name, path, ARW(optimizer=optimizer))
            shared.save()
            self._states[name] = shared
        if name not in self._states:
            self._states[name] = self._load(name, path, optimizer)
        shared = self._states[name]
        if shared.arw.optimizer_name != optimizer:
            raise ARWStateError(f"ARW state '{name}' was created with optimizer "
                                f"'{shared.arw.optimizer_name}', not '{optimizer}': reset it or "
                                "choose another name")
        return shared

    def _readable(self, path: Path) -> bool:
        try:
            self._read(path)
            return True
        except ARWStateError:
            return False

    def _read(self, path: Path) -> dict:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ARWStateError(f"the ARW state file {path} is corrupt ({e}); it was left "
                                "untouched: reset the state to start afresh (the file is then "
                                "kept aside) or restore it from a backup") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ARWStateError(f"{path} is not an AVITS ARW state file; it was left untouched: "
                                "move it away or reset the state")
        if data.get("version") != VERSION:
            raise ARWStateError(f"{path} has ARW state format version {data.get('version')}, "
                                f"this AVITS reads version {VERSION}; it was left untouched")
        return data

    def _load(self, name: str, path: Path, optimizer: str) -> SharedARW:
        if not path.exists():
            return SharedARW(name, path, ARW(optimizer=optimizer))
        data = self._read(path)
        state = data["state"]
        arw = ARW(optimizer=state.get("optimizer", optimizer))
        try:
            arw.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RewardError) as e:
            raise ARWStateError(f"the ARW state in {path} does not load ({e}); it was left "
                                "untouched: reset the state to start afresh") from None
        return SharedARW(name, path, arw, data.get("trace", []))
