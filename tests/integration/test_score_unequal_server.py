"""A file whose audio lasts longer than its picture, scored through AVITS_ScoreAV on the real
server: 4 s of frames at 24 fps with 5 s of sound, JavisScore + AVHScore on the tiny ImageBind
twin (written to the server's models/imagebind/) and AV-Align. The scores equal the library's
benchmark reading of the same tensors, and both outputs say what each verifier used."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from comfyui_avits.core.batch import AVBatch
from comfyui_avits.verifiers import AVHScore, JavisScore
from comfyui_avits.verifiers.av_align import AVAlign
from comfyui_avits.verifiers.imagebind import load_imagebind

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_imagebind  # noqa: E402

pytestmark = pytest.mark.integration

FRAMES, HEIGHT, WIDTH, FPS = 96, 40, 56, 24.0  # 4 s
SAMPLES, RATE = 80000, 16000  # 5 s


@pytest.fixture(scope="module")
def imagebind_file(comfy) -> Path:
    return tiny_imagebind.write(comfy.base / "models")


def graph(samples: int = SAMPLES) -> dict:
    return {"ib": {"class_type": "AVITS_ImageBindLoader",
                   "inputs": {"ckpt_name": "imagebind_huge.pth", "dtype": "fp32"}},
            "js": {"class_type": "AVITS_JavisScore", "inputs": {"imagebind": ["ib", 0], "name": "javisscore"}},
            "ah": {"class_type": "AVITS_AVHScore", "inputs": {"imagebind": ["ib", 0], "name": "avhscore"}},
            "al": {"class_type": "AVITS_AVAlign", "inputs": {"name": "av_align"}},
            "set": {"class_type": "AVITS_VerifierSet",
                    "inputs": {"verifiers.verifier0": ["js", 0], "verifiers.verifier1": ["ah", 0],
                               "verifiers.verifier2": ["al", 0]}},
            "clip": {"class_type": "AVITSTest_Clip",
                     "inputs": {"frames": FRAMES, "height": HEIGHT, "width": WIDTH, "samples": samples,
                                "sample_rate": RATE, "channels": 1}},
            "score": {"class_type": "AVITS_ScoreAV",
                      "inputs": {"images": ["clip", 0], "audio": ["clip", 1], "fps": FPS,
                                 "prompt": "a dog barking", "verifiers": ["set", 0]}},
            "json": {"class_type": "PreviewAny", "inputs": {"source": ["score", 0]}}}


def same_clip(samples: int = SAMPLES) -> AVBatch:
    """The tensors AVITSTest_Clip makes, read as real media."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(FRAMES, HEIGHT, WIDTH, 3, generator=g)
    audio = 0.1 * torch.randn(1, 1, samples, generator=g)
    return AVBatch.media(images[None], FPS, audio, RATE)


def test_a_4_s_video_with_5_s_of_audio_is_scored_as_the_benchmarks_read_it(comfy, imagebind_file):
    entry = comfy.run(graph())
    table = "\n".join(entry["outputs"]["score"]["text"])
    scores = json.loads(entry["outputs"]["json"]["text"][0])
    model = load_imagebind(imagebind_file)
    batch = same_clip()
    expect = {"javisscore": float(JavisScore(model)(batch, [""])[0]),
              "avhscore": float(AVHScore(model)(batch, [""])[0]),
              "av_align": float(AVAlign()(batch, [""])[0])}
    for name, value in expect.items():
        assert scores[name] == pytest.approx(value, abs=1e-5)
    windows = ("the 5 windows of 2 s both streams have (video 5, audio 7): all 4.00 s of video, "
               "the first 4.00 s of 5.00 s of audio")
    assert scores["lengths"] == {
        "audio_seconds": 5.0, "video_seconds": 4.0,
        "verifiers": {"javisscore": windows,
                      "avhscore": "all 96 frames (4.00 s) against the whole audio (5.00 s)",
                      "av_align": "each stream whole, as the reference reads the files: audio "
                                  "onsets over 5.00 s, motion peaks over 4.00 s"}}
    rows, said = table.split("\n\n")
    assert {line.split()[0]: float(line.split()[1]) for line in rows.splitlines()} == pytest.approx(
        expect, abs=2e-6)
    assert said.splitlines()[:2] == ["audio 5.00 s, video 4.00 s:", f"javisscore: {windows}"]


def test_streams_of_the_same_length_say_nothing_more(comfy, imagebind_file):
    entry = comfy.run(graph(samples=64000))
    scores = json.loads(entry["outputs"]["json"]["text"][0])
    assert set(scores) == {"javisscore", "avhscore", "av_align"}
    assert "\n\n" not in "\n".join(entry["outputs"]["score"]["text"])
