"""The one registry of search methods: per method its config dataclass (the only copy of its
defaults), its runner, its label, and how a config is read from the values a TOML file or a node's
settings text gives. The nodes, the evaluation config, its in-process runner and its Ray workers
all read it, so a new method is one ``register`` call.

A plugin module adds methods of its own: it defines ``register_search_methods(methods)`` and is
named in the environment variable ``AVITS_SEARCH_METHODS`` (comma-separated module names); every
process that imports this one (a ComfyUI server, the evaluation command, each of its Ray workers)
calls it with this module, so the plugin registers here and builds on what this module exports
(``SearchMethod``, ``register``, the built-in configs and runners) without importing the pack
under a name of its own.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .draft import DraftConfig, draft_then_commit
from .engine import SearchError
from .pruning import ParticleConfig, PrunedBestOfNConfig, particle_search, pruned_best_of_n
from .result import SearchResult
from .strategies import BestOfNConfig, EvoSearchConfig, best_of_n, evosearch

PLUGINS = "AVITS_SEARCH_METHODS"


@dataclass(frozen=True)
class SearchMethod:
    """``run(generator, verifiers, aggregator, config, **options)`` with ``config`` an instance
    of ``config``, a frozen dataclass with a ``seed`` field and defaults for every field."""

    name: str
    title: str
    config: type
    run: Callable[..., SearchResult]
    proxy: bool = False
    """Takes optional proxy verifiers for intermediate scores (``proxy=``)."""
    draft: bool = False
    """Takes a second, cheaper generator that explores for it (``draft=``)."""

    def fields(self) -> list[str]:
        """The settings a user gives (every config field but the seed)."""
        return [f.name for f in dataclasses.fields(self.config) if f.name != "seed"]

    def make(self, settings: Mapping[str, Any], seed: int = 0) -> Any:
        """The config from settings by field name (lists become tuples, nested ones too);
        a name the config does not have is an error that lists those it has."""
        unknown = sorted(set(settings) - set(self.fields()))
        if unknown:
            raise SearchError(f"{self.name} has no setting {', '.join(map(repr, unknown))}; its "
                              f"settings are {', '.join(self.fields())}")
        return self.config(**{k: _tuples(v) for k, v in settings.items()}, seed=seed)

    def label(self, settings: Mapping[str, Any]) -> str:
        """An arm's name: the method and the settings given, e.g. 'evosearch[evolution_steps=0,10]'."""
        shown = "|".join(f"{k}={_text(v)}" for k, v in settings.items())
        return f"{self.name}[{shown}]" if shown else self.name


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _text(value: Any, sep: str = ",") -> str:
    """'0,10' for a list; '6:0.5,10:0.4' for a list of pairs."""
    if isinstance(value, (list, tuple)):
        return sep.join(_text(v, ":") for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


REGISTRY: dict[str, SearchMethod] = {}


def register(method: SearchMethod) -> SearchMethod:
    """Add a method (a name taken is an error: methods never change under a user)."""
    known = REGISTRY.get(method.name)
    if known is not None and (known.title, known.config.__qualname__) != (method.title,
                                                                            method.config.__qualname__):
        raise SearchError(f"a search method named {method.name!r} is already registered")
    if not dataclasses.is_dataclass(method.config) or "seed" not in {
            f.name for f in dataclasses.fields(method.config)}:
        raise SearchError(f"{method.name}: its config must be a dataclass with a seed field")
    REGISTRY[method.name] = method
    return method


def get(name: str) -> SearchMethod:
    if name not in REGISTRY:
        raise SearchError(f"unknown search method {name!r}; the methods are {', '.join(REGISTRY)}")
    return REGISTRY[name]


register(SearchMethod("best_of_n", "Best-of-N", BestOfNConfig, best_of_n))
register(SearchMethod("evosearch", "EvoSearch", EvoSearchConfig, evosearch))
register(SearchMethod("pruned_best_of_n", "Pruned Best-of-N", PrunedBestOfNConfig,
                      pruned_best_of_n, proxy=True))
register(SearchMethod("particles", "Particle search", ParticleConfig, particle_search, proxy=True))
register(SearchMethod("draft_then_commit", "Draft, then commit", DraftConfig, draft_then_commit,
                      proxy=True, draft=True))



def load_plugins() -> list[str]:
    """Let every module named in ``AVITS_SEARCH_METHODS`` register its methods (again: a
    method registered twice alike is no error); returns the module names."""
    names = [m.strip() for m in os.environ.get(PLUGINS, "").split(",") if m.strip()]
    for name in names:
        module = importlib.import_module(name)
        hook = getattr(module, "register_search_methods", None)
        if hook is None:
            raise SearchError(f"{name} (named in {PLUGINS}) has no register_search_methods(methods)")
        hook(sys.modules[__name__])
    return names


load_plugins()
