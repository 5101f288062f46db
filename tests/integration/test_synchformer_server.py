"""DeSync on the real server: the tiny Synchformer twin (scripts/tiny_models) loaded from the
server's models/synchformer/, a clip scored through /prompt with AVITS_ScoreAV, a short clip
refused with its length (or padded), a missing file named with where to get it."""

from __future__ import annotations

import pytest

from comfyctl import ExecutionFailed, QueueRejected
from graphs import moved_away

pytestmark = pytest.mark.integration


def desync_graph(seconds: float = 5.0, fps: int = 25, outputs: str = "desync, sync_prob",
                 short_clips: str = "error") -> dict:
    return {"sf": {"class_type": "AVITS_SynchformerLoader",
                   "inputs": {"ckpt_name": "synchformer_state_dict.pth", "dtype": "fp32"}},
            "ds": {"class_type": "AVITS_DeSync",
                   "inputs": {"synchformer": ["sf", 0], "outputs": outputs, "short_clips": short_clips,
                              "name": "desync"}},
            "clip": {"class_type": "AVITSTest_Clip",
                     "inputs": {"frames": round(seconds * fps), "height": 48, "width": 64,
                                "samples": round(seconds * 44100), "sample_rate": 44100, "channels": 2}},
            "score": {"class_type": "AVITS_ScoreAV",
                      "inputs": {"images": ["clip", 0], "audio": ["clip", 1], "fps": float(fps),
                                 "prompt": "", "verifiers": ["ds", 0]}}}


def scores_of(entry) -> dict:
    lines = "\n".join(entry["outputs"]["score"]["text"]).splitlines()
    return {name: float(value) for name, value in (line.split() for line in lines)}


def test_desync_scores_a_clip_through_the_api(comfy, tiny_files):
    assert tiny_files["synchformer"].name == "synchformer_state_dict.pth"
    scores = scores_of(comfy.run(desync_graph(seconds=6.0, fps=24)))
    assert set(scores) == {"desync", "desync_sync_prob"}
    # -DeSync: minus the mean of two |offsets| on the 0.2 s grid, so a multiple of 0.1 in -2..0
    assert -2 <= scores["desync"] <= 0 and abs(scores["desync"] * 10 - round(scores["desync"] * 10)) < 1e-3
    assert 0 <= scores["desync_sync_prob"] <= 1


def test_a_short_clip_is_refused_with_its_length_or_padded(comfy, tiny_files):
    with pytest.raises(ExecutionFailed, match=r"at least 4\.8 s.*lasts 4 s"):
        comfy.run(desync_graph(seconds=4.0))
    scores = scores_of(comfy.run(desync_graph(seconds=4.0, outputs="desync", short_clips="pad")))
    assert set(scores) == {"desync"} and -2 <= scores["desync"] <= 0
    assert comfy.get("/system_stats")


def test_a_missing_checkpoint_names_the_file_the_folder_and_the_address(comfy, tiny_files):
    with moved_away(tiny_files["synchformer"]), pytest.raises(
            QueueRejected, match=r"'synchformer_state_dict.pth' was not found in models/synchformer/ "
                                 r".*github.com/hkchengrex/MMAudio/releases"):
        comfy.run(desync_graph())
