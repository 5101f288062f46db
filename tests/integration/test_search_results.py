"""What a search leaves a user, through /prompt on the real server: the winner's mp4 (with its
sound) as a saved output in the queue history, every candidate's mp4 with keep_candidates, all
candidates as batches, ARW Inspect reading the state after the search, and an EvoSearch winner
of a late generation made again from the recipe its report gives."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
import torch
from safetensors.torch import load_file

from graphs import load, report_of

pytestmark = pytest.mark.integration


def streams(path: Path) -> set[str]:
    with av.open(str(path)) as f:
        return {s.type for s in f.streams}


def test_the_winner_is_a_saved_video_output_and_keep_candidates_saves_every_one(comfy):
    graph = load("toyav_best_of_n", "results-keep", n=3, keep_candidates=True)
    graph["5"]["inputs"]["reset"] = True
    graph["all"] = {"class_type": "PreviewImage", "inputs": {"images": ["6", 4]}}
    entry = comfy.run(graph, timeout=300)
    out, report = entry["outputs"]["6"], report_of(entry)
    video = out["video"][0]
    assert video["type"] == "output" and video["filename"].endswith("best.mp4")
    path = comfy.base / "output" / video["subfolder"] / video["filename"]
    assert streams(path) == {"video", "audio"} and str(path) == report["files"]["video"]
    files = [Path(c["file"]) for c in report["candidates"]]
    assert len(files) == 3 and len(set(files)) == 3
    assert all(f.exists() and streams(f) == {"video", "audio"} for f in files)
    frames = graph["1"]["inputs"]["fps"] * graph["1"]["inputs"]["duration"]
    assert len(entry["outputs"]["all"]["images"]) == 3 * frames  # every candidate, every frame
    assert out["avits_summary"][0].startswith(f"winner #{report['best']} of 3")
    assert len(out["images"]) == 1 and len(out["audio"]) == 1  # the strip, the player's sound
    # ARW Inspect runs after the search it reads: the history holds this search's rewards
    assert "rewards seen per verifier: 3" in entry["outputs"]["7"]["text"][0]


def test_without_keep_candidates_nothing_but_the_winner_is_saved(comfy):
    entry = comfy.run(load("toyav_best_of_n", "results-plain", n=2), timeout=300)
    report = report_of(entry)
    assert all("file" not in c for c in report["candidates"])
    folder = Path(report["files"]["video"]).parent
    stem = Path(report["files"]["video"]).name.removesuffix("best.mp4")
    assert not list(folder.glob(f"{stem}candidate_*"))


def saved_latent(comfy, entry: dict, node: str) -> torch.Tensor:
    saved = entry["outputs"][node]["latents"][0]
    return load_file(str(comfy.base / "output" / saved["subfolder"] / saved["filename"]))["latent_tensor"]


def test_an_evosearch_winner_of_a_late_generation_is_made_again_from_its_recipe(comfy):
    for seed in range(8):  # a seed whose winner is an evolved candidate, not a fresh one
        graph = load("toyav_evosearch", f"recipe-{seed}", seed=seed, population_sizes="3, 6, 6",
                     elites=1)
        graph["lat"] = {"class_type": "SaveLatent",
                        "inputs": {"samples": ["6", 2], "filename_prefix": f"recipe/search_{seed}"}}
        entry = comfy.run(graph, timeout=300)
        report = report_of(entry)
        best = next(c for c in report["candidates"] if c["id"] == report["best"])
        if best["generation"] > 0:
            break
    else:
        pytest.fail("no seed of 0..7 gave an evolved winner")
    assert ";" in best["recipe"] and "mutate" in best["recipe"]
    again = {"1": graph["1"],
             "r": {"class_type": "AVITS_ReplayCandidate",
                   "inputs": {"generator": ["1", 0], "recipe": best["recipe"]}},
             "lat": {"class_type": "SaveLatent",
                     "inputs": {"samples": ["r", 2], "filename_prefix": f"recipe/replay_{seed}"}}}
    replayed = comfy.run(again, timeout=300)
    assert torch.equal(saved_latent(comfy, replayed, "lat"), saved_latent(comfy, entry, "lat"))
