"""The ImageBind scores of the paper (as its reference implementation computes them): JavisScore (audio-video
synchrony over sliding 2 s windows), AVHScore (frames against the whole clip's audio), and the
TV / TA / AV cosine similarities. Each takes an ImageBindModel (or the embedder of one) and
scores an AVBatch; all of them read the same cached embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...core.batch import AVBatch
from .embed import (WINDOW_HOP_SAMPLES, WINDOW_HOP_SECONDS, WINDOW_SAMPLES, WINDOW_SECONDS,
                    ImageBindEmbedder, embedder)
from .preprocess import SAMPLE_RATE, window_starts

TOPK_MIN = 0.4


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a, b, dim=-1, eps=1e-6)


class _ImageBindVerifier:
    kind = ""

    def __init__(self, model, name: str) -> None:
        self.embedder: ImageBindEmbedder = embedder(model)
        self.name = name

    @property
    def identity(self) -> str:
        return f"{self.name}:{self.kind}(imagebind {self.embedder.fingerprint})"

    def models(self) -> list[torch.nn.Module]:
        return [self.embedder.model]


class JavisScore(_ImageBindVerifier):
    """Audio-video synchrony: over windows of 2 s (stride 0.5 s) of frames and of audio, the
    mean of the 40 % lowest frame-audio cosines per window, averaged over windows. A clip no
    longer than one window is one window over all frames with the whole clip's audio. Streams of
    different lengths each get their own windows and the first M of each are paired, M the
    smaller count (JavisBench's rule): the windows both streams have."""

    kind = "JavisScore"

    def __init__(self, model, name: str = "javisscore") -> None:
        super().__init__(model, name)

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        frames = self.embedder.frames(batch)
        size = _window_frames(batch.fps)[0]
        plans = self._windows(batch)
        whole = self.embedder.audio(batch) if None in plans else None
        windows = self.embedder.audio_windows(batch) if any(plans) else None
        scores = []
        for i, f in enumerate(frames):
            if plans[i] is None:
                pairs = [(f, whole[i])]
            else:
                video, audio = plans[i]
                m = min(len(video), len(audio))
                pairs = [(f[s:s + size], windows[i][j]) for j, s in enumerate(video[:m])]
            scores.append(torch.stack([_lowest_mean(_cos(fr, a[None])) for fr, a in pairs]).mean())
        return torch.stack(scores)

    def _windows(self, batch: AVBatch) -> list[tuple[list[int], list[int]] | None]:
        """Per clip, the starts of all its video windows (frames) and audio windows (16 kHz
        samples), each stream by its own length; None for a clip no longer than one window."""
        size, stride = _window_frames(batch.fps)
        t = batch.video.shape[1]
        out = []
        for a in self.embedder.audio16(batch):
            s = a.shape[-1]
            out.append(None if t <= size or s <= WINDOW_SAMPLES else
                       (window_starts(t, size, stride), window_starts(s, WINDOW_SAMPLES, WINDOW_HOP_SAMPLES)))
        return out

    def lengths_used(self, batch: AVBatch) -> list[str]:
        """Which windows each clip was scored on, and how much of each stream they cover."""
        size = _window_frames(batch.fps)[0]
        t, said = batch.video.shape[1], []
        for a, plan in zip(self.embedder.audio16(batch), self._windows(batch)):
            s = a.shape[-1]
            if plan is None:
                said.append(f"one window: all {t} frames ({t / batch.fps:.2f} s) against the whole "
                            f"audio ({s / SAMPLE_RATE:.2f} s)")
                continue
            video, audio = plan
            m = min(len(video), len(audio))
            said.append(f"the {m} windows of {WINDOW_SECONDS:g} s both streams have (video "
                        f"{len(video)}, audio {len(audio)}): "
                        f"{_span('video', video[m - 1] + size, t, batch.fps)}, "
                        f"{_span('audio', audio[m - 1] + WINDOW_SAMPLES, s, SAMPLE_RATE)}")
        return said


def _window_frames(fps: float) -> tuple[int, int]:
    """A JavisScore video window's size and stride in frames (int(2 fps), int(2 fps) - int(1.5 fps))."""
    size = int(WINDOW_SECONDS * fps)
    return size, size - int((WINDOW_SECONDS - WINDOW_HOP_SECONDS) * fps)


def _span(stream: str, covered: int, total: int, rate: float) -> str:
    """"all 4.00 s of video" or "the first 4.00 s of 5.00 s of audio"."""
    if covered >= total:
        return f"all {total / rate:.2f} s of {stream}"
    return f"the first {covered / rate:.2f} s of {total / rate:.2f} s of {stream}"


def _lowest_mean(cos: torch.Tensor) -> torch.Tensor:
    """The mean of the int(0.4 N) smallest values (at least one)."""
    k = max(1, int(TOPK_MIN * len(cos)))
    return torch.topk(cos, k, largest=False).values.mean()


class AVHScore(_ImageBindVerifier):
    """Audio-visual harmony: the mean over all frames of cos(frame, the clip's audio). Streams
    of different lengths are each read whole, as JavisBench reads the two files."""

    kind = "AVHScore"

    def __init__(self, model, name: str = "avhscore") -> None:
        super().__init__(model, name)

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        audio = self.embedder.audio(batch)
        return torch.stack([_cos(f, audio[i][None]).mean()
                            for i, f in enumerate(self.embedder.frames(batch))])

    def lengths_used(self, batch: AVBatch) -> list[str]:
        """Every frame and the whole audio, whatever their lengths (core.lengths)."""
        return [f"all {batch.video.shape[1]} frames ({batch.video_seconds:.2f} s) against the "
                f"whole audio ({batch.audio_seconds:.2f} s)"] * len(batch)


METRICS = {"tv": ("text", "video"), "ta": ("text", "audio"), "av": ("audio", "video")}


class ImageBindScore(_ImageBindVerifier):
    """Cosine similarities of ImageBind embeddings: ``tv`` text-video, ``ta`` text-audio,
    ``av`` audio-video; several at once give one reward each (``<metric>_ib``) from one pass.
    Each stream is embedded whole, whatever the other one's length."""

    kind = "ImageBindScore"

    def __init__(self, model, metrics: tuple[str, ...] = ("tv", "ta", "av"),
                 name: str = "imagebind") -> None:
        super().__init__(model, name)
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise ValueError(f"ImageBind metrics must be some of {sorted(METRICS)}, got {list(metrics)}")
        self.metrics = tuple(metrics)
        self.rewards = tuple(f"{m}_ib" for m in self.metrics)

    @property
    def identity(self) -> str:
        return f"{self.name}:{self.kind}[{','.join(self.metrics)}](imagebind {self.embedder.fingerprint})"

    def __call__(self, batch: AVBatch, prompts: list[str]) -> dict[str, torch.Tensor]:
        get = {"text": lambda: self.embedder.text(batch, prompts),
               "video": lambda: self.embedder.video(batch),
               "audio": lambda: self.embedder.audio(batch)}
        return {f"{m}_ib": _cos(get[METRICS[m][0]](), get[METRICS[m][1]]()) for m in self.metrics}

    def lengths_used(self, batch: AVBatch) -> list[str]:
        """Each stream embedded whole (core.lengths)."""
        return [f"each stream whole ({batch.lengths()})"] * len(batch)
