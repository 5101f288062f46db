"""MMDisCo on the real server: the shipped EvoSearch workflow (API twin) queued through /prompt
on the tiny twins scripts/tiny_models writes, and an interrupt mid-search."""

from __future__ import annotations

import json

import av
import pytest

from comfyctl import REPO
from graphs import report_of, run_interrupted, state_path

pytestmark = pytest.mark.integration

SEARCH, SAVE = "9", "11"


@pytest.fixture(scope="module")
def models(tiny_files):
    return tiny_files


def shipped(state: str, steps: int = 2, **search) -> dict:
    """The shipped workflow with a CPU-sized number of steps and populations."""
    graph = json.loads((REPO / "workflows" / "api" / "mmdisco_evosearch_arw.json").read_text())
    graph["2"]["inputs"]["steps"] = steps
    graph["8"]["inputs"].update(name=state, reset=True)
    graph[SEARCH]["inputs"].update(evolution_steps="0, 1", population_sizes="2, 2, 2", elites=1)
    graph[SEARCH]["inputs"].update(search)
    return graph


def test_the_shipped_mmdisco_workflow_runs_on_the_tiny_twins(comfy, models):
    entry = comfy.run(shipped("mmdisco-shipped"), timeout=900)
    report = report_of(entry, SEARCH)
    assert len(report["candidates"]) == 2 + 2 + 2  # ancestral: elites get a new rollout
    assert report["nfe"] == 2 * 2 + 2 * 2 + 2 * 1
    assert set(report["candidates"][0]["rewards"]) == {"videoreward_ta", "javisscore"}
    out = entry["outputs"][SAVE]["images"][0]
    with av.open(str(comfy.base / "output" / out["subfolder"] / out["filename"])) as video:
        v, a = video.streams.video[0], video.streams.audio[0]
        assert v.average_rate == 8 and a.sample_rate == 16000
        assert sum(1 for _ in video.decode(v)) == 16


def test_an_interrupt_stops_the_mmdisco_search_and_leaves_the_state(comfy, models):
    state = "mmdisco-interrupted"
    comfy.run(shipped(state), timeout=900)
    before = state_path(comfy, state).read_bytes()
    big = shipped(state, steps=8, evolution_steps="0, 4", population_sizes="3, 3, 3")
    big["8"]["inputs"]["reset"] = False
    after = run_interrupted(comfy, big, at=3)
    assert len(after) <= 2, "stopped within a step or so of the interrupt (it travels over HTTP)"
    assert state_path(comfy, state).read_bytes() == before
