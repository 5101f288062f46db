"""Every candidate carries what makes it again: its recipe (the seed of its initial noise, then
each mutation or new rollout with its step and seed) replays to its finished state bit for bit,
for EvoSearch's late generations and for particle copies, with deterministic and stochastic
samplers; the live preview shows the leader so far, not the newest candidate."""

from __future__ import annotations

import pytest
import torch

from comfyui_avits.search.aggregation import WeightedSum
from comfyui_avits.search.engine import SearchLimits
from comfyui_avits.search.pruning import ParticleConfig, particle_search
from comfyui_avits.search.recipe import Change, Recipe, RecipeError, replay
from comfyui_avits.search.strategies import BestOfNConfig, EvoSearchConfig, best_of_n, evosearch

from fakes import CountingGenerator, Fixed, Mean, PredictingGenerator


def verifiers():
    return [Mean("v", "video"), Mean("a", "audio")]


def replays_exactly(result, make) -> None:
    for c in result.candidates:
        recipe = Recipe.parse(c.to_json()["recipe"])
        assert torch.equal(replay(make(), recipe), c.state), c.to_json()["recipe"]


@pytest.mark.parametrize("deterministic", [True, False])
def test_every_evosearch_candidate_replays_from_its_recipe(deterministic):
    make = lambda: CountingGenerator(deterministic=deterministic)  # noqa: E731
    config = EvoSearchConfig(evolution_steps=(0, 10, 20), population_sizes=(5, 5, 5, 5), elites=1, seed=3)
    result = evosearch(make(), verifiers(), WeightedSum(), config)
    replays_exactly(result, make)
    depth = max(len(c.recipe.changes) for c in result.candidates)
    assert depth >= 2  # some candidate left its line twice: the replay is not a seed alone
    fresh = [c for c in result.candidates if c.generation == 0]
    assert all(c.to_json()["recipe"] == str(c.seed) for c in fresh)


def test_particle_copies_replay_from_their_recipes():
    make = lambda: PredictingGenerator(deterministic=False)  # noqa: E731
    result = particle_search(make(), verifiers(), WeightedSum(),
                             ParticleConfig(n=6, resample_steps=(10, 20), temperature=0.01, seed=1))
    replays_exactly(result, make)
    assert any(c.recipe and c.recipe.changes for c in result.candidates)  # copies were made


def test_a_recipe_reads_back_what_it_writes_and_refuses_what_it_cannot_read():
    recipe = Recipe(12, (Change(10, 17, 0.5, "variance_preserving"), Change(20, 25)))
    assert recipe.text() == "12; 10 mutate 17 0.5 variance_preserving; 20 rollout 25"
    assert Recipe.parse(recipe.text()) == recipe and Recipe.parse(" 7 ") == Recipe(7)
    for bad in ("", "x", "1; 10 mutate 3 0.5 sideways", "1; 20 rollout 2; 10 rollout 3", "1; 10 jump 2"):
        with pytest.raises(RecipeError):
            Recipe.parse(bad)
    with pytest.raises(RecipeError, match="30 steps"):
        replay(CountingGenerator(), Recipe(1, (Change(30, 2),)))


def test_the_live_preview_shows_the_leader_so_far_and_ends_on_the_winner():
    """Candidate 1 leads from its chunk on; the newer candidates 2 and 3 score lower, so every
    preview after candidate 1 is candidate 1's clip, and the last is the winner's."""
    gen = CountingGenerator()
    previews = []
    result = best_of_n(gen, [Fixed("r", [0.1, 0.9, 0.3, 0.2])], WeightedSum(), BestOfNConfig(n=4),
                       limits=SearchLimits(chunk_size=1),
                       on_progress=lambda d, t, p: previews.append(p) if p is not None else None)
    clip_of = {c.id: gen.decode([c.state]).video for c in result.candidates}
    shown = [next(i for i, v in clip_of.items() if torch.equal(v, p.video)) for p in previews]
    assert shown == [0, 1, 1, 1, 1] and result.best.id == 1
    assert torch.equal(previews[-1].video, result.best_av.video)
