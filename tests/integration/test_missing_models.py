"""Every model loader checks all the files it reads when the prompt is queued: a graph with files
missing is refused by /prompt with one message per loader that lists each of them (name, model
folder, the paths searched, where to get it), so a new set-up is fixed in one go, not one run
per file; a complete set is accepted."""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest

from comfyctl import REPO, QueueRejected
from graphs import moved_away

pytestmark = pytest.mark.integration

JAVISDIT_LOADER, IMAGEBIND_LOADER, VIDEOREWARD_LOADER = "1", "2", "9"


def refusal(comfy, graph: dict) -> dict[str, list[str]]:
    """/prompt's answer to a graph it refuses: {node id: the details of its errors}."""
    with pytest.raises(QueueRejected) as refused:
        comfy.queue(graph)
    assert refused.value.code == 400, "refused, not queued"
    return {node: [e["details"] for e in answer["errors"]]
            for node, answer in refused.value.body["node_errors"].items()}


def one_message(details: list[str]) -> str:
    """The loader's message: ComfyUI repeats it for each input its check reads ('dit - ...')."""
    messages = {d.partition(" - ")[2] for d in details}
    assert len(messages) == 1, messages
    return messages.pop()


def loaders(**names: str) -> dict:
    """Every model loader of the pack, each ending in a preview (so the graph has outputs), with
    its default files unless ``names`` says otherwise."""
    graph = {
        "jl": {"class_type": "AVITS_JavisDiTLoader",
               "inputs": {"dit": "JavisDiT-v0.1-jav-240p4s", "prior": "JavisDiT-v0.1-prior",
                          "video_vae": "OpenSora-VAE-v1.2", "audio_vae": "audioldm2",
                          "t5": "t5xxl_fp16.safetensors", "dtype": "fp32", "device": "cpu"}},
        "ml": {"class_type": "AVITS_MMDisCoLoader",
               "inputs": {"videocrafter2": "videocrafter2/model.ckpt", "auffusion": "auffusion-full",
                          "coupling": "auffusion_videocrafter2_vggsound.pt", "dtype": "fp32",
                          "device": "cpu"}},
        "mg": {"class_type": "AVITS_MMDisCoGenerator",
               "inputs": {"mmdisco": ["ml", 0], "prompt": "a dog barking", "steps": 1, "cfg": 8.0,
                          "joint_scale_video": 8.0, "joint_scale_audio": 1.0, "seconds": 2.0}},
        "ib": {"class_type": "AVITS_ImageBindLoader", "inputs": {"ckpt_name": "imagebind_huge.pth", "dtype": "fp32"}},
        "js": {"class_type": "AVITS_JavisScore", "inputs": {"imagebind": ["ib", 0], "name": "javisscore"}},
        "vrl": {"class_type": "AVITS_VideoRewardLoader", "inputs": {"folder": "VideoReward", "dtype": "fp32"}},
        "vr": {"class_type": "AVITS_VideoReward",
               "inputs": {"videoreward": ["vrl", 0], "outputs": "ta", "name": "videoreward"}},
        "vqa": {"class_type": "AVITS_VQAScore",
                "inputs": {"folder": "Qwen2-VL-2B-Instruct", "dtype": "fp32", "name": "vqascore"}},
    }
    for node in graph.values():
        node["inputs"].update({k: v for k, v in names.items() if k in node["inputs"]})
    for node, output in (("jl", 1), ("mg", 0), ("js", 0), ("vr", 0), ("vqa", 0)):
        graph[f"show_{node}"] = {"class_type": "PreviewAny", "inputs": {"source": [node, output]}}
    return graph


def test_a_javisdit_graph_missing_three_files_is_refused_when_queued_with_all_three_named(comfy, tiny_files):
    graph = json.loads((REPO / "workflows" / "api" / "javisdit_best_of_n_arw.json").read_text())
    graph["5"]["inputs"]["steps"] = 1  # cheap, should it be queued after all
    before = len(comfy.get("/history"))
    with ExitStack() as aside:
        for name in ("javisdit_dit", "javisdit_prior", "javisdit_t5"):
            aside.enter_context(moved_away(tiny_files[name]))
        errors = refusal(comfy, graph)
    assert not {IMAGEBIND_LOADER, VIDEOREWARD_LOADER} & set(errors), "their files are there"
    message = one_message(errors[JAVISDIT_LOADER])
    assert message.startswith("Model files missing (3)")
    models = comfy.base / "models"
    for name, folder, source in [
        ("JavisDiT-v0.1-jav-240p4s", "javisdit", "huggingface.co/JavisVerse/JavisDiT-v0.1-jav-240p4s"),
        ("JavisDiT-v0.1-prior", "javisdit", "huggingface.co/JavisVerse/JavisDiT-v0.1-prior"),
        ("t5xxl_fp16.safetensors", "text_encoders", "huggingface.co/comfyanonymous/flux_text_encoders"),
    ]:
        line = next(line for line in message.splitlines() if f"'{name}'" in line)
        assert f"was not found in models/{folder}/ ({models / folder}" in line and source in line, line
    assert "OpenSora-VAE-v1.2" not in message and "audioldm2" not in message, "those are there"
    assert len(comfy.get("/history")) == before, "nothing ran"


def test_every_model_loader_checks_its_files_when_queued(comfy, tiny_files):
    absent = {"dit": "no-dit", "prior": "no-prior", "video_vae": "no-vae", "audio_vae": "no-audioldm2",
              "t5": "no-t5.safetensors", "videocrafter2": "no-vc2.ckpt", "auffusion": "no-auffusion",
              "coupling": "no-coupling.pt", "ckpt_name": "no-imagebind.pth",
              "folder": "no-folder"}
    errors = refusal(comfy, loaders(**absent))
    assert set(errors) == {"jl", "ml", "ib", "vrl", "vqa"}
    expected = {"jl": ("dit", "prior", "video_vae", "audio_vae", "t5"),
                "ml": ("videocrafter2", "auffusion", "coupling"), "ib": ("ckpt_name",),
                "vrl": ("folder",), "vqa": ("folder",)}
    for node, inputs in expected.items():
        message = one_message(errors[node])
        assert message.startswith(f"Model files missing ({len(inputs)})")
        assert all(f"'{absent[i]}' was not found in models/" in message for i in inputs), message


def test_a_complete_set_of_files_is_accepted_and_loads(comfy, tiny_files):
    entry = comfy.run(loaders(), timeout=600)
    assert {f"show_{n}" for n in ("jl", "mg", "js", "vr", "vqa")} <= set(entry["outputs"])
