"""Turning several verifiers' rewards into one score per candidate.

Every aggregator has the same small interface: ``bind(names)`` fixes the reward names of a
search (a positional weight list is read in that order), ``observe(rewards)`` adds a batch of
raw rewards to its history (and fits, if it learns), ``score(rewards)`` maps raw rewards of a
candidate set to one score each (higher is better), and ``state_dict()`` / ``load_state_dict()``
hold all of its state as plain JSON-able Python. Rewards are ``{reward name: Tensor[N]}``;
weights, histories and scales are keyed by name everywhere, never by position. Formulas and
defaults follow the paper's reference implementation (its aggregators and ARW).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping, Sequence

import torch

from ..core.checks import finite

Rewards = Mapping[str, torch.Tensor]
Weights = Mapping[str, float] | Sequence[float] | None

# The reference's offline statistics for the fixed z-score (mu, sd), keyed by verifier name.
REFERENCE_STATS: dict[str, tuple[float, float]] = {
    "videoreward_ta": (-0.4779, 0.8785),
    "javisscore": (0.1613, 0.1033),
}

MAX_WINDOW = 100_000
"""The largest ARW window (newest rewards kept per verifier); without a window ARW keeps exact
running statistics of every reward instead, whose size does not grow."""

LOG_VAR_LIMIT = 100.0
"""|s_k| beyond this (sigma outside e^-50 .. e^50) means the fit diverged or a file is bad."""


class RewardError(ValueError):
    """Rewards that cannot be aggregated (non-finite values, wrong shapes, unknown verifiers)."""


def check_rewards(rewards: Rewards) -> dict[str, torch.Tensor]:
    """Validate a rewards dict and return it as float64 1-D tensors on the CPU.

    A NaN or infinite reward names its verifier and candidate in the error; nothing is kept."""
    if not rewards:
        raise RewardError("no rewards given: the verifier set is empty")
    out: dict[str, torch.Tensor] = {}
    n = None
    for name, values in rewards.items():
        t = torch.as_tensor(values).detach().to("cpu", torch.float64).reshape(-1)
        bad = (~torch.isfinite(t)).nonzero().flatten()
        if len(bad):
            i = int(bad[0])
            raise RewardError(f"verifier '{name}' returned a non-finite reward ({t[i].item()}) "
                              f"for candidate {i}; it was not added to any history")
        if n is not None and len(t) != n:
            raise RewardError(f"verifier '{name}' returned {len(t)} rewards, others {n}")
        n = len(t)
        out[name] = t
    return out


def resolve_weights(weights: Weights, names: Sequence[str]) -> dict[str, float]:
    """Preference weights by reward name: a mapping by name, a sequence read in the order of
    ``names`` (the current verifier set), or None for equal weights 1/K (0.5/0.5 for two
    verifiers, the reference default). Each weight is finite and >= 0, and one is > 0."""
    names = list(names)
    if weights is None:
        return {n: 1.0 / len(names) for n in names}
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        missing = [n for n in names if n not in weights]
        if unknown or missing:
            raise RewardError(f"the weights name {sorted(weights)}, the verifier set gives "
                              f"{names}: name every reward of the set, and only those")
        out = {n: weights[n] for n in names}
    else:
        weights = list(weights)
        if len(weights) != len(names):
            raise RewardError(f"{len(weights)} weights for the {len(names)} rewards {names}: give "
                              "one per reward in the set's order, or write 'name=w, other=w'")
        out = dict(zip(names, weights))
    out = {n: finite(f"the weight of '{n}'", w, 0, 1e6, error=RewardError) for n, w in out.items()}
    if not any(out.values()):
        raise RewardError(f"every weight is 0 ({out}): give at least one verifier a weight > 0")
    return out


def check_weights_arg(weights: Any) -> Weights:
    """A weights argument as stored: None, {name: number} or [number, ...], values finite."""
    if weights is None:
        return None
    if isinstance(weights, Mapping):
        return {str(k): finite(f"the weight of '{k}'", v, 0, 1e6, error=RewardError)
                for k, v in weights.items()}
    if isinstance(weights, (list, tuple)):
        return [finite("a weight", v, 0, 1e6, error=RewardError) for v in weights]
    raise RewardError(f"weights must be a mapping by name or a list, got {weights!r}")


class RunningStats:
    """Count, mean and sum of squared deviations of every value seen (Chan et al.'s merge), so
    the population variance of a history of any length costs O(1) to keep and to update."""

    def __init__(self, count: int = 0, mean: float = 0.0, m2: float = 0.0) -> None:
        self.count, self.mean, self.m2 = count, mean, m2

    def merged(self, values: torch.Tensor) -> "RunningStats":
        n = len(values)
        if n == 0:
            return RunningStats(self.count, self.mean, self.m2)
        mean_b = values.mean().item()
        m2_b = ((values - mean_b) ** 2).sum().item()
        total = self.count + n
        delta = mean_b - self.mean
        return RunningStats(total, self.mean + delta * n / total,
                            self.m2 + m2_b + delta * delta * self.count * n / total)

    @property
    def variance(self) -> float:
        return self.m2 / self.count if self.count else 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    @classmethod
    def from_state(cls, state: Any, what: str) -> "RunningStats":
        if not isinstance(state, Mapping):
            raise RewardError(f"{what} must be {{count, mean, m2}}, got {state!r}")
        count = int(finite(f"{what}.count", state.get("count"), 0, integer=True, error=RewardError))
        return cls(count, finite(f"{what}.mean", state.get("mean"), error=RewardError),
                   finite(f"{what}.m2", state.get("m2"), 0, error=RewardError))


class Aggregator:
    """Base: binds the reward names of a search, validates rewards, applies the weights."""

    name = "aggregator"
    learns = False
    """True when the aggregator keeps a history, so its reward names cannot change."""

    def __init__(self, weights: Weights = None) -> None:
        self._weights_arg: Weights = check_weights_arg(weights)
        self._weights: dict[str, float] | None = None
        self.verifiers: list[str] | None = None

    def bind(self, names: Sequence[str]) -> None:
        """Fix the reward names of the coming rewards, in the current verifier set's order: a
        positional weight list is read in this order and kept by name from now on. An
        aggregator whose history holds other names refuses, naming both sets."""
        names = list(names)
        if self.learns and self.verifiers is not None and set(names) != set(self.verifiers):
            raise RewardError(f"this {self.name} state learned from the rewards "
                              f"{sorted(self.verifiers)}, this search gives {sorted(names)}: "
                              "reset the state or use another state name for this verifier set")
        self._weights = resolve_weights(self._weights_arg, names)
        if self._weights_arg is not None:
            self._weights_arg = dict(self._weights)
        self.verifiers = names

    def _check(self, rewards: Rewards) -> dict[str, torch.Tensor]:
        r = check_rewards(rewards)
        if self._weights is None or self.verifiers is None or set(r) != set(self.verifiers):
            self.bind(list(r))
        return {k: r[k] for k in self.verifiers or r}

    def weights(self) -> dict[str, float]:
        if self._weights is None:
            raise RewardError("weights are known only once the aggregator is bound to rewards")
        return dict(self._weights)

    @property
    def history_size(self) -> int:
        return 0

    def observe(self, rewards: Rewards) -> None:
        """Add a batch of raw rewards to the history (static aggregators only validate)."""
        self._check(rewards)

    def score(self, rewards: Rewards) -> torch.Tensor:
        """One score per candidate (float64 Tensor[N]), higher is better."""
        r = self._check(rewards)
        w = self.weights()
        return functools.reduce(torch.add, [w[k] * self._transform(k, r[k]) for k in r])

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        return r

    def sigmas(self) -> dict[str, float] | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verifiers": self.verifiers, "weights": self._weights_arg}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise RewardError(f"an aggregator state must be a mapping, got {state!r}")
        if state.get("name") != self.name:
            raise RewardError(f"state of a '{state.get('name')}' aggregator given to '{self.name}'")
        names = state.get("verifiers")
        if names is not None and (not isinstance(names, list) or len(set(names)) != len(names)
                                  or not all(isinstance(n, str) for n in names)):
            raise RewardError(f"verifiers must be a list of distinct names, got {names!r}")
        self.verifiers = names
        self._weights_arg = check_weights_arg(state.get("weights"))
        self._weights = None


class WeightedSum(Aggregator):
    """S_i = sum_k w_k r_ik on raw rewards (the paper tunes w; 0.2 text / 0.8 AV was best)."""

    name = "weighted_sum"


def average_ranks(r: torch.Tensor) -> torch.Tensor:
    """0-based ranks of ``r`` with ties given the mean of the ranks they span (so equal rewards
    always score equally): rank_i = #{j: r_j < r_i} + (#{j: r_j == r_i} - 1) / 2."""
    less = (r[None, :] < r[:, None]).sum(1)
    equal = (r[None, :] == r[:, None]).sum(1)
    return less.to(r.dtype) + (equal - 1).to(r.dtype) / 2


class Rank(Aggregator):
    """S_i = sum_k w_k rank_k(i) / (n - 1) with average ranks for ties: magnitudes dropped; one
    candidate scores 0.5."""

    name = "rank"

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        if len(r) < 2:
            return torch.full_like(r, 0.5)
        return average_ranks(r) / (len(r) - 1)


class MinMax(Aggregator):
    """S_i = sum_k w_k (r_ik - min_k) / (max_k - min_k) over the candidate set; a constant
    reward maps to 0.5."""

    name = "min_max"

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        lo, hi = r.min(), r.max()
        if hi == lo:
            return torch.full_like(r, 0.5)
        return (r - lo) / (hi - lo)


class ZScore(Aggregator):
    """S_i = sum_k w_k (r_ik - mu_k) / sd_k with statistics that are either ``fixed`` (offline,
    e.g. the reference's), over the ``history`` of every reward seen (kept as running
    statistics), or over the ``candidate`` set being scored. Population standard deviation
    throughout. A zero deviation falls back to the raw reward for history statistics (the
    reference's rule) and to 0 over a candidate set (every candidate has the same value, so it
    cannot rank them)."""

    MODES = ("fixed", "history", "candidate")

    def __init__(self, mode: str = "history", weights: Weights = None,
                 stats: Mapping[str, tuple[float, float]] | None = None) -> None:
        super().__init__(weights)
        if mode not in self.MODES:
            raise RewardError(f"z-score mode must be one of {self.MODES}, got '{mode}'")
        self.mode = mode
        self.name = f"z_score_{mode}"
        self.learns = mode == "history"
        self.stats = {k: (finite(f"the mean of '{k}'", mu, error=RewardError),
                          finite(f"the deviation of '{k}'", sd, 0, lo_open=True, error=RewardError))
                      for k, (mu, sd) in (REFERENCE_STATS if stats is None else stats).items()}
        self._history: dict[str, RunningStats] = {}

    def bind(self, names: Sequence[str]) -> None:
        missing = [k for k in names if k not in self.stats]
        if self.mode == "fixed" and missing:
            raise RewardError(f"fixed z-score has no statistics for {missing}; "
                              f"it has {sorted(self.stats)}")
        super().bind(names)

    @property
    def history_size(self) -> int:
        return next(iter(self._history.values()), RunningStats()).count

    def observe(self, rewards: Rewards) -> None:
        r = self._check(rewards)
        if self.mode == "history":
            self._history = {k: self._history.get(k, RunningStats()).merged(v) for k, v in r.items()}

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        if self.mode == "fixed":
            mu, sd = self.stats[name]
        elif self.mode == "candidate":
            mu, sd = r.mean().item(), r.std(correction=0).item()
            if sd == 0:
                return torch.zeros_like(r)
        else:
            h = self._history.get(name)
            if h is None or h.count == 0 or h.variance == 0:
                return r
            mu, sd = h.mean, math.sqrt(h.variance)
        return (r - mu) / sd

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "mode": self.mode,
                "history": {k: h.state_dict() for k, h in self._history.items()},
                "stats": {k: list(v) for k, v in self.stats.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._history = {k: RunningStats.from_state(v, f"history of '{k}'")
                         for k, v in state["history"].items()}
        self.stats = {k: tuple(v) for k, v in state["stats"].items()}


OPTIMIZERS = ("adam", "rmsprop", "sgd")


class _Optimizer:
    """Adam, RMSprop or SGD with torch's defaults (Adam betas 0.9/0.999, eps 1e-8; RMSprop alpha
    0.99, eps 1e-8; no momentum or weight decay), stepping one scalar parameter per verifier,
    keyed by name. ARW has one parameter per verifier, so plain floats beat torch's per-step
    overhead by ~100x; the tests check every update against torch.optim."""

    def __init__(self, kind: str, lr: float, names: Sequence[str],
                 state: Mapping[str, Any] | None = None) -> None:
        self.kind, self.lr = kind, lr
        state = state or {}
        self.t = state.get("step", 0)
        self.m = dict(state.get("exp_avg") or dict.fromkeys(names, 0.0))
        self.v = dict(state.get("exp_avg_sq") or dict.fromkeys(names, 0.0))

    def step(self, params: dict[str, float], grads: dict[str, float]) -> dict[str, float]:
        self.t += 1
        out = {}
        for k, p in params.items():
            g = grads[k]
            if self.kind == "sgd":
                out[k] = p - self.lr * g
            elif self.kind == "rmsprop":
                self.v[k] = 0.99 * self.v[k] + 0.01 * g * g
                out[k] = p - self.lr * g / (math.sqrt(self.v[k]) + 1e-8)
            else:
                self.m[k] = 0.9 * self.m[k] + 0.1 * g
                self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
                denom = math.sqrt(self.v[k]) / math.sqrt(1 - 0.999 ** self.t) + 1e-8
                out[k] = p - self.lr / (1 - 0.9 ** self.t) * self.m[k] / denom
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.t, "exp_avg": dict(self.m), "exp_avg_sq": dict(self.v)}

    @staticmethod
    def check_state(state: Any, names: Sequence[str]) -> dict[str, Any]:
        if not isinstance(state, Mapping):
            raise RewardError(f"optimizer_state must be a mapping, got {state!r}")
        step = finite("optimizer_state.step", state.get("step"), 0, integer=True, error=RewardError)
        out: dict[str, Any] = {"step": step}
        for key, lo in (("exp_avg", None), ("exp_avg_sq", 0)):
            values = state.get(key)
            if not isinstance(values, Mapping) or set(values) != set(names):
                raise RewardError(f"optimizer_state.{key} must give a number for each of "
                                  f"{list(names)}, got {values!r}")
            out[key] = {k: finite(f"optimizer_state.{key}['{k}']", values[k], lo, error=RewardError)
                        for k in names}
        return out


def _stats_of(recent: Mapping[str, torch.Tensor]) -> dict[str, RunningStats]:
    return {k: RunningStats().merged(h) for k, h in recent.items()}


def check_arw_settings(lr: Any, iters: Any, optimizer: Any, window: Any) -> None:
    """Raise RewardError unless the ARW settings are usable (finite, in range)."""
    if optimizer not in OPTIMIZERS:
        raise RewardError(f"ARW optimizer must be one of {OPTIMIZERS}, got '{optimizer}'")
    finite("ARW lr", lr, 0, 1, lo_open=True, error=RewardError)
    finite("ARW iterations", iters, 0, 10_000, integer=True, error=RewardError)
    if window is not None:
        finite("ARW window (None keeps running statistics of everything)", window, 2, MAX_WINDOW,
               integer=True, error=RewardError)


class ARW(Aggregator):
    """Adaptive Reward Weighting: one learned scale per verifier, fitted online to the history
    of raw rewards, so verifiers on different scales count as much as their weights say without
    any tuning or offline statistics.

    s_k is a log-variance (sigma_k = exp(0.5 s_k), s_k = 0 at start). After each batch is added
    to the history, ``iters`` optimizer steps minimise
    sum_k mean_i [0.5 exp(-s_k) ((r_ik - mean_k)^2 + 1e-6) + 0.5 s_k], whose optimum is
    sigma_k^2 = population variance of verifier k's history. The optimizer state persists
    across fits. Score: S_i = sum_k w_k r_ik / (sigma_k + 1e-6).

    The loss depends on the history only through each verifier's variance v_k, so a fit steps
    with the exact gradient 0.5 - 0.5 exp(-s_k) (v_k + 1e-6): the same updates as
    back-propagating the reference loss. Without a window (the reference default, keep all) the
    history is kept as exact running statistics (count, mean, squared deviations), so the cost
    of an update does not grow with the rewards seen; with ``history_size`` = W the newest W
    rewards per verifier are kept.
    """

    name = "arw"
    learns = True

    def __init__(self, weights: Weights = None, lr: float = 0.05, iters: int = 50,
                 optimizer: str = "adam", history_size: int | None = None) -> None:
        super().__init__(weights)
        check_arw_settings(lr, iters, optimizer, history_size)
        self.lr, self.iters, self.optimizer_name, self.window = lr, int(iters), optimizer, history_size
        self._stats: dict[str, RunningStats] = {}
        self._recent: dict[str, torch.Tensor] = {}
        self.log_var: dict[str, float] | None = None
        self._optimizer: _Optimizer | None = None

    @property
    def history_size(self) -> int:
        if self.window is not None:
            return len(next(iter(self._recent.values()), ()))
        return next(iter(self._stats.values()), RunningStats()).count

    def history(self) -> dict[str, torch.Tensor]:
        """The rewards kept per verifier (with a window; without one only statistics are kept)."""
        return dict(self._recent)

    def observe(self, rewards: Rewards) -> None:
        """Add the batch and fit; on any error the state is as it was before the call."""
        r = self._check(rewards)
        optimizer = _Optimizer(self.optimizer_name, self.lr, list(r),
                               self._optimizer.state_dict() if self._optimizer else None)
        log_var = self.log_var or dict.fromkeys(r, 0.0)
        if self.window is None:
            stats = {k: self._stats.get(k, RunningStats()).merged(v) for k, v in r.items()}
            recent = self._recent
        else:
            recent = {k: torch.cat([self._recent.get(k, torch.empty(0, dtype=torch.float64)),
                                    v])[-self.window:] for k, v in r.items()}
            stats = _stats_of(recent)
        log_var = self._fit(stats, log_var, optimizer)
        self._stats, self._recent, self.log_var, self._optimizer = stats, recent, log_var, optimizer

    def _fit(self, stats: dict[str, RunningStats], log_var: dict[str, float],
             optimizer: _Optimizer) -> dict[str, float]:
        """``iters`` optimizer steps on the history's variances (nothing with <= 1 value)."""
        if next(iter(stats.values())).count <= 1:
            return log_var
        target = {k: s.variance + 1e-6 for k, s in stats.items()}
        optimizer.lr = self.lr
        s = dict(log_var)
        for _ in range(self.iters):
            s = optimizer.step(s, {k: 0.5 - 0.5 * math.exp(-max(v, -700.0)) * target[k]
                                   for k, v in s.items()})
        diverged = {k: v for k, v in s.items() if not math.isfinite(v) or abs(v) > LOG_VAR_LIMIT}
        if diverged:
            raise RewardError(f"the ARW fit diverged (log-variances {diverged}); lower lr "
                              f"(now {self.lr:g})")
        return s

    def fit(self) -> None:
        """Run ``iters`` optimizer steps on the current history (nothing with <= 1 value)."""
        if self.log_var is not None:
            stats = self._stats if self.window is None else _stats_of(self._recent)
            assert self._optimizer is not None  # made with the log-variances
            self.log_var = self._fit(stats, self.log_var, self._optimizer)

    def sigmas(self) -> dict[str, float] | None:
        if self.log_var is None:
            return None
        return {k: math.exp(0.5 * s) for k, s in self.log_var.items()}

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        s = 0.0 if self.log_var is None else self.log_var[name]
        return r / (math.exp(0.5 * s) + 1e-6)  # before any reward: the initial sigma = 1

    def configure(self, weights: Weights = None, lr: float | None = None,
                  iters: int | None = None) -> None:
        """Change the settings that need no new optimizer (a shared state keeps its learning);
        the optimizer and the window are fixed when the state is created."""
        lr = self.lr if lr is None else lr
        iters = self.iters if iters is None else iters
        check_arw_settings(lr, iters, self.optimizer_name, self.window)
        self._weights_arg, self._weights = check_weights_arg(weights), None
        self.lr, self.iters = lr, int(iters)

    def state_dict(self) -> dict[str, Any]:
        out = {**super().state_dict(), "lr": self.lr, "iters": self.iters,
               "optimizer": self.optimizer_name, "history_size": self.window,
               "log_var": self.log_var,
               "optimizer_state": self._optimizer.state_dict() if self._optimizer else None}
        if self.window is None:
            out["stats"] = {k: s.state_dict() for k, s in self._stats.items()}
        else:
            out["recent"] = {k: h.tolist() for k, h in self._recent.items()}
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load a saved state, checking every value (types, finiteness, ranges, one entry per
        verifier); a bad state raises RewardError and leaves this ARW as it was."""
        fresh = ARW(optimizer=self.optimizer_name)
        Aggregator.load_state_dict(fresh, state)
        if state.get("optimizer") != self.optimizer_name:
            raise RewardError(f"the saved ARW state uses optimizer '{state.get('optimizer')}', this "
                              f"one '{self.optimizer_name}'; reset it to change the optimizer")
        check_arw_settings(state.get("lr"), state.get("iters"), self.optimizer_name,
                           state.get("history_size"))
        fresh.lr, fresh.iters, fresh.window = state["lr"], int(state["iters"]), state["history_size"]
        names = fresh.verifiers or []

        def per_name(key: str) -> dict[str, Any]:
            value = state.get(key)
            if not isinstance(value, Mapping) or set(value) != set(names):
                raise RewardError(f"{key} must hold one entry for each of {names}, got "
                                  f"{sorted(value) if isinstance(value, Mapping) else value!r}")
            return dict(value)

        if fresh.window is None:
            fresh._stats = {k: RunningStats.from_state(v, f"stats of '{k}'")
                            for k, v in per_name("stats").items()}
        else:
            recent = {}
            for k, v in per_name("recent").items():
                if not isinstance(v, list) or len(v) > fresh.window:
                    raise RewardError(f"recent rewards of '{k}' must be a list of at most "
                                      f"{fresh.window} numbers")
                recent[k] = torch.tensor([finite(f"a reward of '{k}'", x, error=RewardError)
                                          for x in v], dtype=torch.float64)
            fresh._recent = recent
        if state.get("log_var") is not None:
            fresh.log_var = {k: finite(f"log_var['{k}']", v, -LOG_VAR_LIMIT, LOG_VAR_LIMIT,
                                       error=RewardError) for k, v in per_name("log_var").items()}
            fresh._optimizer = _Optimizer(self.optimizer_name, fresh.lr, names,
                                          _Optimizer.check_state(state.get("optimizer_state"), names))
        elif state.get("optimizer_state") is not None:
            raise RewardError("an optimizer state without log-variances")
        self.__dict__.update(fresh.__dict__)


AGGREGATORS = ("weighted_sum", "rank", "min_max", "z_score_fixed", "z_score_history",
               "z_score_candidate", "arw")


def make_aggregator(name: str, weights: Weights = None,
                    stats: Mapping[str, tuple[float, float]] | None = None,
                    **arw_options: Any) -> Aggregator:
    """Build an aggregator by the name its reports carry (one of ``AGGREGATORS``); ``stats``
    serve the fixed z-score, ``arw_options`` ARW."""
    if name == "weighted_sum":
        return WeightedSum(weights)
    if name == "rank":
        return Rank(weights)
    if name == "min_max":
        return MinMax(weights)
    if name.startswith("z_score_"):
        return ZScore(name.removeprefix("z_score_"), weights, stats)
    if name == "arw":
        return ARW(weights, **arw_options)
    raise RewardError(f"unknown aggregator '{name}'; choose one of {AGGREGATORS}")
