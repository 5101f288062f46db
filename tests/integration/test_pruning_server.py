"""Searches on intermediate rewards through the real server: pruned Best-of-N and particle
search on ToyAV (the shipped workflow), on the tiny LTX-AV twin and on the tiny JavisDiT twins,
and an interrupt in the middle of a pruned search."""

from __future__ import annotations

import json

import pytest

from comfyctl import REPO
from graphs import arw_file, load, ltx_search_graph, report_of, run_interrupted, state_path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models(tiny_files):
    return tiny_files


def check(report: dict, n: int, steps: int, schedule: list[tuple[int, float]]) -> None:
    """The report of a pruned search: every candidate listed with its step of pruning or null,
    only survivors scored, the NFE of the schedule and what it saved."""
    cands = report["candidates"]
    alive, marks = [n], [0] + [k for k, _ in schedule] + [steps]
    for _, keep in schedule:
        alive.append(max(1, -(-alive[-1] * keep // 1)))
    alive = [int(a) for a in alive]
    nfe = sum(a * (b - s) for a, s, b in zip(alive, marks, marks[1:]))
    assert len(cands) == n and report["nfe"] == nfe and report["config"]["nfe_saved"] == n * steps - nfe
    finished = [c for c in cands if c["pruned_at"] is None]
    assert len(finished) == alive[-1] and all(c["score"] is not None for c in finished)
    assert all(c["score"] is None and c["rewards"] == {} for c in cands if c["pruned_at"] is not None)


def test_the_shipped_pruned_toyav_workflow_and_particles_run(comfy, models):
    graph = load("toyav_pruned_best_of_n", "pruned-toyav")
    graph["5"]["inputs"]["reset"] = True
    report = report_of(comfy.run(graph, timeout=300))
    check(report, 10, 30, [(6, 0.5), (10, 0.4)])
    # intermediate scores never enter the shared state: it holds the 2 finished candidates
    assert report["aggregator"]["history_size"] == 2
    assert arw_file(comfy, "pruned-toyav")["state"]["stats"]["av_align"]["count"] == 2
    graph = load("toyav_pruned_best_of_n", "particles-toyav")
    search = graph["6"]["inputs"]
    graph["6"] = {"class_type": "AVITS_ParticleSearch", "inputs": {
        **{k: search[k] for k in ("generator", "verifiers", "aggregator", "seed", "filename_prefix")},
        "n": 6, "resample_steps": "10, 20", "temperature": 0.1, "jitter": 0.2}}
    report = report_of(comfy.run(graph, timeout=300))
    assert len(report["candidates"]) == 6 and report["nfe"] == 6 * 30
    assert all(set(c["intermediate"]) == {"10", "20"} for c in report["candidates"])


@pytest.mark.parametrize("search, inputs", [("AVITS_PrunedBestOfN", {"n": 4, "schedule": "2:0.5"}),
                                            ("AVITS_ParticleSearch", {"n": 3, "resample_steps": "2",
                                                                      "temperature": 0.1, "jitter": 0.2})])
def test_both_strategies_run_on_the_tiny_ltx_twin(comfy, models, search, inputs):
    tiny = {k.removeprefix("ltx_"): v for k, v in models.items() if k.startswith("ltx_")}
    graph = ltx_search_graph(tiny, search, state=f"ltx-{search}", **inputs)
    graph["s"]["inputs"] = {k: v for k, v in graph["s"]["inputs"].items() if k != "n"} | inputs
    graph["a"]["inputs"]["reset"] = True
    report = report_of(comfy.run(graph, timeout=300), "s")
    if search == "AVITS_PrunedBestOfN":
        check(report, 4, 4, [(2, 0.5)])
    else:
        assert len(report["candidates"]) == 3 and report["nfe"] == 3 * 4


def test_pruned_best_of_n_runs_on_the_tiny_javisdit_twins(comfy, models):
    graph = json.loads((REPO / "workflows" / "api" / "javisdit_best_of_n_arw.json").read_text())
    graph["4"]["inputs"].update(seconds=2, resolution="144p 9:16 (144x256)")
    graph["5"]["inputs"]["steps"] = 3
    graph["13"]["inputs"].update(name="pruned-javisdit", reset=True)
    search = graph["14"]["inputs"]
    graph["14"] = {"class_type": "AVITS_PrunedBestOfN", "inputs": {
        **{k: search[k] for k in ("generator", "verifiers", "aggregator", "seed", "filename_prefix")},
        "n": 3, "schedule": "1:0.5"}}
    report = report_of(comfy.run(graph, timeout=900), "14")
    check(report, 3, 3, [(1, 0.5)])


def test_an_interrupt_while_pruning_leaves_the_state(comfy, models):
    state = "pruned-interrupted"
    graph = load("toyav_pruned_best_of_n", state)
    graph["5"]["inputs"]["reset"] = True
    comfy.run(graph, timeout=300)
    before = state_path(comfy, state).read_bytes()
    big = load("toyav_pruned_best_of_n", state)
    big["6"]["inputs"].update(n=400, seed=5, schedule="20:0.5")
    run_interrupted(comfy, big, at=30, timeout=300)
    assert state_path(comfy, state).read_bytes() == before
