"""Draft, then commit through /prompt on the real server: the ToyAV template (a second ToyAV
node with fewer steps as the draft) and the LTX-2 template on the tiny LTX-AV twin (the same
model and latent under a 4-step schedule as the draft); the report names each draft's score and
whether it was committed, ARW learns from the committed only, and a draft of another latent is
refused before any work with what differs."""

from __future__ import annotations

import json

import pytest

from comfyctl import REPO, ExecutionFailed
from graphs import load, on_tiny_ltx_checkpoint, report_of, state_path

pytestmark = pytest.mark.integration


def test_the_toyav_template_commits_the_best_drafts(comfy):
    graph = load("toyav_draft_then_commit", "draft-toyav")
    graph["5"]["inputs"]["reset"] = True
    entry = comfy.run(graph, timeout=300)
    report = report_of(entry)
    assert report["method"] == "draft_then_commit" and len(report["candidates"]) == 10
    committed = [c for c in report["candidates"] if c["committed"]]
    assert len(committed) == 3 and all(c["score"] is not None for c in committed)
    drafts = sorted(report["candidates"], key=lambda c: -c["draft_score"])
    assert {c["seed"] for c in drafts[:3]} == {c["seed"] for c in committed}
    phases = report["config"]["phases"]
    assert phases["draft"]["nfe"] == 10 * 8 and phases["commit"]["nfe"] == 3 * 30
    assert report["nfe"] == 10 * 8 + 3 * 30
    assert report["aggregator"]["history_size"] == 3  # drafts never entered the history
    assert "rewards seen per verifier: 3" in entry["outputs"]["7"]["text"][0]


def test_a_draft_of_another_latent_is_refused_before_any_work(comfy):
    state = "draft-mismatch"
    comfy.run(load("toyav_best_of_n", state, n=2))
    before = state_path(comfy, state).read_bytes()
    graph = load("toyav_draft_then_commit", state)
    graph["9"]["inputs"]["world"] = "continuous"  # a latent of other size
    with pytest.raises(ExecutionFailed, match=r"the draft's initial noise has shape .*the full generator's"):
        comfy.run(graph, timeout=300)
    assert state_path(comfy, state).read_bytes() == before


def test_the_ltx2_template_runs_on_the_tiny_ltx_av(comfy, tiny_files):
    g = json.loads((REPO / "workflows" / "api" / "ltx2_draft_then_commit_arw.json").read_text())
    on_tiny_ltx_checkpoint(g, tiny_files)
    g["7"]["inputs"].update(width=64, height=64, length=9)
    g["8"]["inputs"]["frames_number"] = 9
    g["19"]["inputs"].update(name="ltx2-draft-test", reset=True)
    g["20"]["inputs"].update(n=3, commit=1)
    entry = comfy.run(g, timeout=600)
    report = report_of(entry, "20")
    assert report["method"] == "draft_then_commit" and report["config"]["draft_steps"] == 4
    assert sum(c["committed"] for c in report["candidates"]) == 1
    assert report["config"]["phases"]["draft"]["nfe"] == 3 * 4
    assert report["config"]["phases"]["commit"]["nfe"] == 1 * 8
    assert report["aggregator"]["history_size"] == 1
    saved = entry["outputs"]["25"]
    assert saved["images"] or saved.get("videos")
