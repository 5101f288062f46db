"""A search method of the tests' own, added the way any plugin adds one: named in
AVITS_SEARCH_METHODS, registered by the pack's search.methods in every process that loads it.
"First-of-N" samples N candidates as Best-of-N does and reports itself under its own name."""

from __future__ import annotations

from dataclasses import dataclass


def register_search_methods(methods) -> None:
    @dataclass(frozen=True)
    class FirstOfNConfig:
        n: int = 3
        seed: int = 0

    def first_of_n(generator, verifiers, aggregator, config, **options):
        return methods.best_of_n(generator, verifiers, aggregator,
                                 methods.BestOfNConfig(config.n, config.seed), method="first_of_n",
                                 **options)

    methods.register(methods.SearchMethod("first_of_n", "First-of-N (a test plugin)",
                                          FirstOfNConfig, first_of_n))
