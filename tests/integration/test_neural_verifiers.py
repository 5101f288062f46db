"""The neural verifier nodes on the real server, loading tiny random checkpoints in the official
formats from the server's models folder (written by scripts/tiny_models): each verifier through
/prompt, a search over ToyAV with JavisScore + AV-Align, missing and wrong files, bad media."""

from __future__ import annotations

import json
import pytest
import torch

from comfyctl import ExecutionFailed, QueueRejected
from graphs import load, moved_away, report_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models(tiny_files):
    return tiny_files


IMAGEBIND = {"ib": {"class_type": "AVITS_ImageBindLoader",
                    "inputs": {"ckpt_name": "imagebind_huge.pth", "dtype": "auto"}},
             "js": {"class_type": "AVITS_JavisScore", "inputs": {"imagebind": ["ib", 0], "name": "javisscore"}},
             "ah": {"class_type": "AVITS_AVHScore", "inputs": {"imagebind": ["ib", 0], "name": "avhscore"}},
             "is": {"class_type": "AVITS_ImageBindScore",
                    "inputs": {"imagebind": ["ib", 0], "metrics": "tv, ta, av", "name": "imagebind"}},
             "set": {"class_type": "AVITS_VerifierSet",
                     "inputs": {"verifiers.verifier0": ["js", 0], "verifiers.verifier1": ["ah", 0], "verifiers.verifier2": ["is", 0]}}}


def score_graph(frames=48, height=64, width=80, samples=32000, sample_rate=16000, channels=1,
                verifiers=("set", 0)) -> dict:
    return {**json.loads(json.dumps(IMAGEBIND)),
            "clip": {"class_type": "AVITSTest_Clip",
                     "inputs": {"frames": frames, "height": height, "width": width, "samples": samples,
                                "sample_rate": sample_rate, "channels": channels}},
            "score": {"class_type": "AVITS_ScoreAV",
                      "inputs": {"images": ["clip", 0], "audio": ["clip", 1], "fps": 24.0,
                                 "prompt": "a dog barking", "verifiers": list(verifiers)}}}


def scores_of(entry) -> dict:
    """The table the node shows, read back: one 'reward  value' line each (then, after a blank
    line, what each verifier used when audio and frames last differently)."""
    lines = "\n".join(entry["outputs"]["score"]["text"]).split("\n\n")[0].splitlines()
    return {name: float(value) for name, value in (line.split() for line in lines)}


def test_every_imagebind_verifier_scores_a_clip_through_the_api(comfy, models):
    entry = comfy.run(score_graph(frames=102, samples=68000))
    scores = scores_of(entry)
    assert set(scores) == {"javisscore", "avhscore", "tv_ib", "ta_ib", "av_ib"}
    assert all(-1 <= v <= 1 for v in scores.values())


def test_a_search_over_toyav_with_javisscore_and_av_align(comfy, models):
    graph = load("toyav_evosearch", "neural", population_sizes="3, 3, 3", elites=1)
    graph.update({k: v for k, v in IMAGEBIND.items() if k in ("ib", "js")})
    graph["4"]["inputs"] = {"verifiers.verifier0": ["js", 0], "verifiers.verifier1": ["3", 0]}
    graph["5"]["inputs"]["reset"] = True
    report = report_of(comfy.run(graph, timeout=600))
    assert report["method"] == "evosearch" and len(report["candidates"]) == 7
    for c in report["candidates"]:
        assert set(c["rewards"]) == {"javisscore", "av_align"} and -1 <= c["rewards"]["javisscore"] <= 1
    assert set(report["aggregator"]["sigmas"]) == {"javisscore", "av_align"}


def test_a_missing_or_wrong_checkpoint_says_which_file_where_and_where_to_get_it(comfy, models):
    path = models["imagebind"]
    with moved_away(path), pytest.raises(QueueRejected, match=r"'imagebind_huge.pth' was not "
                                                              r"found in models/imagebind/ "
                                                              r".*dl.fbaipublicfiles.com"):
        comfy.run(score_graph())
    state = torch.load(path, weights_only=True)
    state["modality_heads.audio.2.weight"] = torch.zeros(3, 3)
    torch.save(state, path.with_name("wrong.pth"))
    graph = score_graph()
    graph["ib"]["inputs"]["ckpt_name"] = "wrong.pth"
    with pytest.raises(ExecutionFailed, match="does not fit the ImageBind architecture.*modality_heads.audio"):
        comfy.run(graph)
    assert comfy.get("/system_stats")


@pytest.mark.parametrize("media,expect", [
    ({"frames": 1, "samples": 16000 // 24}, "score"),                     # a single frame
    ({"height": 20, "width": 12}, "score"),                               # smaller than 224
    ({"sample_rate": 48000, "samples": 96000, "channels": 2}, "score"),   # stereo 48 kHz
    ({"samples": 0}, "the audio is empty"),                               # zero-length audio
    ({"samples": 64000}, "score"),                                        # 2 s of video, 4 s of audio
    ({"frames": 0}, "the video is empty|no clips"),                       # no frames
])
def test_bad_media_gives_a_score_or_a_clear_error_and_the_server_stays_up(comfy, models, media, expect):
    graph = score_graph(**media)
    if expect == "score":
        scores = scores_of(comfy.run(graph))
        assert len(scores) == 5 and all(abs(v) <= 1 for v in scores.values())
    else:
        with pytest.raises((ExecutionFailed, QueueRejected), match=expect):
            comfy.run(graph)
    assert comfy.get("/system_stats")


def test_the_shipped_javisscore_workflow_runs_on_the_tiny_models(comfy, models):
    graph = load("toyav_evosearch_javisscore", "shipped-javisscore")
    graph["5"]["inputs"]["reset"] = True
    report = report_of(comfy.run(graph, timeout=600))
    assert len(report["candidates"]) == 11
    assert set(report["candidates"][0]["rewards"]) == {"toy_text_match", "javisscore"}


QWEN = {"vrl": {"class_type": "AVITS_VideoRewardLoader",
                "inputs": {"folder": "VideoReward", "dtype": "fp32"}},
        "vr": {"class_type": "AVITS_VideoReward",
               "inputs": {"videoreward": ["vrl", 0], "outputs": "vq, mq, ta, overall", "name": "videoreward"}},
        "vqa": {"class_type": "AVITS_VQAScore",
                "inputs": {"folder": "Qwen2-VL-2B-Instruct", "dtype": "fp32", "name": "vqascore"}},
        "qset": {"class_type": "AVITS_VerifierSet", "inputs": {"verifiers.verifier0": ["vr", 0], "verifiers.verifier1": ["vqa", 0]}}}


def test_videoreward_and_vqascore_score_a_clip_through_the_api(comfy, models):
    graph = {**score_graph(verifiers=("qset", 0)), **json.loads(json.dumps(QWEN))}
    scores = scores_of(comfy.run(graph, timeout=600))
    assert set(scores) == {"videoreward_vq", "videoreward_mq", "videoreward_ta",
                           "videoreward_overall", "vqascore"}
    parts = scores["videoreward_vq"] + scores["videoreward_mq"] + scores["videoreward_ta"]
    assert scores["videoreward_overall"] == pytest.approx(parts, abs=1e-5)
    assert 0 <= scores["vqascore"] <= 1


def test_a_missing_qwen_folder_says_what_to_put_where(comfy, models):
    graph = {**score_graph(verifiers=("qset", 0)), **json.loads(json.dumps(QWEN))}
    with moved_away(models["videoreward"]), pytest.raises(
            QueueRejected, match=r"'VideoReward' was not found in models/videoreward/"
                                 r".*huggingface.co/KwaiVGI/VideoReward"):
        comfy.run(graph)


def cached(entry: dict) -> set[str]:
    """The nodes ComfyUI took from its cache in this run."""
    return {n for kind, data in entry["status"]["messages"] if kind == "execution_cached"
            for n in data.get("nodes", [])}


def test_a_weight_file_replaced_inside_a_videoreward_folder_loads_again(comfy, models):
    graph = {**score_graph(verifiers=("vr", 0)), **{k: v for k, v in json.loads(json.dumps(QWEN)).items()
                                                     if k in ("vrl", "vr")}}
    graph["vr"]["inputs"]["outputs"] = "ta"
    first = scores_of(comfy.run(graph, timeout=600))
    graph["score"]["inputs"]["fps"] = 25.0  # the scoring node runs again; the loader need not
    assert "vrl" in cached(comfy.run(graph, timeout=600))
    weights = next(models["videoreward"].glob("checkpoint-*")) / "model.pth"
    original = weights.read_bytes()
    state = torch.load(weights, weights_only=True)
    head = next(k for k in state if "rm_head" in k and k.endswith("weight"))
    state[head] = state[head] * 2  # the same file name and size, other weights
    try:
        torch.save(state, weights)
        graph["score"]["inputs"]["fps"] = 24.0
        again = comfy.run(graph, timeout=600)
    finally:
        weights.write_bytes(original)
    assert "vrl" not in cached(again) and scores_of(again) != first
