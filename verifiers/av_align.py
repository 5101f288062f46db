"""AV-Align: how well the peaks of audio onsets and of optical-flow motion line up in time.

Reproduces the AV-Align metric (Yariv et al., "Diverse and Aligned Audio-to-Video Generation
via Text-to-Video Model Adaptation"): audio peaks are librosa's default onsets (restated in
``onsets``), video peaks are strict local maxima of the mean Farneback flow magnitude, and the
score is the intersection over union of the two peak sets. Two rules are made definite where
the reference leaves them loose: a video peak is matched at most once, and two empty peak sets
score 0 (the reference divides by zero).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import cv2
import numpy as np
import torch

from ..core.batch import AVBatch
from .onsets import onset_times

MIN_PEAK_FLOW = 0.1  # mean flow magnitude (pixels per frame) a video peak needs


def audio_peaks(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times in seconds of a [C, S] or [S] waveform, as ``librosa.load`` (mono, 22050 Hz)
    then ``librosa.onset.onset_detect(units='time')`` would find them."""
    return onset_times(waveform, sample_rate)


def _gray_uint8(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """[T, H, W] uint8 grayscale of [T, H, W, 3] RGB frames in 0..1, quantised as ComfyUI's video
    writers do (scale by 255, clamp, truncate); the reference read 8-bit frames from a file."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().to("cpu", torch.float32).numpy()
    rgb = np.clip(np.nan_to_num(np.asarray(frames, dtype=np.float32) * 255), 0, 255).astype(np.uint8)
    n, h, w, _ = rgb.shape
    return cv2.cvtColor(rgb.reshape(n * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(n, h, w)


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """OpenCV releases the GIL inside Farneback, so frame pairs can run on several cores."""
    return ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1), thread_name_prefix="av_align")


def _mean_flow(prev: np.ndarray, nxt: np.ndarray) -> float:
    flow = cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return cv2.mean(cv2.magnitude(flow[..., 0], flow[..., 1]))[0]


def flow_trajectory(gray: np.ndarray) -> np.ndarray:
    """Mean flow magnitude into each frame of [T, H, W] uint8 frames; frame 0 repeats the first
    pair's value, as in the reference, so there is one value per frame."""
    if len(gray) < 2:
        return np.zeros(len(gray))
    flows = list(_pool().map(_mean_flow, gray[:-1], gray[1:]))
    return np.asarray(flows[:1] + flows)


def _peak_times(trajectory: np.ndarray, fps: float) -> np.ndarray:
    inner = trajectory[1:-1]
    peak = (trajectory[:-2] < inner) & (inner > trajectory[2:]) & (inner >= MIN_PEAK_FLOW)
    return (np.flatnonzero(peak) + 1) / fps


def video_peaks(frames: np.ndarray, fps: float) -> np.ndarray:
    """Times in seconds (frame index / fps) of the motion peaks of [T, H, W, 3] frames in 0..1:
    strict local maxima of the flow trajectory with at least MIN_PEAK_FLOW."""
    return _peak_times(flow_trajectory(_gray_uint8(frames)), fps)


def av_align_iou(audio_times: np.ndarray, video_times: np.ndarray, fps: float) -> float:
    """matches / (|A| + |V| - matches). Audio peaks, in time order, each take the first unused
    video peak strictly within 1/fps of them (the reference's open window), so one video peak
    never counts twice. No peaks at all scores 0."""
    window = 1.0 / fps
    video = np.sort(np.asarray(video_times, dtype=np.float64))
    used = np.zeros(len(video), dtype=bool)
    matches = 0
    for a in np.sort(np.asarray(audio_times, dtype=np.float64)):
        near = ~used & (video - window < a) & (a < video + window)
        if near.any():
            used[np.argmax(near)] = True
            matches += 1
    union = len(audio_times) + len(video) - matches
    return matches / union if union else 0.0


class AVAlign:
    """The AV-Align verifier: one IoU in 0..1 per clip, computed on the CPU; prompts are not
    used. Silent audio or a still video has no peaks on that side and scores 0. Streams of
    different lengths are each read whole, as the reference (and JavisBench's copy of it) reads
    the two files: peaks past the shorter stream's end find no partner and only add to the union."""

    def __init__(self, name: str = "av_align") -> None:
        self.name = name

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        scores = []
        for clip in range(len(batch)):
            audio = batch.audio[clip].detach().to("cpu", torch.float32).numpy()
            a = audio_peaks(audio, batch.sample_rate)
            v = _peak_times(flow_trajectory(_gray_uint8(batch.video[clip])), batch.fps)
            scores.append(av_align_iou(a, v, batch.fps))
        return torch.tensor(scores, dtype=torch.float32)

    def lengths_used(self, batch: AVBatch) -> list[str]:
        """Peaks found over each whole stream (core.lengths)."""
        return [f"each stream whole, as the reference reads the files: audio onsets over "
                f"{batch.audio_seconds:.2f} s, motion peaks over {batch.video_seconds:.2f} s"] * len(batch)
