"""AV-Align: the IoU rule, the librosa-default onset detector, Farneback motion peaks, and the
batched verifier on synthetic clips whose peaks are known."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from comfyui_avits.verifiers.av_align import AVAlign, audio_peaks, av_align_iou, video_peaks
from comfyui_avits.core.verifier import Verifier
from comfyui_avits.core.batch import AVBatch
from comfyui_avits.verifiers.onsets import onset_times

HOP_SECONDS = 512 / 22050
FPS = 24.0
FRAMES, SIZE, SAMPLE_RATE = 48, 64, 16000
MOTION_FRAMES = (8, 20, 32, 42)


def clicks(times: list[float], sample_rate: int, seconds: float) -> np.ndarray:
    y = np.zeros(int(round(sample_rate * seconds)), np.float32)
    for t in times:
        i = int(t * sample_rate)
        y[i:i + 10] = 1.0
    return y


def moving_square(peak_frames=MOTION_FRAMES, bump=(1, 2, 4, 2, 1)) -> np.ndarray:
    """A 12 px square that rests, then moves right in a short burst whose fastest step lands
    on each of ``peak_frames``."""
    speed = np.zeros(FRAMES)
    for p in peak_frames:
        speed[p - 2:p + 3] = bump
    x = (4 + np.cumsum(speed)).astype(int)
    frames = np.full((FRAMES, SIZE, SIZE, 3), 0.1, np.float32)
    for i in range(FRAMES):
        frames[i, 26:38, x[i]:x[i] + 12] = 0.9
    return frames


def synced_clip(shift_seconds: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    audio = clicks([p / FPS for p in MOTION_FRAMES], SAMPLE_RATE, FRAMES / FPS)
    return moving_square(), np.roll(audio, int(shift_seconds * SAMPLE_RATE))[None]


def batch_of(*clips: tuple[np.ndarray, np.ndarray]) -> AVBatch:
    video = torch.from_numpy(np.stack([v for v, _ in clips]))
    audio = torch.from_numpy(np.stack([a for _, a in clips]))
    return AVBatch(video, FPS, audio, SAMPLE_RATE)


# --- IoU rule ---------------------------------------------------------------------------------

def test_iou_counts_matches_inside_the_window():
    # 0.50 meets 0.52 (within 1/24 s); 1.0 and 2.0 are unmatched: 1 / (2 + 2 - 1).
    assert av_align_iou([0.5, 1.0], [0.52, 2.0], FPS) == pytest.approx(1 / 3)
    assert av_align_iou([0.5, 1.0], [0.5, 1.0], FPS) == 1.0


def test_iou_matches_a_video_peak_at_most_once():
    # Both audio peaks are near the one video peak; only one may claim it: 1 / (2 + 1 - 1).
    assert av_align_iou([1.0, 1.01], [1.0], FPS) == 0.5


def test_iou_greedy_takes_the_first_unused_video_peak():
    # 1.00 takes 0.99 (the first within its window), leaving 1.05 for 1.03.
    assert av_align_iou([1.0, 1.03], [0.99, 1.05], FPS) == 1.0


def test_iou_window_is_open():
    # Exactly 1/fps apart is outside the window, as in the reference's strict inequalities.
    assert av_align_iou([1.0], [1.25], 4.0) == 0.0
    assert av_align_iou([1.0], [1.2499], 4.0) == 1.0


def test_iou_of_empty_sets_is_zero():
    assert av_align_iou([], [], FPS) == 0.0
    assert av_align_iou([], [1.0], FPS) == 0.0
    assert av_align_iou(np.array([0.3, 0.6]), np.array([]), FPS) == 0.0


# --- audio onsets -----------------------------------------------------------------------------

@pytest.mark.parametrize("sample_rate", [16000, 22050, 44100, 48000])
def test_onsets_find_clicks_within_one_hop(sample_rate):
    times = [0.3, 0.71, 1.234, 2.0, 2.61]
    found = audio_peaks(clicks(times, sample_rate, 3.0), sample_rate)
    assert len(found) == len(times)
    assert np.all(np.abs(found - times) <= HOP_SECONDS)


def test_onsets_mix_channels_to_mono():
    mono = clicks([0.4, 1.1], SAMPLE_RATE, 1.5)
    stereo = np.stack([mono, 0.5 * mono])
    np.testing.assert_array_equal(audio_peaks(stereo, SAMPLE_RATE), audio_peaks(mono, SAMPLE_RATE))


@pytest.mark.parametrize("audio", [np.zeros((2, 32000)), np.zeros(100), np.full(32000, np.nan),
                                   np.ones(50)], ids=["silence", "tiny", "nan", "dc-blip"])
def test_onsets_of_degenerate_audio_are_empty_and_quiet(audio):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(audio_peaks(audio, SAMPLE_RATE)) == 0


# --- video peaks ------------------------------------------------------------------------------

def test_video_peaks_land_on_the_fastest_frames():
    np.testing.assert_allclose(video_peaks(moving_square(), FPS), np.array(MOTION_FRAMES) / FPS)


def test_static_or_short_video_has_no_peaks():
    still = np.full((FRAMES, SIZE, SIZE, 3), 0.5, np.float32)
    assert len(video_peaks(still, FPS)) == 0
    assert len(video_peaks(moving_square()[:2], FPS)) == 0
    assert len(video_peaks(moving_square()[:1], FPS)) == 0


# --- the verifier -----------------------------------------------------------------------------

def test_synced_clip_beats_the_same_clip_with_shifted_audio():
    scores = AVAlign()(batch_of(synced_clip(), synced_clip(0.25)), ["", ""])
    assert scores[0] == 1.0
    assert scores[0] > scores[1]


def test_batched_call_returns_float32_per_clip_and_zero_for_silent_or_static():
    video, audio = synced_clip()
    still = np.repeat(video[:1], FRAMES, axis=0)
    clips = [(video, audio), (video, np.zeros_like(audio)), (still, audio)]
    verifier = AVAlign()
    assert isinstance(verifier, Verifier) and verifier.name == "av_align"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = verifier(batch_of(*clips), ["a", "b", "c"])
    assert scores.shape == (3,) and scores.dtype == torch.float32
    assert torch.isfinite(scores).all()
    assert scores.tolist() == [1.0, 0.0, 0.0]
    assert AVAlign("sync").name == "sync"


# --- against librosa (installed in the test environment) ----------------------------------

def _reference_signals(sample_rate: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(3 * sample_rate) / sample_rate
    tones = sum(np.sin(2 * np.pi * 330 * 2 ** (k / 4) * (t - t0)) * np.exp(-6 * (t - t0)) * (t >= t0)
                for k, t0 in enumerate([0.2, 0.9, 1.3, 2.2]))
    bursts = 0.001 * rng.standard_normal(len(t))
    for t0 in [0.5, 1.1, 2.4]:
        i = int(t0 * sample_rate)
        bursts[i:i + 2000] += rng.standard_normal(2000) * np.exp(-np.arange(2000) / 400)
    return [clicks([0.3, 1.0, 1.7, 2.5], sample_rate, 3.0), 0.5 * tones, bursts,
            np.zeros(len(t))]


@pytest.mark.parametrize("sample_rate", [22050, 16000, 48000])
def test_onsets_agree_with_librosa(sample_rate):
    import librosa

    for y in _reference_signals(sample_rate):
        y = y.astype(np.float32)
        y22 = librosa.resample(y, orig_sr=sample_rate, target_sr=22050)
        expected = librosa.onset.onset_detect(y=y22, sr=22050, units="time")
        np.testing.assert_allclose(onset_times(y, sample_rate), expected, atol=1e-9)
