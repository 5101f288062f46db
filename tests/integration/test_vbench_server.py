"""VBench quality on the real server: the tiny twins (scripts/tiny_models) in the server's
models/vbench/, a clip scored through /prompt with AVITS_VBenchQuality -> AVITS_ScoreAV, the
rewards the library's on the same frames; a missing file refused when queued, named with where
to get it."""

from __future__ import annotations

import pytest
import torch

from comfyctl import QueueRejected
from comfyui_avits.verifiers import AVBatch, vbench
from graphs import moved_away

pytestmark = pytest.mark.integration

FRAMES, HEIGHT, WIDTH, FPS = 5, 128, 160, 8  # AMT-S needs 128 px a side


def quality_graph(**flags: bool) -> dict:
    switches = {name: flags.get(name, True) for name in vbench.DIMENSIONS}
    return {"q": {"class_type": "AVITS_VBenchQuality", "inputs": {**switches, "dtype": "fp32"}},
            "clip": {"class_type": "AVITSTest_Clip",
                     "inputs": {"frames": FRAMES, "height": HEIGHT, "width": WIDTH,
                                "samples": FRAMES * 2000, "sample_rate": FPS * 2000, "channels": 1}},
            "score": {"class_type": "AVITS_ScoreAV",
                      "inputs": {"images": ["clip", 0], "audio": ["clip", 1], "fps": float(FPS),
                                 "prompt": "", "verifiers": ["q", 0]}}}


def scores_of(entry) -> dict:
    lines = "\n".join(entry["outputs"]["score"]["text"]).splitlines()
    return {name: float(value) for name, value in (line.split() for line in lines)}


def test_the_quality_node_scores_a_clip_as_the_library_does(comfy, tiny_files):
    scores = scores_of(comfy.run(quality_graph()))
    assert list(scores) == list(vbench.DIMENSIONS)
    g = torch.Generator().manual_seed(0)  # AVITSTest_Clip's frames and sound
    images = torch.rand(FRAMES, HEIGHT, WIDTH, 3, generator=g)
    sound = 0.1 * torch.randn(1, 1, FRAMES * 2000, generator=g)
    batch = AVBatch(images[None], float(FPS), sound, FPS * 2000)
    for verifier in vbench.load(list(vbench.DIMENSIONS), tiny_files["vbench"]):
        assert scores[verifier.name] == pytest.approx(float(verifier(batch, [""])[0]), abs=2e-6)
    only = scores_of(comfy.run(quality_graph(subject_consistency=False)))
    assert "subject_consistency" not in only and len(only) == len(scores) - 1


def test_a_missing_file_is_refused_when_queued_with_where_to_get_it(comfy, tiny_files):
    with moved_away(tiny_files["vbench"] / "clip-vit-large-patch14.safetensors"), pytest.raises(
            QueueRejected, match=r"'clip-vit-large-patch14.safetensors' was not found in models/vbench/ "
                                 r".*huggingface.co/openai/clip-vit-large-patch14/resolve/main/model"):
        comfy.run(quality_graph())
    # a dimension that does not need the file still runs without it
    with moved_away(tiny_files["vbench"] / "clip-vit-large-patch14.safetensors"):
        assert "background_consistency" in scores_of(comfy.run(quality_graph(aesthetic_quality=False)))
    with pytest.raises(QueueRejected, match="switch on at least one VBench dimension"):
        comfy.run(quality_graph(**{name: False for name in vbench.DIMENSIONS}))
