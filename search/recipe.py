"""How to make one candidate again, from its seeds alone: the seed of its initial noise, then
each change on its way to the end (a mutation, or a new rollout with new noise, at a step, with
the seed of that change's fresh noise). A candidate's recipe is its parent's up to the step
where it branched off, plus that change, so an EvoSearch winner of a late generation is as
reproducible as a Best-of-N one. ``replay`` follows a recipe with the same generator."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.generator import MUTATIONS, Generator, State


class RecipeError(ValueError):
    """A recipe text that cannot be read, or one that does not fit the generator."""


@dataclass(frozen=True)
class Change:
    step: int
    seed: int
    beta: float | None = None
    """The mutation rate; None: no mutation, a new rollout from ``step`` with new noise."""
    mode: str | None = None

    def text(self) -> str:
        if self.beta is None:
            return f"{self.step} rollout {self.seed}"
        return f"{self.step} mutate {self.seed} {self.beta:g} {self.mode}"


@dataclass(frozen=True)
class Recipe:
    seed: int
    changes: tuple[Change, ...] = ()

    def then(self, change: Change) -> Recipe:
        return Recipe(self.seed, (*self.changes, change))

    def text(self) -> str:
        """'12' for a fresh candidate; '12; 10 mutate 17 0.5 variance_preserving; 20 rollout
        25' for one that left its parent's line at step 10 and was rolled out anew at 20."""
        return "; ".join([str(self.seed), *(c.text() for c in self.changes)])

    @classmethod
    def parse(cls, text: str) -> Recipe:
        parts = [p.strip() for p in text.strip().split(";")]
        try:
            seed = int(parts[0])
            changes = tuple(_change(p.split()) for p in parts[1:])
        except (ValueError, IndexError):
            raise RecipeError(f"cannot read the recipe {text!r}: write it as the report gives it, "
                              "e.g. '12' or '12; 10 mutate 17 0.5 variance_preserving'") from None
        steps = [c.step for c in changes]
        if steps != sorted(steps) or any(s < 0 for s in steps):
            raise RecipeError(f"the steps of recipe {text!r} must be >= 0 and in order")
        return cls(seed, changes)


def _change(words: list[str]) -> Change:
    if len(words) == 3 and words[1] == "rollout":
        return Change(int(words[0]), int(words[2]))
    if len(words) == 5 and words[1] == "mutate" and words[4] in MUTATIONS:
        return Change(int(words[0]), int(words[2]), float(words[3]), words[4])
    raise ValueError(words)


def replay(generator: Generator, recipe: Recipe) -> State:
    """The finished state the recipe describes: the initial noise of its seed, denoised up to
    each change with the seed in force there, changed, and denoised to the end."""
    if recipe.changes and recipe.changes[-1].step >= generator.steps:
        raise RecipeError(f"recipe '{recipe.text()}' changes at step {recipe.changes[-1].step}, "
                          f"but the generator has {generator.steps} steps")
    state, at, seed = generator.initial_noise([recipe.seed])[0], 0, recipe.seed
    for change in recipe.changes:
        if change.step > at:
            state = generator.denoise([state], at, change.step, [seed])[0][0]
        if change.beta is not None:
            state = generator.mutate(state, change.step, change.beta, change.seed, str(change.mode))
        at, seed = change.step, change.seed
    return generator.denoise([state], at, generator.steps, [seed])[0][0]
