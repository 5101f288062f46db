"""Both ToyAV workflows through /prompt on the real server; the shared ARW state across queued
prompts and a restart; bad input as clear errors on the node."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import pytest

from comfyctl import REPO, ExecutionFailed

pytestmark = pytest.mark.integration

WORKFLOWS = REPO / "workflows" / "api"


def load(name: str, state: str, **search_inputs) -> dict:
    graph = json.loads((WORKFLOWS / f"{name}.json").read_text())
    graph["5"]["inputs"]["name"] = state
    graph["6"]["inputs"].update(search_inputs)
    return graph


def report_of(entry: dict) -> dict:
    return json.loads(entry["outputs"]["6"]["avits_report"][0])


def arw_file(comfy, state: str) -> dict:
    return json.loads((comfy.base / "user" / "avits" / "arw" / f"{state}.json").read_text())


@pytest.mark.parametrize("name", ["toyav_best_of_n", "toyav_evosearch"])
def test_workflow_runs_and_reports(comfy, name):
    graph = load(name, f"wf-{name}")
    graph["5"]["inputs"]["reset"] = True
    entry = comfy.run(graph, timeout=600)
    out = entry["outputs"]["6"]
    report = report_of(entry)
    assert report["method"] == ("best_of_n" if "best" in name else "evosearch")
    assert report["prompt"] == graph["1"]["inputs"]["prompt"]
    n = 10 if "best" in name else 11
    assert len(report["candidates"]) == n
    assert report["nfe"] == (300 if "best" in name else 300)
    for c in report["candidates"]:
        assert set(c["rewards"]) == {"toy_text_match", "av_align"}
        assert 0 <= c["oracle"]["text_match"] <= 1 and c["oracle"]["sync_error_s"] >= 0
    assert report["aggregator"]["name"] == "arw" and report["aggregator"]["history_size"] == n
    assert set(report["timings"]) >= {"generate", "decode", "verify", "aggregate", "total"}
    assert out["images"] and out["audio"], "previews of the winning frames and audio"
    on_disk = json.loads(Path(report["files"]["report"]).read_text())
    assert on_disk["best"] == report["best"] and on_disk["candidates"] == report["candidates"]
    video = Path(report["files"]["video"])
    assert video.parent == Path(report["files"]["report"]).parent and video.stat().st_size > 1000
    assert Path(report["files"]["plot"]).read_bytes()[:4] == b"\x89PNG"
    with av.open(str(video)) as f:  # a real mp4 with the clip's video and audio
        assert f.streams.video[0].frames == 48 and f.streams.audio[0].rate == 16000


def test_shared_arw_grows_across_prompts_and_survives_a_restart(comfy):
    state = "shared"
    sizes, sigmas = [], []
    for seed in range(3):
        graph = load("toyav_best_of_n", state, n=4, seed=seed)
        graph["5"]["inputs"]["reset"] = seed == 0 and True
        report = report_of(comfy.run(graph, timeout=300))
        sizes.append(report["aggregator"]["history_size"])
        sigmas.append(report["aggregator"]["sigmas"])
        assert arw_file(comfy, state)["state"]["history"]["av_align"].__len__() == sizes[-1]
    assert sizes == [4, 8, 12]
    assert sigmas[0] != sigmas[1] != sigmas[2]
    comfy.restart()
    report = report_of(comfy.run(load("toyav_best_of_n", state, n=4, seed=9), timeout=300))
    assert report["aggregator"]["history_size"] == 16


@pytest.mark.parametrize("name,inputs,match", [
    ("toyav_best_of_n", {"n": 0}, "n >= 1"),
    ("toyav_evosearch", {"elites": 5}, "elites"),
    ("toyav_evosearch", {"evolution_steps": "0, 40"}, "must lie in the schedule"),
    ("toyav_evosearch", {"population_sizes": "5, 5"}, "population sizes"),
])
def test_bad_search_inputs_fail_on_the_node_and_leave_the_state(comfy, name, inputs, match):
    state = "bad-input"
    comfy.run(load("toyav_best_of_n", state, n=2))
    before = arw_file(comfy, state)
    with pytest.raises(ExecutionFailed, match=match) as err:
        comfy.run(load(name, state, **inputs))
    error = next(m[1] for m in err.value.details["status"]["messages"] if m[0] == "execution_error")
    assert error["node_id"] == "6" and error["node_type"].startswith("AVITS_")
    assert arw_file(comfy, state)["state"] == before["state"]
    assert comfy.get("/system_stats")  # still serving


def test_nan_verifier_fails_on_the_node_and_leaves_the_state(comfy):
    state = "nan"
    comfy.run(load("toyav_best_of_n", state, n=2))
    before = arw_file(comfy, state)
    graph = load("toyav_best_of_n", state, n=2)
    graph["9"] = {"class_type": "AVITSTest_NaNVerifier", "inputs": {}}
    graph["6"]["inputs"]["verifiers"] = ["9", 0]
    with pytest.raises(ExecutionFailed, match="verifier 'broken' returned a non-finite reward"):
        comfy.run(graph)
    assert arw_file(comfy, state) == before


def test_interrupt_stops_the_search_and_the_queue_keeps_working(comfy):
    state = "interrupted"
    comfy.run(load("toyav_best_of_n", state, n=2))
    graph = load("toyav_evosearch", state, population_sizes="64, 64, 64", elites=2)
    seen = []

    def on_progress(data):
        seen.append(data["value"])
        if len(seen) == 3:
            comfy.post("/interrupt", {})

    with pytest.raises(ExecutionFailed) as err:
        comfy.run(graph, timeout=300, on_progress=on_progress)
    messages = [m[0] for m in err.value.details["status"]["messages"]]
    assert "execution_interrupted" in messages
    total = 64 * 30 + 62 * 30 + 62 * 20 + 2 * (64 + 62 + 62)
    assert max(seen) < total / 2, "stopped long before the end"
    saved = arw_file(comfy, state)  # still a valid state, with whole generations only
    assert len(saved["state"]["history"]["av_align"]) in (2, 2 + 64, 2 + 64 + 62)
    report = report_of(comfy.run(load("toyav_best_of_n", state, n=2, seed=3)))
    assert report["aggregator"]["history_size"] == len(saved["state"]["history"]["av_align"]) + 2


def test_naive_sample_and_save_report(comfy):
    graph = load("toyav_best_of_n", "naive-report")
    graph["6"] = {"class_type": "AVITS_NaiveSample",
                  "inputs": {"generator": ["1", 0], "verifiers": ["4", 0], "aggregator": ["5", 0],
                             "seed": 4, "filename_prefix": "AVITS/naive"}}
    graph["8"] = {"class_type": "AVITS_SaveReport",
                  "inputs": {"report": ["6", 3], "filename_prefix": "AVITS/saved"}}
    entry = comfy.run(graph)
    report = report_of(entry)
    assert report["method"] == "naive" and report["nfe"] == 30 and len(report["candidates"]) == 1
    assert report["candidates"][0]["seed"] == 4
    saved = Path(entry["outputs"]["8"]["text"][0])
    assert saved.parent == comfy.base / "output" / "AVITS"
    assert json.loads(saved.read_text())["candidates"] == report["candidates"]
    assert entry["outputs"]["8"]["images"], "the report plot is previewed"


def test_server_killed_mid_search_keeps_a_loadable_arw_state(comfy):
    import signal
    import time

    state = "killed"
    comfy.run(load("toyav_best_of_n", state, n=3))
    graph = load("toyav_evosearch", state, population_sizes="48, 48, 48")
    prompt_id = comfy.queue(graph)
    path = comfy.base / "user" / "avits" / "arw" / f"{state}.json"
    deadline = time.monotonic() + 120
    while len(json.loads(path.read_text())["state"]["history"]["av_align"]) == 3:
        assert time.monotonic() < deadline, "the first generation never finished"
        time.sleep(0.05)
    os.killpg(comfy.proc.pid, signal.SIGKILL)  # in the middle of the search, maybe of a write
    comfy.proc.wait()
    comfy.proc = None
    comfy.start()
    saved = json.loads(path.read_text())
    sizes = len(saved["state"]["history"]["av_align"])
    assert sizes in (3 + 48, 3 + 48 + 46, 3 + 48 + 46 + 46)
    report = report_of(comfy.run(load("toyav_best_of_n", state, n=2)))
    assert report["aggregator"]["history_size"] == sizes + 2
    assert prompt_id
