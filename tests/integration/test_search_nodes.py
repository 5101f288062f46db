"""Both ToyAV workflows through /prompt on the real server; the shared ARW state across queued
prompts and a restart; what the search nodes return; bad input as clear errors on the node."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from comfyctl import ExecutionFailed, QueueRejected
from graphs import arw_file, fixed_rewards, load, report_of, state_path, strict

pytestmark = pytest.mark.integration


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
    assert report["nfe"] == 300
    for c in report["candidates"]:
        assert set(c["rewards"]) == {"toy_text_match", "av_align"}
        assert 0 <= c["oracle"]["text_match"] <= 1 and c["oracle"]["sync_error_s"] >= 0
    scores = [c["score"] for c in report["candidates"]]
    assert report["best"] == scores.index(max(scores))
    assert report["aggregator"]["name"] == "arw" and report["aggregator"]["history_size"] == n
    assert len(report["config"]["sigmas"]) == 31 and report["config"]["sigmas"][0] == 1.0
    assert set(report["timings"]) >= {"generate", "decode", "verify", "aggregate", "total"}
    assert out["images"] and out["audio"], "previews of the winning frames and audio"
    on_disk = strict(Path(report["files"]["report"]).read_text())
    assert on_disk["best"] == report["best"] and on_disk["candidates"] == report["candidates"]
    video = Path(report["files"]["video"])
    assert video.parent == Path(report["files"]["report"]).parent and video.stat().st_size > 1000
    assert Path(report["files"]["plot"]).read_bytes()[:4] == b"\x89PNG"
    with av.open(str(video)) as f:  # a real mp4 with the clip's video and audio
        assert f.streams.video[0].frames == 48 and f.streams.audio[0].rate == 16000


def test_shared_arw_grows_across_prompts_and_survives_a_restart(comfy):
    state = "shared"
    sizes, sigmas, files = [], [], []
    for seed in range(3):
        graph = load("toyav_best_of_n", state, n=4, seed=seed)
        graph["5"]["inputs"]["reset"] = seed == 0
        report = report_of(comfy.run(graph, timeout=300))
        sizes.append(report["aggregator"]["history_size"])
        sigmas.append(json.dumps(report["aggregator"]["sigmas"]))
        saved = arw_file(comfy, state)
        assert saved["state"]["stats"]["av_align"]["count"] == sizes[-1]
        files.append(len(json.dumps(saved["state"])))
    assert sizes == [4, 8, 12]
    assert len(set(sigmas)) == 3, "the scales moved with every prompt"
    assert max(files) < 1.1 * min(files), "the state does not grow with the rewards seen"
    comfy.restart()
    report = report_of(comfy.run(load("toyav_best_of_n", state, n=4, seed=9), timeout=300))
    assert report["aggregator"]["history_size"] == 16


def test_the_search_prompt_is_what_the_verifiers_read(comfy):
    graph = load("toyav_best_of_n", "prompt-text", n=3, prompt="a green cube bouncing, drum sound")
    graph["5"]["inputs"]["reset"] = True
    own = report_of(comfy.run(graph))
    assert own["prompt"] == "a green cube bouncing, drum sound"
    graph["6"]["inputs"]["prompt"] = ""
    default = report_of(comfy.run(graph))
    assert default["prompt"] == graph["1"]["inputs"]["prompt"]
    text = [[c["rewards"]["toy_text_match"] for c in r["candidates"]] for r in (own, default)]
    assert text[0] != text[1], "the same clips, judged against another text"


def test_the_models_a_verifier_runs_are_loaded_through_comfyui(comfy):
    graph = load("toyav_best_of_n", "placed", n=3, chunk_size=2)
    graph["5"]["inputs"]["reset"] = True
    graph["m"] = {"class_type": "AVITSTest_ModelVerifier", "inputs": {}}
    graph["6"]["inputs"]["verifiers"] = ["m", 0]
    report = report_of(comfy.run(graph))
    assert [c["rewards"]["model_loaded"] for c in report["candidates"]] == [1.0] * 3


@pytest.mark.parametrize("name,inputs,match", [
    ("toyav_best_of_n", {"n": 0}, "smaller than min of 1"),
    ("toyav_evosearch", {"elites": 5}, "elites"),
    ("toyav_evosearch", {"population_sizes": "5, 5"}, "population sizes"),
    ("toyav_evosearch", {"evolution_steps": "0, ten"}, "evolution steps"),
    ("toyav_evosearch", {"mutation_rate": 2.0}, "bigger than max of 1"),
    ("toyav_pruned_best_of_n", {"schedule": "6-0.5"}, "pruning schedule"),
])
def test_bad_search_inputs_are_refused_when_queued_and_the_prompt_fails(comfy, name, inputs, match):
    """Refused by /prompt before anything runs: ARW Inspect reads the search's report, so no
    output of the prompt is left to run and the prompt is failed, not a quiet success."""
    state = "queue-refused"
    comfy.run(load("toyav_best_of_n", state, n=2))
    before = state_path(comfy, state).read_bytes()
    with pytest.raises(QueueRejected, match=match) as err:
        comfy.run(load(name, state, **inputs))
    assert set(err.value.body["node_errors"]["6"]["dependent_outputs"]) == {"6", "7"}  # Inspect too
    assert state_path(comfy, state).read_bytes() == before


@pytest.mark.parametrize("name,inputs,match", [
    ("toyav_evosearch", {"evolution_steps": "0, 40"}, "must lie in the schedule"),
    ("toyav_evosearch", {"population_sizes": "100000, 5, 5"}, "max_candidates = 1024"),
    ("toyav_evosearch", {"mutation_rate": float("nan")}, "mutation rate must be a finite"),
    ("toyav_evosearch", {"tournament_ratio": float("nan")}, "tournament ratio must be a finite"),
])
def test_bad_search_inputs_fail_on_the_node_and_leave_the_state(comfy, name, inputs, match):
    state = "bad-input"
    comfy.run(load("toyav_best_of_n", state, n=2))
    before = state_path(comfy, state).read_bytes()
    with pytest.raises(ExecutionFailed, match=match) as err:
        comfy.run(load(name, state, **inputs))
    error = next(m[1] for m in err.value.details["status"]["messages"] if m[0] == "execution_error")
    assert error["node_id"] == "6" and error["node_type"].startswith("AVITS_")
    assert state_path(comfy, state).read_bytes() == before
    assert comfy.get("/system_stats")  # still serving


def test_the_winner_is_the_argmax_of_the_reported_scores_with_rank_ties(comfy):
    # v1 ties; v2 prefers candidate 0; rank weights 0.8/0.2. Ties used to rank by index, which
    # scored candidate 1 higher (0.8) while the report named candidate 0 the winner.
    graph = fixed_rewards(load("toyav_best_of_n", "rank-ties", n=2),
                          {"v1": [1, 1], "v2": [2, 1]},
                          {"mode": "rank", "weights": "0.8, 0.2", "statistics": ""})
    report = report_of(comfy.run(graph))
    scores = [c["score"] for c in report["candidates"]]
    assert scores == pytest.approx([0.6, 0.4])
    assert report["best"] == scores.index(max(scores)) == 0


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
    assert strict(saved.read_text())["candidates"] == report["candidates"]
    assert entry["outputs"]["8"]["images"], "the report plot is previewed"


def _kb(pid: int, field: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field))
    return int(line.split()[1])


def test_a_large_best_of_n_runs_in_chunks_within_bounded_memory(comfy):
    """24 clips of 10 s at 256 x 256 take 4.5 GB decoded; all at once, with the renderer's and
    the verifiers' working memory, the server's peak grew by 12 GB (measured). In chunks of 2
    it grows by less than the decoded clips alone would take (measured: 1.9 GB)."""
    graph = load("toyav_best_of_n", "big", n=24, chunk_size=2)
    graph["1"]["inputs"].update(width=256, height=256, duration=10.0)
    graph["5"]["inputs"]["reset"] = True
    pid = comfy.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart the peak (VmHWM) from now
    base = _kb(pid, "VmRSS:")
    report = report_of(comfy.run(graph, timeout=600))
    growth = (_kb(pid, "VmHWM:") - base) * 1024
    all_clips = 24 * 240 * 256 * 256 * 3 * 4
    assert len(report["candidates"]) == 24 and growth < all_clips, f"{growth / 1e9:.2f} GB"


def test_a_plugin_search_method_is_reachable_from_the_search_node(comfy):
    """AVITS_Search runs any registered method: here the test plugin's first_of_n (registered
    in the server through AVITS_SEARCH_METHODS), its settings written as text."""
    info = comfy.get("/object_info/AVITS_Search")["AVITS_Search"]
    assert "first_of_n" in info["input"]["required"]["method"][1]["options"]
    graph = load("toyav_best_of_n", "plugin")
    search = {k: v for k, v in graph["6"]["inputs"].items() if k != "n"}
    graph["6"] = {"class_type": "AVITS_Search",
                  "inputs": {**search, "method": "first_of_n", "settings": "n = 2"}}
    report = report_of(comfy.run(graph, timeout=300))
    assert report["method"] == "first_of_n" and len(report["candidates"]) == 2
    graph["6"]["inputs"]["settings"] = "m = 2"
    with pytest.raises(QueueRejected, match="no setting 'm'"):
        comfy.run(graph, timeout=300)
