"""The real frontend in headless chromium: the pack's nodes are registered, every workflow in
workflows/ opens with no missing node types, and a screenshot of each is kept."""

from __future__ import annotations

import json

import pytest

from browser import open_frontend
from comfyctl import REPO

from conftest import ARTIFACTS

pytestmark = [pytest.mark.integration, pytest.mark.browser]

UI_WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
MODEL_LOADERS = {"CheckpointLoaderSimple", "LTXVAudioVAELoader", "LTXAVTextEncoderLoader", "UNETLoader",
                 "CLIPLoader", "VAELoader", "LatentUpscaleModelLoader"}

OPEN = """async (workflow) => {
  const registered = new Set(Object.keys(window.LiteGraph.registered_node_types));
  await window.app.loadGraphData(workflow);
  // wait for the graph to hold every node and for two frames to be drawn, not a fixed time
  const deadline = Date.now() + 30000;
  while (window.app.graph.nodes.length < workflow.nodes.length && Date.now() < deadline) {
    await new Promise((done) => requestAnimationFrame(done));
  }
  for (let i = 0; i < 2; i++) await new Promise((done) => requestAnimationFrame(done));
  const nodes = window.app.graph.nodes;
  return {
    missing: workflow.nodes.map((n) => n.type).filter((t) => !registered.has(t)),
    loaded: nodes.length,
    types: nodes.map((n) => n.type),
    errors: nodes.filter((n) => n.has_errors).map((n) => n.type),
    dialog: document.body.innerText.includes('missing') || document.body.innerText.includes('Missing'),
  };
}"""


def test_there_are_workflows():
    names = {p.name for p in UI_WORKFLOWS}
    assert {"toyav_best_of_n.json", "toyav_evosearch.json", "ltx2_best_of_n_arw.json",
            "ltx2_evosearch_arw.json", "h3_best_of_n_arw.json", "h3_evosearch_arw.json",
            "h3_pruned_best_of_n_arw.json", "ltx25_two_stage_best_of_n_arw.json"} <= names
    for p in UI_WORKFLOWS:
        assert (REPO / "workflows" / "api" / p.name).exists(), f"{p.name} has no API twin"


def test_workflows_open_with_no_missing_nodes(comfy):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open_frontend(comfy) as page:
        avits = page.evaluate("Object.keys(window.LiteGraph.registered_node_types)"
                              ".filter((t) => t.startsWith('AVITS_'))")
        assert {"AVITS_BestOfN", "AVITS_EvoSearch", "AVITS_ARWState", "AVITS_ComfyAVGenerator"} <= set(avits)
        for path in UI_WORKFLOWS:
            workflow = json.loads(path.read_text())
            result = page.evaluate(OPEN, workflow)
            assert result["missing"] == [], f"{path.name}: missing node types {result['missing']}"
            assert result["loaded"] == len(workflow["nodes"])
            assert sorted(result["types"]) == sorted(n["type"] for n in workflow["nodes"])
            # ComfyUI's own loaders flag model files this test server does not have (LTX-2,
            # H3, Gemma, Qwen3-VL); any other error is a broken workflow
            assert set(result["errors"]) <= MODEL_LOADERS and not result["dialog"], result
            page.screenshot(path=str(ARTIFACTS / f"workflow-{path.stem}.png"))
    assert (ARTIFACTS / f"workflow-{UI_WORKFLOWS[0].stem}.png").stat().st_size > 10_000
