"""The pack on a real ComfyUI server: nodes registered with tooltips, graphs run over /prompt,
the shared ARW state persisted atomically and reset."""

from __future__ import annotations

import json

import pytest

from comfyctl import ExecutionFailed

pytestmark = pytest.mark.integration

def test_every_node_registered_with_a_category_and_tooltips(comfy):
    info = comfy.get("/object_info")
    ours = {k: v for k, v in info.items() if k.startswith("AVITS_")}
    assert {"AVITS_Aggregator", "AVITS_ARWState", "AVITS_ARWInspect", "AVITS_Search"} <= set(ours)
    for node_id, node in ours.items():
        assert node["category"].startswith("AVITS/"), f"{node_id} is in {node['category']!r}"
        assert node.get("description"), f"{node_id} has no description"
        for section in ("required", "optional"):
            for name, spec in node["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    assert "AVITS_AGGREGATOR" in info["AVITS_ARWState"]["output"]
    no_model = {"AVITS_VerifierSet", "AVITS_EmptyJavisDiTLatent", "AVITS_JavisDiTScheduler"}
    for node_id, node in ours.items():  # what each model's weights let a user do
        if node["category"] in ("AVITS/verifiers", "AVITS/generators") and node_id not in no_model:
            assert "Weights:" in node["description"] or "No weights" in node["description"], node_id
    assert "NON-COMMERCIAL" in ours["AVITS_JavisScore"]["description"]
    log = comfy.log_tail(400)
    assert "comfyui_avits" in log and "IMPORT FAILED" not in log


def arw_graph(name="itest", reset=False, weights=""):
    return {
        "1": {"class_type": "AVITS_ARWState",
              "inputs": {"name": name, "weights": weights, "optimizer": "adam", "lr": 0.05,
                         "iterations": 50, "window": 0, "reset": reset}},
        "2": {"class_type": "AVITS_ARWInspect", "inputs": {"aggregator": ["1", 0]}},
    }


def test_arw_state_and_inspect_run_and_reset(comfy):
    entry = comfy.run(arw_graph(reset=True))
    text = entry["outputs"]["2"]["text"][0]
    assert "ARW state 'itest'" in text and "rewards seen per verifier: 0" in text
    assert entry["outputs"]["2"]["images"], "the inspector shows a plot"
    path = comfy.base / "user" / "avits" / "arw" / "itest.json"
    saved = json.loads(path.read_text())
    assert saved["format"] == "avits-arw-state" and saved["state"]["stats"] == {}


def test_corrupt_state_file_is_an_error_on_the_node_and_left_untouched(comfy):
    path = comfy.base / "user" / "avits" / "arw" / "broken.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format": "avits-arw-state", "version": 1, "state": {')
    with pytest.raises(ExecutionFailed, match="corrupt"):
        comfy.run(arw_graph(name="broken"))
    assert path.read_text().endswith('"state": {')
    # the queue keeps working, and a reset starts afresh with the bad file kept aside
    comfy.run(arw_graph(name="broken", reset=True))
    assert json.loads(path.read_text())["format"] == "avits-arw-state"
    assert [p.read_text() for p in path.parent.glob("broken.json.bak-*")] == [
        '{"format": "avits-arw-state", "version": 1, "state": {']


def test_static_aggregator_rejects_bad_weights_on_the_node(comfy):
    graph = {"1": {"class_type": "AVITS_Aggregator",
                   "inputs": {"mode": "weighted_sum", "weights": "0.5, x", "statistics": ""}},
             "2": {"class_type": "AVITS_ARWInspect", "inputs": {"aggregator": ["1", 0]}}}
    with pytest.raises(ExecutionFailed, match="cannot read weights"):
        comfy.run(graph)
