"""JavisDiT on the real server: the shipped workflows (API twins) queued through /prompt on the
tiny twins scripts/tiny_models writes, an interrupt mid-search, and the loader's errors for a
missing or wrong file and for a prompt longer than T5 reads."""

from __future__ import annotations

import json
import shutil

import av
import pytest
from safetensors.torch import load_file, save_file

from comfyctl import REPO, ExecutionFailed, QueueRejected
from graphs import moved_away, report_of, run_interrupted, state_path

pytestmark = pytest.mark.integration

SEARCH, SAVE = "14", "16"


@pytest.fixture(scope="module")
def models(tiny_files):
    return tiny_files


def shipped(name: str, state: str, steps: int = 3, **search) -> dict:
    """A shipped JavisDiT workflow as is, but for what makes it slow on a CPU: the number of
    steps, the clip's size (2 s at 144p) and the searches' sizes."""
    graph = json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())
    graph["4"]["inputs"].update(seconds=2, resolution="144p 9:16 (144x256)")
    graph["5"]["inputs"]["steps"] = steps
    graph["13"]["inputs"].update(name=state, reset=True)
    if graph[SEARCH]["class_type"] == "AVITS_EvoSearch":
        graph[SEARCH]["inputs"].update(evolution_steps="0, 1", population_sizes="3, 3, 3", elites=1)
    else:
        graph[SEARCH]["inputs"]["n"] = 2
    graph[SEARCH]["inputs"].update(search)
    return graph


def saved_video(comfy, entry) -> av.container.InputContainer:
    out = entry["outputs"][SAVE]["images"][0]
    return av.open(str(comfy.base / "output" / out["subfolder"] / out["filename"]))


@pytest.mark.parametrize("name", ["javisdit_best_of_n_arw", "javisdit_evosearch_arw"])
def test_the_shipped_javisdit_workflows_run_on_the_tiny_twins(comfy, models, name):
    entry = comfy.run(shipped(name, f"javisdit-{name}"), timeout=900)
    report = report_of(entry, SEARCH)
    evo = "evosearch" in name
    assert len(report["candidates"]) == (3 + 2 + 2 if evo else 2)
    assert report["nfe"] == (3 * 3 + 2 * 3 + 2 * 2 if evo else 2 * 3)
    assert set(report["candidates"][0]["rewards"]) == {"videoreward_ta", "javisscore"}
    assert len(report["config"]["sigmas"]) == 4 and report["config"]["sigmas"][-1] == 0
    with saved_video(comfy, entry) as video:
        v, a = video.streams.video[0], video.streams.audio[0]
        assert v.average_rate == 24 and (v.width, v.height) == (256, 144)
        assert a.sample_rate == 16000
        frames = sum(1 for _ in video.decode(v))
    assert frames == 51


def test_an_interrupt_stops_the_javisdit_search_and_leaves_the_state(comfy, models):
    state = "javisdit-interrupted"
    comfy.run(shipped("javisdit_best_of_n_arw", state), timeout=900)
    before = state_path(comfy, state).read_bytes()
    big = shipped("javisdit_evosearch_arw", state, steps=30, evolution_steps="0, 10",
                  population_sizes="5, 5, 5", elites=2)
    big["13"]["inputs"]["reset"] = False
    after = run_interrupted(comfy, big, at=3)
    assert len(after) <= 2, "stopped within a step or so of the interrupt (it travels over HTTP)"
    assert state_path(comfy, state).read_bytes() == before
    again = shipped("javisdit_best_of_n_arw", state)
    again["13"]["inputs"]["reset"] = False
    report = report_of(comfy.run(again, timeout=900), SEARCH)
    assert report["aggregator"]["history_size"] == 2 + 2  # built on the untouched state


def test_a_missing_or_wrong_javisdit_file_names_the_file_the_folder_and_the_source(comfy, models):
    graph = shipped("javisdit_best_of_n_arw", "javisdit-errors")
    dit = models["javisdit_dit"]
    with moved_away(dit), pytest.raises(QueueRejected, match=r"'JavisDiT-v0.1-jav-240p4s' was "
                                                             r"not found in models/javisdit/.*"
                                                             r"huggingface.co/JavisVerse"):
        comfy.run(graph, timeout=300)
    wrong = dit.with_name("JavisDiT-wrong")
    shutil.copytree(dit, wrong, dirs_exist_ok=True)
    sd = load_file(str(wrong / "model.safetensors"))
    sd["spatial_blocks.0.cross_attn.kv_linear.weight"] = sd["spatial_blocks.0.cross_attn.kv_linear.weight"][:5]
    save_file(sd, str(wrong / "model.safetensors"))
    graph["1"]["inputs"]["dit"] = "JavisDiT-wrong"
    with pytest.raises(ExecutionFailed, match=r"JavisDiT-wrong.*spatial_blocks.0.cross_attn.kv_linear.weight"):
        comfy.run(graph, timeout=300)
    t5 = models["javisdit_t5"]
    with moved_away(t5), pytest.raises(QueueRejected, match=r"'t5xxl_fp16.safetensors' was not found "
                                                            r"in models/text_encoders/.*flux_text_encoders"):
        comfy.run(shipped("javisdit_best_of_n_arw", "javisdit-errors"), timeout=300)
    assert comfy.get("/system_stats")


def test_a_prompt_longer_than_t5_reads_is_cut_with_a_warning(comfy, models):
    graph = shipped("javisdit_best_of_n_arw", "javisdit-long", steps=1)
    long = " ".join(["a dog barks loudly at the red ball"] * 60)
    graph["3"]["inputs"]["text"] = long
    graph["8"]["inputs"]["prompt"] = long
    report = report_of(comfy.run(graph, timeout=900), SEARCH)
    assert len(report["candidates"]) == 2
    assert "JavisDiT reads 300, so the last" in comfy.log_tail(400)
