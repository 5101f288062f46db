"""VBench's quality dimensions as evaluation metrics: ``[metrics] quality`` computed on each
arm's chosen clip over the tiny twins, shown as the Quality group of the tables (part of
Overall); the keys checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from comfyui_avits.evaluation import cli
from comfyui_avits.evaluation import config as C
from comfyui_avits.evaluation.metrics import QUALITY
from comfyui_avits.evaluation.runner import InProcess, make_aggregator, selection_verifiers
from comfyui_avits.search.strategies import naive
from comfyui_avits.verifiers import vbench

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_vbench  # noqa: E402

NAMES = ["subject_consistency", "background_consistency", "aesthetic_quality"]
CONFIG = """
name = "quality"
output = "out"
seeds = [0]
aggregators = ["arw_shared"]
bootstrap = 100
gallery = 0

[prompts]
set = "toyav"
count = 2

[generator]
kind = "toyav"
steps = 6

[selection]
verifiers = ["toy_text_match", "av_align"]

[metrics]
oracle = true
quality = {names}
{models}

[[methods]]
kind = "naive"

[[methods]]
kind = "best_of_n"
n = [2]
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tiny_vbench.write(tmp_path_factory.mktemp("models"))


def write(tmp_path: Path, names=NAMES, models: str = "") -> Path:
    path = tmp_path / "quality.toml"
    path.write_text(CONFIG.format(names=json.dumps(names), models=models))
    return path


def heading(tables: str, title: str) -> list[str]:
    """The column names of the table under ``title`` in tables.md."""
    section = tables.split(title)[1].split("\n## ")[0]
    head = next(line for line in section.splitlines() if line.startswith("| method"))
    return [cell.strip() for cell in head.strip("|").split("|")]


def test_evaluate_computes_quality_on_the_chosen_clips_and_tabulates_it(tmp_path, models, capsys):
    config_path = write(tmp_path, models=f'quality_models = "{models}"')
    assert cli.main([str(config_path), "--no-progress"]) == 0
    out = tmp_path / "out"
    assert f"tables: {out / 'tables.md'}" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()[1:]]
    assert len(rows) == 4 and all(set(NAMES) <= set(r["metrics"]) for r in rows)
    tables = (out / "tables.md").read_text()
    means, improvement = (heading(tables, title) for title in ("## Metric means",
                                                               "## Improvement over naive (%)"))
    assert set(NAMES) <= set(means)
    assert improvement[2:6] == ["Text", "AV", "Quality", "Overall"] and set(NAMES) <= set(improvement)

    # the metric is the library's score of the arm's chosen clip: the naive one, re-made here
    config = C.load(config_path)
    row = next(r for r in rows if r["method"] == "naive" and r["prompt_index"] == 0)
    gen = InProcess(config).generator(row["prompt"])
    chosen = naive(gen, selection_verifiers(config), make_aggregator(config, "-"), seed=row["draw"])
    for verifier in vbench.load(NAMES, models):
        assert row["metrics"][verifier.name] == pytest.approx(
            float(verifier(chosen.best_av, [row["prompt"]])[0]), abs=1e-9)


def test_the_quality_keys_are_checked(tmp_path, models):
    with pytest.raises(C.ConfigError, match="distinct VBench dimensions.*'sharpness'"):
        C.load(write(tmp_path, names=["sharpness"], models=f'quality_models = "{models}"'))
    with pytest.raises(C.ConfigError, match="metrics.quality needs metrics.quality_models"):
        C.load(write(tmp_path))
    with pytest.raises(C.ConfigError, match="metrics.quality_models: no folder"):
        C.load(write(tmp_path, models='quality_models = "absent"'))
    with pytest.raises(C.ConfigError, match="quality_models is set but metrics.quality names no"):
        C.load(write(tmp_path, names=[], models=f'quality_models = "{models}"'))
    empty = tmp_path / "empty"
    empty.mkdir()
    config = C.load(write(tmp_path, names=["aesthetic_quality"], models=f'quality_models = "{empty}"'))
    with pytest.raises(C.ConfigError, match="'sa_0_4_vit_l_14_linear.pth' is not in .*LAION-AI"):
        InProcess(config)
    raw = C.tomllib.loads(CONFIG.format(names=json.dumps(NAMES), models=f'quality_models = "{models}"'))
    raw["generator"] = {"kind": "comfyui"}
    raw["comfyui"] = {"servers": ["http://127.0.0.1:1"]}
    raw["methods"] = [{"kind": "workflow", "label": "naive", "workflow": "w.json", "search_node": "1",
                       "prompt_inputs": ["1.prompt"]}]
    with pytest.raises(C.ConfigError, match="AVITS VBench Quality -> AVITS Score AV"):
        C.parse(raw, tmp_path / "c.toml")


def test_every_vbench_dimension_is_a_quality_metric():
    assert set(vbench.DIMENSIONS) <= set(QUALITY)
