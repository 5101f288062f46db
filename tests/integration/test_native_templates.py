"""The MiniMax H3 and LTX-2.5 templates (workflows/api/) through /prompt on the real server, on
the tiny twins: the shipped graphs with only what no tiny twin can replace swapped. Neither
text encoder has a tiny twin (ComfyUI fixes Qwen3-VL-32B's and Gemma 3's sizes), so
LotusConditioning stands in for it; H3's video VAE stands in as core's TAEHV (scripts/tiny_h3.py);
LTX-2.5's single checkpoint is the tiny LTX-AV's UNETLoader + VAELoader pair. Sizes, steps and
populations shrink for the CPU."""

from __future__ import annotations

import json

import pytest

from comfyctl import REPO
from graphs import on_tiny_ltx_checkpoint, report_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny(tiny_files):
    return tiny_files


def shipped(name: str) -> dict:
    return json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())


def lotus_text(g: dict, clip_loader: str, positive: str, negative: str) -> None:
    del g[clip_loader]
    g[positive] = {"class_type": "LotusConditioning", "inputs": {}}
    g[negative] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": [positive, 0]}}


SEARCH = {"h3_best_of_n_arw": {"n": 2},
          "h3_evosearch_arw": {"population_sizes": "2, 2, 2", "elites": 1},
          "h3_pruned_best_of_n_arw": {"n": 3}}


@pytest.mark.parametrize("name", sorted(SEARCH))
def test_the_h3_templates_run_on_the_tiny_h3(comfy, tiny, name):
    g = shipped(name)
    lotus_text(g, "3", "4", "5")
    g["1"]["inputs"]["unet_name"] = tiny["h3_h3"].name
    g["6"]["inputs"]["vae_name"] = tiny["h3_video_vae"].name
    g["7"]["inputs"]["vae_name"] = tiny["h3_audio_vae"].name
    g["8"]["inputs"].update(width=64, height=64, length=5)
    g["10"]["inputs"]["steps"] = 6
    g["18"]["inputs"].update(name=f"{name}-test", reset=True)
    g["19"]["inputs"].update(SEARCH[name])
    entry = comfy.run(g, timeout=600)
    report = report_of(entry, "19")
    assert report["config"]["sigmas"][0] == pytest.approx(1.0) and len(report["config"]["sigmas"]) == 7
    finished = [c for c in report["candidates"] if c.get("pruned_at") is None]
    assert all(set(c["rewards"]) == {"videoreward_ta", "javisscore"} for c in finished)
    if name == "h3_evosearch_arw":  # "0, 0.3" of 6 steps: evolution at steps 0 and 2
        assert report["config"]["evolution_steps"] == [0, 2]
    if name == "h3_pruned_best_of_n_arw":  # the default fractions on 6 steps: steps 1 and 2
        assert [k for k, _ in report["config"]["schedule"]] == [1, 2]
    assert entry["outputs"]["23"]["images"] or entry["outputs"]["23"].get("videos")


def test_the_ltx25_two_stage_template_searches_stage_1_and_refines_only_the_winner(comfy, tiny):
    g = shipped("ltx25_two_stage_best_of_n_arw")
    on_tiny_ltx_checkpoint(g, tiny)
    assert g["13"]["inputs"]["vae_name"] == tiny["ltx_tae"].name  # the shipped TAE's file name
    g["23"]["inputs"]["model_name"] = tiny["ltx_upscaler"].name
    g["7"]["inputs"].update(width=64, height=64, length=9)
    g["8"]["inputs"]["frames_number"] = 9
    g["20"]["inputs"].update(name="ltx25-test", reset=True)
    g["21"]["inputs"]["n"] = 3
    entry = comfy.run(g, timeout=600)
    report = report_of(entry, "21")
    assert report["config"]["decoders"] == {"score": "scoring_vae (TAEHV)",
                                            "winner": "scoring_vae (TAEHV)"}
    assert len(report["candidates"]) == 3 and report["nfe"] == 3 * 8
    saved = entry["outputs"]["33"]
    assert saved["images"] or saved.get("videos")
