"""The ImageBind scores of the paper (as its reference implementation computes them): JavisScore (audio-video
synchrony over sliding 2 s windows), AVHScore (frames against the whole clip's audio), and the
TV / TA / AV cosine similarities. Each takes an ImageBindModel (or the embedder of one) and
scores an AVBatch; all of them read the same cached embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...core.batch import AVBatch
from .embed import WINDOW_HOP_SECONDS, WINDOW_SAMPLES, WINDOW_SECONDS, ImageBindEmbedder, embedder
from .preprocess import window_starts

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
    longer than one window is one window over all frames with the whole clip's audio."""

    kind = "JavisScore"

    def __init__(self, model, name: str = "javisscore") -> None:
        super().__init__(model, name)

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        frames = self.embedder.frames(batch)
        size = int(WINDOW_SECONDS * batch.fps)
        stride = size - int((WINDOW_SECONDS - WINDOW_HOP_SECONDS) * batch.fps)
        samples = [a.shape[-1] for a in self.embedder.audio16(batch)]
        short = [f.shape[0] <= size or s <= WINDOW_SAMPLES for f, s in zip(frames, samples)]
        whole = self.embedder.audio(batch) if any(short) else None
        windows = self.embedder.audio_windows(batch) if not all(short) else None
        scores = []
        for i, f in enumerate(frames):
            if short[i]:
                pairs = [(f, whole[i])]
            else:
                starts = window_starts(f.shape[0], size, stride)
                m = min(len(starts), len(windows[i]))
                pairs = [(f[s:s + size], windows[i][j]) for j, s in enumerate(starts[:m])]
            scores.append(torch.stack([_lowest_mean(_cos(fr, a[None])) for fr, a in pairs]).mean())
        return torch.stack(scores)


def _lowest_mean(cos: torch.Tensor) -> torch.Tensor:
    """The mean of the int(0.4 N) smallest values (at least one)."""
    k = max(1, int(TOPK_MIN * len(cos)))
    return torch.topk(cos, k, largest=False).values.mean()


class AVHScore(_ImageBindVerifier):
    """Audio-visual harmony: the mean over all frames of cos(frame, the clip's audio)."""

    kind = "AVHScore"

    def __init__(self, model, name: str = "avhscore") -> None:
        super().__init__(model, name)

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        audio = self.embedder.audio(batch)
        return torch.stack([_cos(f, audio[i][None]).mean()
                            for i, f in enumerate(self.embedder.frames(batch))])


METRICS = {"tv": ("text", "video"), "ta": ("text", "audio"), "av": ("audio", "video")}


class ImageBindScore(_ImageBindVerifier):
    """Cosine similarities of ImageBind embeddings: ``tv`` text-video, ``ta`` text-audio,
    ``av`` audio-video; several at once give one reward each (``<metric>_ib``) from one pass."""

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
