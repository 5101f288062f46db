"""Turning several verifiers' rewards into one score per candidate.

Every aggregator has the same small interface: ``observe(rewards)`` adds a batch of raw rewards
to its history (and fits, if it learns), ``score(rewards)`` maps raw rewards of a candidate set
to one score each (higher is better), and ``state_dict()`` / ``load_state_dict()`` hold all of
its state as plain JSON-able Python. Rewards are ``{verifier name: Tensor[N]}``. Formulas and
defaults follow the reference implementation (see the project's algorithms reference, sections
2-3).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

Rewards = Mapping[str, torch.Tensor]
Weights = Mapping[str, float] | Sequence[float] | None

# The reference's offline statistics for the fixed z-score (mu, sd), keyed by verifier name.
REFERENCE_STATS: dict[str, tuple[float, float]] = {
    "videoreward_ta": (-0.4779, 0.8785),
    "javisscore": (0.1613, 0.1033),
}


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
    """Preference weights per verifier: a mapping by name, a sequence in verifier order, or
    None for equal weights 1/K (0.5/0.5 for two verifiers, the reference default)."""
    if weights is None:
        return {n: 1.0 / len(names) for n in names}
    if isinstance(weights, Mapping):
        missing = [n for n in names if n not in weights]
        if missing:
            raise RewardError(f"no weight given for verifier(s) {missing}; weights name {list(weights)}")
        out = {n: float(weights[n]) for n in names}
    else:
        weights = list(weights)
        if len(weights) != len(names):
            raise RewardError(f"{len(weights)} weights for {len(names)} verifiers {list(names)}")
        out = {n: float(w) for n, w in zip(names, weights)}
    if any(not math.isfinite(w) or w < 0 for w in out.values()):
        raise RewardError(f"preference weights must be finite and >= 0, got {out}")
    return out


class Aggregator:
    """Base: keeps the verifier names fixed after the first batch and validates rewards."""

    name = "aggregator"

    def __init__(self, weights: Weights = None) -> None:
        self._weights_arg = weights
        self.verifiers: list[str] | None = None

    def _check(self, rewards: Rewards) -> dict[str, torch.Tensor]:
        r = check_rewards(rewards)
        if self.verifiers is None:
            self.verifiers = list(r)
        elif set(r) != set(self.verifiers):
            raise RewardError(f"this {self.name} aggregator was set up for verifiers "
                              f"{self.verifiers}, got {list(r)}: use the same verifier set, or "
                              "reset the state (or use a new one) for a different set")
        return {k: r[k] for k in self.verifiers}

    def weights(self) -> dict[str, float]:
        if self.verifiers is None:
            raise RewardError("weights are known only after the first rewards")
        return resolve_weights(self._weights_arg, self.verifiers)

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
        return sum(w[k] * self._transform(k, r[k]) for k in r)

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        return r

    def sigmas(self) -> dict[str, float] | None:
        return None

    def state_dict(self) -> dict:
        return {"name": self.name, "verifiers": self.verifiers}

    def load_state_dict(self, state: Mapping) -> None:
        if state.get("name") != self.name:
            raise RewardError(f"state of a '{state.get('name')}' aggregator given to '{self.name}'")
        self.verifiers = state.get("verifiers")


class WeightedSum(Aggregator):
    """S_i = sum_k w_k r_ik on raw rewards (the paper tunes w; 0.2 text / 0.8 AV was best)."""

    name = "weighted_sum"


class Rank(Aggregator):
    """S_i = sum_k w_k rank_k(i) / (n - 1): magnitudes dropped; one candidate scores 0.5."""

    name = "rank"

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        if len(r) < 2:
            return torch.full_like(r, 0.5)
        ranks = torch.argsort(torch.argsort(r, stable=True), stable=True)
        return ranks.to(r.dtype) / (len(r) - 1)


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
    e.g. the reference's), over the ``history`` of every reward seen, or over the ``candidate``
    set being scored. Population standard deviation throughout. A zero deviation falls back to
    the raw reward for history statistics (the reference's rule) and to 0 over a candidate set
    (every candidate has the same value, so it cannot rank them)."""

    MODES = ("fixed", "history", "candidate")

    def __init__(self, mode: str = "history", weights: Weights = None,
                 stats: Mapping[str, tuple[float, float]] | None = None) -> None:
        super().__init__(weights)
        if mode not in self.MODES:
            raise RewardError(f"z-score mode must be one of {self.MODES}, got '{mode}'")
        self.mode = mode
        self.name = f"z_score_{mode}"
        self.stats = dict(REFERENCE_STATS if stats is None else stats)
        self._history: dict[str, list[float]] = {}

    @property
    def history_size(self) -> int:
        return len(next(iter(self._history.values()), []))

    def observe(self, rewards: Rewards) -> None:
        r = self._check(rewards)
        for k, v in r.items():
            self._history.setdefault(k, []).extend(v.tolist())

    def score(self, rewards: Rewards) -> torch.Tensor:
        if self.mode == "fixed":
            missing = [k for k in rewards if k not in self.stats]
            if missing:
                raise RewardError(f"fixed z-score has no statistics for {missing}; "
                                  f"it has {sorted(self.stats)}")
        return super().score(rewards)

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        if self.mode == "fixed":
            mu, sd = self.stats[name]
        else:
            ref = r if self.mode == "candidate" else torch.tensor(self._history.get(name, []),
                                                                  dtype=torch.float64)
            if len(ref) == 0:
                return r
            mu, sd = ref.mean().item(), ref.std(correction=0).item()
            if sd == 0:
                return torch.zeros_like(r) if self.mode == "candidate" else r
        return (r - mu) / sd

    def state_dict(self) -> dict:
        return {**super().state_dict(), "mode": self.mode, "history": self._history,
                "stats": {k: list(v) for k, v in self.stats.items()}}

    def load_state_dict(self, state: Mapping) -> None:
        super().load_state_dict(state)
        self._history = {k: list(v) for k, v in state["history"].items()}
        self.stats = {k: tuple(v) for k, v in state["stats"].items()}


class _Optimizer:
    """Adam, RMSprop or SGD with torch's defaults (Adam betas 0.9/0.999, eps 1e-8; RMSprop alpha
    0.99, eps 1e-8; no momentum or weight decay), stepping K scalar parameters. ARW has one
    parameter per verifier, so plain floats beat torch's per-step overhead by ~100x; the tests
    check every update against torch.optim."""

    def __init__(self, kind: str, lr: float, k: int, state: Mapping | None = None) -> None:
        self.kind, self.lr = kind, lr
        state = state or {}
        self.t = int(state.get("step", 0))
        self.m = list(state.get("exp_avg", [0.0] * k))
        self.v = list(state.get("exp_avg_sq", [0.0] * k))

    def step(self, params: list[float], grads: list[float]) -> list[float]:
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.kind == "sgd":
                out.append(p - self.lr * g)
            elif self.kind == "rmsprop":
                self.v[i] = 0.99 * self.v[i] + 0.01 * g * g
                out.append(p - self.lr * g / (math.sqrt(self.v[i]) + 1e-8))
            else:
                self.m[i] = 0.9 * self.m[i] + 0.1 * g
                self.v[i] = 0.999 * self.v[i] + 0.001 * g * g
                denom = math.sqrt(self.v[i]) / math.sqrt(1 - 0.999 ** self.t) + 1e-8
                out.append(p - self.lr / (1 - 0.9 ** self.t) * self.m[i] / denom)
        return out

    def state_dict(self) -> dict:
        return {"step": self.t, "exp_avg": self.m, "exp_avg_sq": self.v}


OPTIMIZERS = ("adam", "rmsprop", "sgd")


class ARW(Aggregator):
    """Adaptive Reward Weighting: one learned scale per verifier, fitted online to the history
    of raw rewards, so verifiers on different scales count as much as their weights say without
    any tuning or offline statistics.

    s_k is a log-variance (sigma_k = exp(0.5 s_k), s_k = 0 at start). After each batch is added
    to the history, ``iters`` optimizer steps minimise
    sum_k mean_i [0.5 exp(-s_k) ((r_ik - mean_k)^2 + 1e-6) + 0.5 s_k], whose optimum is
    sigma_k^2 = population variance of verifier k's history. The optimizer state persists
    across fits. Score: S_i = sum_k w_k r_ik / (sigma_k + 1e-6).

    The loss depends on the history only through each verifier's variance v_k, so a fit computes
    the variances once and steps with the exact gradient 0.5 - 0.5 exp(-s_k) (v_k + 1e-6): the
    same updates as back-propagating the reference loss, without a pass over the history per step.
    """

    name = "arw"

    def __init__(self, weights: Weights = None, lr: float = 0.05, iters: int = 50,
                 optimizer: str = "adam", history_size: int | None = None) -> None:
        super().__init__(weights)
        if optimizer not in OPTIMIZERS:
            raise RewardError(f"ARW optimizer must be one of {OPTIMIZERS}, got '{optimizer}'")
        if lr <= 0 or iters < 0:
            raise RewardError(f"ARW needs lr > 0 and iters >= 0, got lr={lr}, iters={iters}")
        if history_size is not None and history_size < 2:
            raise RewardError(f"ARW history window must be None (keep all) or >= 2, got {history_size}")
        self.lr, self.iters, self.optimizer_name, self.window = lr, iters, optimizer, history_size
        self._history: dict[str, torch.Tensor] = {}
        self.log_var: list[float] | None = None
        self._optimizer: _Optimizer | None = None

    @property
    def history_size(self) -> int:
        return len(next(iter(self._history.values()), ()))

    def history(self) -> dict[str, torch.Tensor]:
        return dict(self._history)

    def observe(self, rewards: Rewards) -> None:
        r = self._check(rewards)
        if self.log_var is None:
            self.log_var = [0.0] * len(self.verifiers)
            self._optimizer = _Optimizer(self.optimizer_name, self.lr, len(self.verifiers))
        for k, v in r.items():
            h = torch.cat([self._history.get(k, torch.empty(0, dtype=torch.float64)), v])
            self._history[k] = h if self.window is None else h[-self.window:]
        self.fit()

    def fit(self) -> None:
        """Run ``iters`` optimizer steps on the current history (nothing with <= 1 value)."""
        if self.history_size <= 1:
            return
        target = [h.var(correction=0).item() + 1e-6 for h in self._history.values()]
        self._optimizer.lr = self.lr
        s = self.log_var
        for _ in range(self.iters):
            s = self._optimizer.step(s, [0.5 - 0.5 * math.exp(-si) * vi for si, vi in zip(s, target)])
        self.log_var = s

    def loss(self) -> float:
        """The reference loss on the current history (for inspection and tests)."""
        return sum((0.5 * math.exp(-s) * ((h - h.mean()) ** 2 + 1e-6) + 0.5 * s).mean().item()
                   for s, h in zip(self.log_var, self._history.values()))

    def sigmas(self) -> dict[str, float] | None:
        if self.log_var is None:
            return None
        return {k: math.exp(0.5 * s) for k, s in zip(self.verifiers, self.log_var)}

    def _transform(self, name: str, r: torch.Tensor) -> torch.Tensor:
        s = 0.0 if self.log_var is None else self.log_var[self.verifiers.index(name)]
        return r / (math.exp(0.5 * s) + 1e-6)  # before any reward: the initial sigma = 1

    def configure(self, weights: Weights = None, lr: float | None = None, iters: int | None = None,
                  history_size: int | None = None) -> None:
        """Change the settings that need no new optimizer (a shared state keeps its learning)."""
        self._weights_arg = weights
        self.lr = self.lr if lr is None else lr
        self.iters = self.iters if iters is None else iters
        self.window = history_size
        if self.window is not None:
            self._history = {k: h[-self.window:] for k, h in self._history.items()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "lr": self.lr, "iters": self.iters,
                "optimizer": self.optimizer_name, "history_size": self.window,
                "weights": self._weights_arg if isinstance(self._weights_arg, (Mapping, type(None)))
                else list(self._weights_arg),
                "history": {k: h.tolist() for k, h in self._history.items()},
                "log_var": self.log_var,
                "optimizer_state": self._optimizer.state_dict() if self._optimizer else None}

    def load_state_dict(self, state: Mapping) -> None:
        super().load_state_dict(state)
        if state["optimizer"] != self.optimizer_name:
            raise RewardError(f"the saved ARW state uses optimizer '{state['optimizer']}', this "
                              f"one '{self.optimizer_name}'; reset it to change the optimizer")
        self.lr, self.iters, self.window = state["lr"], state["iters"], state["history_size"]
        self._weights_arg = state.get("weights")
        self._history = {k: torch.tensor(v, dtype=torch.float64)
                         for k, v in state["history"].items()}
        self.log_var, self._optimizer = None, None
        if state["log_var"] is not None:
            if len(state["log_var"]) != len(self.verifiers or ()):
                raise RewardError("ARW state: scales do not match its verifiers")
            self.log_var = [float(s) for s in state["log_var"]]
            self._optimizer = _Optimizer(self.optimizer_name, self.lr, len(self.log_var),
                                         state["optimizer_state"])


AGGREGATORS = ("weighted_sum", "rank", "min_max", "z_score_fixed", "z_score_history",
               "z_score_candidate", "arw")


def make_aggregator(name: str, weights: Weights = None,
                    stats: Mapping[str, tuple[float, float]] | None = None, **arw_options) -> Aggregator:
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
