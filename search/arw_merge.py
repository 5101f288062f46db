"""Carrying a named ARW state to another machine and merging states that learned apart.

**The exchange file** is the state file itself (``arw_state.FORMAT`` "avits-arw-state",
``arw_state.VERSION`` 2), strict JSON: ``name``; ``state`` (the ARW's ``state_dict``: ``verifiers``,
``weights``, ``lr``, ``iters``, ``optimizer``, ``history_size`` (the window or null),
``log_var`` {reward: s_k}, ``optimizer_state`` {step, exp_avg, exp_avg_sq}, and the history:
``stats`` {reward: {count, mean, m2}} without a window, ``recent`` {reward: [rewards]} with
one); ``identities`` {reward: the verifier and settings it came from}; ``trace`` (the scales
over time; an entry of a merge also names the merged export's digest under ``merged``). Version
1 files are read too. A newer version is refused, never guessed at.

**The merge rule: importing B into A is A observing every reward B saw, as one more batch.**

- History without a window: per reward (count, mean, m2) add by Chan et al.'s parallel formula,
  exact and order-free up to float rounding: the statistics of one state that saw every reward.
- History with a window W: A's newest rewards, then B's, the newest W kept (B's count as newer).
- The log-variances s_k and the optimizer's moments are not sufficient statistics (each is the
  end of a path of optimizer steps, and exp(s_k) is a fitted variance, not a sum), so they are
  never averaged or added: A keeps its own and runs ``iters`` optimizer steps towards the merged
  variances, exactly what ``ARW.observe`` does after a batch. Here order matters: merging B into
  A and A into B give the same statistics, but each keeps its own optimizer path until the fits
  converge on the merged variances.
- A with no history takes B whole (its scales and optimizer state too): an import into a new
  state is a copy.
- The trace: both, by time, then one entry for the merge that names the export's digest; an
  export whose digest is in the trace is refused (its rewards would count twice).

Refused, with nothing changed: another verifier set (reward names or the verifiers behind them),
another optimizer or window (fixed when a state is created), an export already merged. Merge only
states that learned from different rewards: two exports of one state, or of states that started
from one shared state, hold the shared rewards twice, and no file can tell.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from .aggregation import ARW, RewardError, RunningStats
from .arw_state import ARWStateError, SharedARW, parse_state


def add_stats(a: RunningStats, b: RunningStats) -> RunningStats:
    """The statistics of the union of two histories (Chan et al.)."""
    total = a.count + b.count
    if not b.count or not a.count:
        return RunningStats(total, b.mean if not a.count else a.mean, a.m2 + b.m2)
    delta = b.mean - a.mean
    return RunningStats(total, a.mean + delta * b.count / total,
                        a.m2 + b.m2 + delta * delta * a.count * b.count / total)


def digest(shared: SharedARW) -> str:
    """What identifies an export whatever its whitespace: sha256 of its canonical JSON."""
    text = json.dumps(shared.payload(), sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_export(data: bytes, source: str) -> SharedARW:
    """An exported state (its file's bytes), every value checked; ``source`` names it in errors."""
    try:
        name = json.loads(data.decode("utf-8")).get("name")
    except (ValueError, AttributeError):
        name = None
    return parse_state(data, name if isinstance(name, str) else "imported", Path(source),
                       f"the exported ARW state {source}", "nothing was imported")


def _refuse(into: SharedARW, other: SharedARW, why: str) -> ARWStateError:
    return ARWStateError(f"ARW state '{into.name}' cannot take '{other.name}': {why}; nothing "
                         "was merged")


def check_merge(into: SharedARW, other: SharedARW) -> None:
    """Raise ARWStateError, naming both, unless ``other`` can be merged into ``into``."""
    a, b = into.arw, other.arw
    if not b.history_size:
        raise _refuse(into, other, "the import holds no rewards yet")
    if (a.optimizer_name, a.window) != (b.optimizer_name, b.window):
        raise _refuse(into, other, f"it uses optimizer '{a.optimizer_name}' and window "
                                   f"{a.window or 0}, the import '{b.optimizer_name}' and "
                                   f"{b.window or 0} (fixed when a state is created: import "
                                   "into a state made with the same settings, or a new name)")
    if a.history_size:
        names_a, names_b = sorted(a.verifiers or []), sorted(b.verifiers or [])
        known = set(into.identities) & set(other.identities)
        if names_a != names_b or any(into.identities[k] != other.identities[k] for k in known):
            raise _refuse(into, other, f"it learned from {_describe(into, names_a)}, the import "
                                       f"from {_describe(other, names_b)}; rewards of other "
                                       "verifiers are on other scales (merge states of one "
                                       "verifier set, or import into a new name)")
    if already_merged(into, other):
        raise _refuse(into, other, "this very export was merged into it before, and merging "
                                   "it again would count its rewards twice")


def already_merged(into: SharedARW, other: SharedARW) -> bool:
    """Whether this very export was merged into ``into`` (within its trace's newest entries)."""
    mark = digest(other)
    return any(isinstance(t, dict) and t.get("merged") == mark for t in into.trace)


def _describe(shared: SharedARW, names: list[str]) -> str:
    return ", ".join(shared.identities.get(k, k) for k in names)


def merge(into: SharedARW, other: SharedARW) -> None:
    """Merge ``other`` into the working copy ``into`` by the rule above; on any error ``into``
    is as it was."""
    check_merge(into, other)
    mark = digest(other)
    a, b = into.arw, other.arw
    settings = {"lr": a.lr, "iters": a.iters, "weights": a.state_dict()["weights"]}
    if not a.history_size:
        state = {**b.state_dict(), **settings}
        identities = dict(other.identities)
    else:
        state = a.state_dict()
        if a.window is None:
            state["stats"] = {k: add_stats(RunningStats.from_state(v, k),
                                           RunningStats.from_state(b.state_dict()["stats"][k], k))
                              .state_dict() for k, v in state["stats"].items()}
        else:
            theirs = b.history()
            state["recent"] = {k: (v + theirs[k].tolist())[-a.window:]
                               for k, v in state["recent"].items()}
        identities = {**other.identities, **into.identities}
    merged = ARW(optimizer=a.optimizer_name)
    try:
        merged.load_state_dict(state)
        if a.history_size:
            merged.fit()
    except RewardError as e:
        raise _refuse(into, other, str(e)) from None
    into.trace = sorted(into.trace + other.trace,
                        key=lambda t: t.get("time", 0) if isinstance(t, dict) else 0)
    into.arw, into.identities = merged, identities
    into.after_observe()
    into.trace[-1]["merged"] = mark
