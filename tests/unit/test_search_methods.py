"""The one registry of search methods: the built-ins' defaults are their configs' own, and a
method added by a plugin in one place is reachable from a TOML config, the in-process runner and
the Ray backend (and from the AVITS_Search node: tests/integration/test_search_nodes.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from comfyui_avits.evaluation import config as C
from comfyui_avits.search import methods
from comfyui_avits.search.engine import SearchError

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


@pytest.fixture
def plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", f"{PLUGINS}:{':'.join(sys.path)}")
    monkeypatch.setenv(methods.PLUGINS, "search_plugin")
    monkeypatch.setattr(methods, "REGISTRY", dict(methods.REGISTRY))
    assert methods.load_plugins() == ["search_plugin"]
    return methods.get("first_of_n")


def test_the_built_in_methods_are_registered_with_their_configs_defaults():
    assert list(methods.REGISTRY)[:4] == ["best_of_n", "evosearch", "pruned_best_of_n", "particles"]
    evo = methods.get("evosearch")
    assert evo.make({}, seed=3) == evo.config(seed=3)
    assert evo.make({"evolution_steps": [0, 5], "population_sizes": [3, 3, 3]}).evolution_steps == (0, 5)
    with pytest.raises(SearchError, match="no setting 'elite'.*elites"):
        evo.make({"elite": 2})
    assert methods.get("pruned_best_of_n").label({"n": 10, "schedule": [[6, 0.5], [10, 0.4]]}) == \
        "pruned_best_of_n[n=10|schedule=6:0.5,10:0.4]"
    with pytest.raises(SearchError, match="unknown search method 'nope'"):
        methods.get("nope")


CONFIG = """
name = "plugin"
output = "out"
seeds = [0, 1]
gallery = 0
bootstrap = 50
aggregators = ["weighted_sum"]  # per prompt: the same on Ray in any completion order
[prompts]
set = "toyav"
count = 2
[generator]
kind = "toyav"
steps = 6
[selection]
verifiers = ["toy_text_match", "av_align"]
[[methods]]
kind = "naive"
[[methods]]
kind = "first_of_n"
n = 2
"""


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()[1:]]


def test_a_plugin_method_runs_from_a_toml_config_in_process_and_on_ray(plugin, tmp_path):
    from comfyui_avits.evaluation import cli

    assert plugin.name in C.method_kinds()
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    assert [m.label for m in C.load(config).methods] == ["naive", "first_of_n[n=2]"]
    assert cli.main([str(config), "--no-progress"]) == 0
    seq = [r for r in rows(tmp_path / "out" / "results.jsonl") if r["method_kind"] == "first_of_n"]
    assert len(seq) == 2 * 2 and all(r["candidates"] == 2 and r["nfe"] == 2 * 6 for r in seq)
    pytest.importorskip("ray")
    ray_dir = tmp_path / "ray"
    ray_dir.mkdir()
    (ray_dir / "c.toml").write_text(CONFIG)
    assert cli.main([str(ray_dir / "c.toml"), "--no-progress", "--workers", "2"]) == 0
    on_ray = [r for r in rows(ray_dir / "out" / "results.jsonl") if r["method_kind"] == "first_of_n"]

    def same(r):
        return {k: v for k, v in r.items() if k != "wall_s"}
    assert sorted(map(json.dumps, map(same, on_ray))) == sorted(map(json.dumps, map(same, seq)))


def test_a_plugin_name_that_is_taken_or_a_module_without_the_hook_is_refused(plugin, monkeypatch):
    other = methods.SearchMethod("first_of_n", "another", methods.BestOfNConfig, methods.best_of_n)
    with pytest.raises(SearchError, match="already registered"):
        methods.register(other)
    monkeypatch.setenv(methods.PLUGINS, "json")
    with pytest.raises(SearchError, match="json .*has no register_search_methods"):
        methods.load_plugins()
