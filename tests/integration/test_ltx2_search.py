"""Search over ComfyUI's own LTX-2 graph on the real server: the tiny LTX-AV twins sampled by
ComfyUI's samplers under AVITS EvoSearch / Best-of-N, the winner's latent decoded by ComfyUI's
own nodes; an interrupt mid-search; the shipped LTX-2 workflows through /prompt validation."""

from __future__ import annotations

import json

import pytest
import torch

from comfyctl import REPO, ExecutionFailed
from conftest import ltx_files
from graphs import LTX_FRAMES, ltx_graph, ltx_search_graph, report_of, run_interrupted, state_path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny(tiny_files):
    return ltx_files(tiny_files)


@pytest.mark.parametrize("search", ["AVITS_BestOfN", "AVITS_EvoSearch"])
def test_a_search_replaces_sampler_custom_advanced_in_the_ltx2_graph(comfy, tiny, search):
    graph = ltx_search_graph(tiny, search, state=f"ltx-{search}")
    graph["a"]["inputs"]["reset"] = True
    entry = comfy.run(graph, timeout=300)
    report = report_of(entry, "s")
    n = 3 if search == "AVITS_BestOfN" else 3 + 2 + 2
    assert len(report["candidates"]) == n and report["config"]["sigmas"][0] == pytest.approx(1.0)
    assert report["nfe"] == (3 * 4 if search == "AVITS_BestOfN" else 3 * 4 + 2 * 4 + 2 * 2)
    assert len(entry["outputs"]["18"]["images"]) == LTX_FRAMES  # the winner, decoded by ComfyUI
    assert entry["outputs"]["19"]["audio"]
    assert entry["outputs"]["s"]["images"] and entry["outputs"]["s"]["audio"]


def test_an_interrupt_stops_the_ltx_search_and_leaves_the_state(comfy, tiny):
    state = "ltx-interrupted"
    graph = ltx_search_graph(tiny, state=state)
    graph["a"]["inputs"]["reset"] = True
    comfy.run(graph, timeout=300)
    before = state_path(comfy, state).read_bytes()
    big = ltx_search_graph(tiny, state=state, population_sizes="12, 12, 12", elites=2, seed=1)
    after = run_interrupted(comfy, big, at=4, timeout=300)
    assert len(after) <= 2, "stopped within a step or so of the interrupt (it travels over HTTP)"
    assert state_path(comfy, state).read_bytes() == before
    report = report_of(comfy.run(ltx_search_graph(tiny, state=state, seed=2), timeout=300), "s")
    assert report["aggregator"]["history_size"] == 7 + 7  # built on the untouched state


@pytest.mark.parametrize("name", ["ltx2_best_of_n_arw", "ltx2_evosearch_arw", "ltx2_pruned_best_of_n_arw"])
def test_the_shipped_ltx2_workflows_pass_validation_on_tiny_files(comfy, tiny, name):
    """The API twins as shipped, with the model file names pointed at the tiny twins. No tiny
    Gemma 3 text encoder can be made (ComfyUI fixes its config: 3840 wide, 48 layers, a
    hard-coded Linear(3840 * 49, 3840), a SentencePiece blob), so an empty file stands in for
    its name: the prompt validates and is queued, then stops at the text encoder's loader."""
    graph = json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())
    for node in ("1", "2"):
        graph[node]["inputs"]["ckpt_name"] = tiny["audio_vae"].name
    encoder = comfy.base / "models" / "text_encoders" / "gemma_placeholder.safetensors"
    encoder.parent.mkdir(parents=True, exist_ok=True)
    encoder.write_bytes(b"")
    graph["3"]["inputs"].update(text_encoder=encoder.name, ckpt_name=tiny["audio_vae"].name)
    try:
        comfy.run(graph, timeout=300)
    except ExecutionFailed as e:  # accepted by /prompt (validation passed), failed in a loader
        failed = next(m[1] for m in e.details["status"]["messages"] if m[0] == "execution_error")
        assert failed["node_type"] in {"CheckpointLoaderSimple", "LTXAVTextEncoderLoader",
                                       "LTXVAudioVAELoader"}, failed


def saved_latents(comfy, entry: dict, nodes: tuple[str, ...]) -> list:
    """The tensors SaveLatent wrote for ``nodes``, read back from the output folder."""
    from safetensors.torch import load_file
    out = []
    for node in nodes:
        saved = entry["outputs"][node]["latents"][0]
        out.append(load_file(str(comfy.base / "output" / saved["subfolder"] / saved["filename"]))["latent_tensor"])
    return out


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral"])
def test_with_the_defaults_the_winner_is_sampler_custom_advanced_with_its_seed_bit_for_bit(comfy, tiny, sampler):
    """Best-of-3 through the server with the generator's defaults, then the winner's seed in
    ComfyUI's plain graph: the same video and audio latents, bit for bit."""
    graph = ltx_search_graph(tiny, "AVITS_BestOfN", state=f"exact-{sampler}", seed=5)
    del graph["g"]["inputs"]["max_batch"]  # the node's default
    graph["11"]["inputs"]["sampler_name"] = sampler
    graph["lv"] = {"class_type": "SaveLatent", "inputs": {"samples": ["15", 0], "filename_prefix": f"exact/{sampler}_search_v"}}
    graph["la"] = {"class_type": "SaveLatent", "inputs": {"samples": ["15", 1], "filename_prefix": f"exact/{sampler}_search_a"}}
    entry = comfy.run(graph, timeout=300)
    report = report_of(entry, "s")
    winner = next(c for c in report["candidates"] if c["id"] == report["best"])
    assert 5 <= winner["seed"] < 8
    plain = ltx_graph(tiny)
    plain["10"]["inputs"]["noise_seed"] = winner["seed"]
    plain["11"]["inputs"]["sampler_name"] = sampler
    plain["lv"] = {"class_type": "SaveLatent", "inputs": {"samples": ["15", 0], "filename_prefix": f"exact/{sampler}_plain_v"}}
    plain["la"] = {"class_type": "SaveLatent", "inputs": {"samples": ["15", 1], "filename_prefix": f"exact/{sampler}_plain_a"}}
    reference = comfy.run(plain, timeout=300)
    for got, want in zip(saved_latents(comfy, entry, ("lv", "la")), saved_latents(comfy, reference, ("lv", "la"))):
        assert got.shape == want.shape and torch.equal(got, want)
