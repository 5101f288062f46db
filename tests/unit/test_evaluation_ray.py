"""The Ray backend on a small ToyAV evaluation with 2 local workers, against the sequential run:
per-search aggregators give the same rows (all but wall_s) and the same gallery clips; a shared
ARW arm's state ends having seen every candidate of the arm; a resumed run records each key
once. Without Ray the same call runs sequentially."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from comfyui_avits.evaluation import config as config_mod
from comfyui_avits.evaluation.prompts import load_prompts
from comfyui_avits.evaluation.ray_backend import check_backend, run_on_ray
from comfyui_avits.evaluation.results import Results
from comfyui_avits.evaluation.runner import InProcess, run, tasks

CONFIG = """
name = "ray_small"
seeds = [0, 1]
aggregators = ["weighted_sum", "arw_shared"]
gallery = 1
[prompts]
set = "toyav"
count = 3
[generator]
kind = "toyav"
steps = 4
[selection]
verifiers = ["toy_text_match", "av_align"]
[metrics]
verifiers = ["toy_text_match"]
[[methods]]
kind = "naive"
[[methods]]
kind = "best_of_n"
n = 2
[[methods]]
kind = "evosearch"
evolution_steps = [0]
population_sizes = [2, 2]
elites = 1
"""


def make_config(tmp: Path, name: str) -> config_mod.EvalConfig:
    path = tmp / "eval.toml"
    path.write_text(CONFIG)
    return dataclasses.replace(config_mod.load(path), output=tmp / name)


def lines(results: Results) -> list[dict]:
    return [json.loads(x) for x in results.path.read_text().splitlines()[1:]]


def without_wall(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "wall_s"}


def decoded(path: Path) -> tuple[bytes, bytes]:
    """An mp4's decoded frames and audio samples, as bytes."""
    import av
    import numpy as np
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], -1)
    return frames.tobytes(), audio.tobytes()


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seq")
    config = make_config(tmp, "seq")
    prompts = load_prompts(config.prompts)
    results = Results(config.output / "results.jsonl", "fp")
    run(config, prompts, results, InProcess(config))  # one thread (conftest), as in a Ray worker
    return config, prompts, results


def test_ray_matches_sequential_and_shares_arw(sequential, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seq_config, prompts, seq = sequential
    config = make_config(tmp_path, "ray")
    results = Results(config.output / "results.jsonl", "fp")
    all_tasks = tasks(config, prompts)
    # resume: the first naive rows and the first two of a shared arm are already recorded
    shared_arm = next(t.arm for t in all_tasks if t.aggregator == "arw_shared")
    done = [t.key for t in all_tasks[:3]] + [t.key for t in all_tasks if t.arm == shared_arm][:2]
    for key in done:
        results.add(seq.rows[key])
    seen = []
    run_on_ray(config, prompts, results, workers=2, address=None, progress=seen.append)
    assert sum(seen) == len(all_tasks) - len(done)

    keys = [r["key"] for r in lines(results)]
    assert sorted(keys) == sorted(t.key for t in all_tasks)  # each key once, none missing
    got = {r["key"]: r for r in lines(results)}
    per_search = [t for t in all_tasks if t.aggregator != "arw_shared"]
    assert per_search and any(t.method.kind == "evosearch" for t in per_search)
    for t in per_search:
        assert without_wall(got[t.key]) == without_wall(seq.rows[t.key]), t.key
    clips = [r["clips"]["chosen"] for k, r in got.items() if r["clips"]["chosen"] and k not in done]
    assert clips
    for clip in clips:  # the same pictures and sound; the H.264 bytes may differ between two
        # processes for the same frames (seen here: identical decoded frames, 6 bytes apart)
        assert decoded(config.output / clip) == decoded(seq_config.output / clip), clip

    shared = {t.arm for t in all_tasks if t.aggregator == "arw_shared"}
    assert len(shared) == 2
    for arm in shared:
        rows = [r for r in got.values() if r["arm"] == arm]
        assert len(rows) == len(prompts) * len(config.seeds)
        assert max(r["history_size"] for r in rows) == sum(r["candidates"] for r in rows), arm
        final = max(rows, key=lambda r: r["history_size"])
        assert final["aggregator_state"]["stats"]["av_align"]["count"] == final["history_size"]
        for r in rows:  # the search itself does not depend on the state's order
            assert (r["nfe"], r["candidates"]) == (seq.rows[r["key"]]["nfe"], seq.rows[r["key"]]["candidates"])


def test_without_ray_runs_sequentially(sequential, tmp_path, monkeypatch, capsys):
    _, prompts, seq = sequential
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    config = make_config(tmp_path, "noray")
    results = Results(config.output / "results.jsonl", "fp")
    keys = list(seq.rows)
    for key in keys[:-3]:  # resumes the shared arm last in order from its recorded state
        results.add(seq.rows[key])
    run_on_ray(config, prompts, results, workers=2, address=None)
    assert "ray is not installed" in capsys.readouterr().err
    assert seq.rows[keys[-1]]["aggregator"] == "arw_shared"
    assert [r["key"] for r in lines(results)] == list(seq.rows)
    for row in lines(results):
        assert without_wall(row) == without_wall(seq.rows[row["key"]]), row["key"]


def test_comfyui_configs_are_refused(tmp_path):
    raw = {"generator": {"kind": "comfyui"}, "comfyui": {"servers": ["http://127.0.0.1:1"]},
           "prompts": {"set": "toyav"}, "selection": {},
           "methods": [{"kind": "workflow", "label": "naive", "workflow": "w.json",
                        "search_node": "6", "prompt_inputs": ["1.prompt"]}]}
    config = config_mod.parse(raw, tmp_path / "c.toml")
    with pytest.raises(config_mod.ConfigError, match="comfyui.servers"):
        check_backend(config)
