"""Real media whose audio lasts longer or shorter than its picture (``AVBatch.media``): each
verifier reads the two streams as its benchmark reads such a file and says what it used;
generated clips (the search path) keep the strict equal-length check.

JavisScore is checked against a plain re-computation of JavisBench's windowing written here
(its AVScoreDataset.segment_clip_transform and calc_av_score loops), on the tiny ImageBind twin."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchaudio

from comfyui_avits.core.batch import AVBatch, MediaError
from comfyui_avits.core.lengths import WHOLE, lengths_used
from comfyui_avits.core.verifier import VerifierError
from comfyui_avits.generators.toyav import ToyTextMatch
from comfyui_avits.search.aggregation import WeightedSum
from comfyui_avits.search.strategies import BestOfNConfig, best_of_n
from comfyui_avits.verifiers import AVHScore, ImageBindScore, JavisScore
from comfyui_avits.verifiers.av_align import AVAlign, audio_peaks, av_align_iou, video_peaks
from comfyui_avits.verifiers.imagebind import embedder, load_imagebind
from comfyui_avits.verifiers.imagebind import preprocess as P
from comfyui_avits.verifiers.synchformer import DeSync, load_synchformer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiny_imagebind  # noqa: E402
import tiny_synchformer  # noqa: E402
from fakes import CountingGenerator, Mean  # noqa: E402


@pytest.fixture(scope="module")
def imagebind(tmp_path_factory):
    return load_imagebind(tiny_imagebind.write(tmp_path_factory.mktemp("models")))


def media(video_s: float, audio_s: float, fps: float = 24.0, sr: int = 16000, channels: int = 1,
          size=(40, 56), seed: int = 0) -> AVBatch:
    g = torch.Generator().manual_seed(seed)
    return AVBatch.media(torch.rand(1, round(video_s * fps), *size, 3, generator=g), fps,
                         0.2 * torch.randn(1, channels, round(audio_s * sr), generator=g), sr)


# ---- the strict check stays for generated clips -------------------------------------------------

def test_generated_clips_must_match_and_real_media_keeps_each_length():
    video, audio = torch.rand(1, 96, 8, 8, 3), torch.zeros(1, 1, 80000)
    with pytest.raises(MediaError, match="video lasts 4.000 s .* audio lasts 5.000 s.*trim or pad"):
        AVBatch(video, 24.0, audio, 16000)
    batch = AVBatch.media(video, 24.0, audio, 16000)
    assert batch.own_lengths and not batch.lengths_match
    assert batch.lengths() == "audio 5.00 s, video 4.00 s"
    assert batch.clip(0).own_lengths and not AVBatch(video, 24.0, audio[..., :64000], 16000).own_lengths
    with pytest.raises(MediaError, match="audio is empty"):  # the other checks still hold
        AVBatch.media(video, 24.0, audio[..., :0], 16000)


class _LongerAudio(CountingGenerator):
    """Decodes clips of 1 s of picture and 2 s of sound, as a broken decoder might."""

    def decode(self, states):
        good = super().decode(states)
        return AVBatch(good.video, good.fps, torch.zeros(len(states), 1, 800), good.sample_rate)


def test_the_search_refuses_generated_clips_whose_lengths_differ():
    with pytest.raises(MediaError, match="video lasts 1.000 s .* audio lasts 2.000 s"):
        best_of_n(_LongerAudio(steps=4), [Mean("m", "audio")], WeightedSum(), BestOfNConfig(n=2))


# ---- JavisScore: JavisBench's windowing, written out loop by loop --------------------------------

def _benchmark_javisscore(model, frames: torch.Tensor, fps: float, audio: torch.Tensor,
                          sr: int) -> tuple[float, int]:
    """JavisBench: every frame an image; the audio at 16 kHz; video windows of int(2 fps) frames
    every int(2 fps) - int(1.5 fps), audio windows of 32000 samples every 8000, each start
    clamped to the end and stopping at the first window that reaches it; the first M of each,
    M the smaller count; per window the mean of the int(0.4 N) smallest frame-audio cosines
    (the window's audio is 3 identical 2 s clips); the mean over windows."""
    with torch.no_grad():
        images = model({"vision": P.images(frames)})["vision"]
    wave = torchaudio.functional.resample(audio.float(), sr, 16000) if sr != 16000 else audio.float()
    v_size, v_over = int(2.0 * fps), int(1.5 * fps)
    a_size, a_over = int(2.0 * 16000), int(1.5 * 16000)
    n_v, n_a = len(frames), wave.shape[1]
    assert n_v > v_size and n_a > a_size  # the windowed case
    video_windows, audio_clips = [], []
    for start in range(0, n_v, v_size - v_over):
        start = min(start, n_v - v_size)
        video_windows.append((start, start + v_size))
        if start + v_size >= n_v:
            break
    for start in range(0, n_a, a_size - a_over):
        start = min(start, n_a - a_size)
        audio_clips.append(wave[:, start:start + a_size])
        if start + a_size >= n_a:
            break
    m = min(len(video_windows), len(audio_clips))
    window_scores = []
    for (v0, v1), clip in zip(video_windows[:m], audio_clips[:m]):
        with torch.no_grad():
            a = model({"audio": torch.stack([P.fbank(clip)] * 3)[None]})["audio"][0]
        cos = sorted(float(F.cosine_similarity(images[j], a, dim=0, eps=1e-6)) for j in range(v0, v1))
        k = int(0.4 * (v1 - v0))
        window_scores.append(sum(cos[:k]) / k)
    return sum(window_scores) / m, m


@pytest.mark.parametrize("video_s,audio_s,sr,channels,windows,used", [
    (4.0, 5.0, 16000, 1, 5, "the 5 windows of 2 s both streams have (video 5, audio 7): all 4.00 s "
                            "of video, the first 4.00 s of 5.00 s of audio"),
    (4.0, 5.0, 48000, 2, 5, "the 5 windows of 2 s both streams have (video 5, audio 7): all 4.00 s "
                            "of video, the first 4.00 s of 5.00 s of audio"),
    (5.0, 4.0, 16000, 1, 5, "the 5 windows of 2 s both streams have (video 7, audio 5): the first "
                            "4.00 s of 5.00 s of video, all 4.00 s of audio"),
    # 98 frames: the last video window is clamped back to frame 50, while the 6th audio window
    # starts at 2.5 s as the benchmark pairs them (trimming the audio first would move it)
    (98 / 24, 5.0, 16000, 1, 6, "the 6 windows of 2 s both streams have (video 6, audio 7): all "
                                "4.08 s of video, the first 4.50 s of 5.00 s of audio"),
])
def test_javisscore_scores_the_windows_both_streams_have_as_javisbench(imagebind, video_s, audio_s,
                                                                       sr, channels, windows, used):
    batch = media(video_s, audio_s, sr=sr, channels=channels)
    verifier = JavisScore(imagebind)
    expect, m = _benchmark_javisscore(imagebind, batch.video[0], 24.0, batch.audio[0], sr)
    assert m == windows
    assert float(verifier(batch, [""])[0]) == pytest.approx(expect, abs=1e-5)
    assert lengths_used([verifier], batch) == {"javisscore": [used]}


def test_a_clip_shorter_than_a_window_is_one_window_with_the_whole_audio(imagebind):
    batch = media(1.5, 3.0)
    verifier = JavisScore(imagebind)
    frames = embedder(imagebind).frames(batch)[0]
    whole = embedder(imagebind).audio(batch)[0]
    cos = F.cosine_similarity(frames, whole[None], dim=-1, eps=1e-6).sort().values
    assert float(verifier(batch, [""])[0]) == pytest.approx(float(cos[:int(0.4 * 36)].mean()), abs=1e-6)
    assert verifier.lengths_used(batch) == ["one window: all 36 frames (1.50 s) against the whole "
                                            "audio (3.00 s)"]


# ---- AVHScore, TV/TA/AV-IB: each stream whole ---------------------------------------------------

def test_avhscore_and_imagebind_scores_read_each_stream_whole(imagebind):
    batch = media(4.0, 5.0, seed=3)
    # the same streams, each in a batch of its own with a partner of its own length
    alone_v = AVBatch(batch.video, 24.0, torch.zeros(1, 1, 64000), 16000)
    alone_a = AVBatch(torch.zeros(1, 120, 8, 8, 3), 24.0, batch.audio, 16000)
    e = embedder(imagebind)
    frames, video = e.frames(alone_v)[0], e.video(alone_v)[0]
    audio = e.audio(alone_a)[0]
    avh = float(AVHScore(imagebind)(batch, [""])[0])
    assert avh == pytest.approx(float(F.cosine_similarity(frames, audio[None], eps=1e-6).mean()), abs=1e-6)
    av = float(ImageBindScore(imagebind, ("av",))(batch, [""])["av_ib"][0])
    assert av == pytest.approx(float(F.cosine_similarity(audio, video, dim=0, eps=1e-6)), abs=1e-6)
    said = lengths_used([AVHScore(imagebind), ImageBindScore(imagebind, ("tv", "av"))], batch)
    assert said == {"avhscore": ["all 96 frames (4.00 s) against the whole audio (5.00 s)"],
                    "imagebind": ["each stream whole (audio 5.00 s, video 4.00 s)"]}


# ---- AV-Align: each stream whole, as its reference reads the files -------------------------------

def test_av_align_reads_each_stream_whole_so_late_onsets_stay_unmatched():
    fps, sr, frames, size = 24.0, 16000, 48, 64
    speed = np.zeros(frames)
    for p in (8, 20, 32, 42):  # motion bursts peaking at these frames
        speed[p - 2:p + 3] = (1, 2, 4, 2, 1)
    x = (4 + np.cumsum(speed)).astype(int)
    video = np.full((frames, size, size, 3), 0.1, np.float32)
    for i in range(frames):
        video[i, 26:38, x[i]:x[i] + 12] = 0.9
    audio = np.zeros(int(2.5 * sr), np.float32)  # 0.5 s longer than the picture
    for t in (8 / fps, 20 / fps, 32 / fps, 42 / fps, 2.25):  # a click per burst, one after the end
        audio[int(t * sr):int(t * sr) + 10] = 1.0
    batch = AVBatch.media(torch.from_numpy(video)[None], fps, torch.from_numpy(audio)[None, None], sr)
    a, v = audio_peaks(audio, sr), video_peaks(video, fps)
    assert len(a) == 5 and len(v) == 4 and a.max() > 2.0
    score = float(AVAlign()(batch, [""])[0])
    assert score == pytest.approx(av_align_iou(a, v, fps)) and score == pytest.approx(4 / 5)
    assert lengths_used([AVAlign()], batch) == {"av_align": [
        "each stream whole, as the reference reads the files: audio onsets over 2.50 s, motion "
        "peaks over 2.00 s"]}


# ---- DeSync: both streams cut to the shorter, as av-benchmark cuts a file to one duration ---------

def test_desync_trims_the_longer_stream_to_the_shorter(tmp_path):
    model = load_synchformer(tiny_synchformer.write(tmp_path))
    verifier = DeSync(model, ("desync", "sync_prob"))
    for video_s, audio_s, longer in ((5.0, 6.0, "audio"), (6.0, 5.0, "video")):
        batch = media(video_s, audio_s, fps=25.0, size=(18, 30), seed=4)
        cut = AVBatch(batch.video[:, :125], 25.0, batch.audio[..., :80000], 16000)  # both 5 s
        assert torch.equal(verifier.window_logits(batch), verifier.window_logits(cut))
        assert verifier.lengths_used(batch) == [f"trimmed {longer} to 5.00 s, the shorter stream's length"]
    padded = DeSync(model, short_clips="pad")
    assert padded.lengths_used(media(4.0, 4.5, fps=25.0, size=(18, 30))) == [
        "trimmed audio to 4.00 s, the shorter stream's length, then padded to 4.80 s"]


# ---- what is said, and when -------------------------------------------------------------------

def test_nothing_is_said_when_the_lengths_match_and_a_verifier_without_a_rule_reads_both_whole():
    assert lengths_used([ToyTextMatch()], media(2.0, 2.02)) == {}
    assert lengths_used([ToyTextMatch()], media(2.0, 3.0)) == {"toy_text_match": [WHOLE]}

    class Miscounts:
        name = "miscounts"

        def lengths_used(self, batch):
            return []

    with pytest.raises(VerifierError, match="'miscounts' described 0 clips of 1"):
        lengths_used([Miscounts()], media(2.0, 3.0))
