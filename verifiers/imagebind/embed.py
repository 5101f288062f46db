"""One loaded ImageBind and the embeddings of the batch being scored. Every ImageBind score
asks it for what it needs (frames, whole-clip audio, audio windows, video views, text); each is
computed once per batch, batched over all candidates, and shared by every score of the verifier
set, so JavisScore + AVHScore + AV-IB embed each frame and each audio clip once."""

from __future__ import annotations

import hashlib
import weakref
from typing import Callable

import torch

from ...core.batch import AVBatch
from . import preprocess as P
from .package import model_module, tokenizer

WINDOW_SECONDS, WINDOW_HOP_SECONDS = 2.0, 0.5
WINDOW_SAMPLES, WINDOW_HOP_SAMPLES = 32000, 8000


class ImageBindEmbedder:
    """Embeddings (unit vectors) from one ImageBindModel, cached for the last batch seen."""

    def __init__(self, model: torch.nn.Module, chunk: int = 64) -> None:
        self.model, self.chunk = model, chunk
        self.fingerprint = _fingerprint(model)
        self._batch: AVBatch | None = None
        self._cache: dict = {}

    def _cached(self, batch: AVBatch, key, compute: Callable):
        if batch is not self._batch:
            self._batch, self._cache = batch, {}
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _run(self, modality: str, inputs: torch.Tensor, views: int = 1) -> torch.Tensor:
        """Embed ``inputs`` on the model's device and dtype, ``chunk`` images (or audio clips)
        at a time, where each input holds ``views`` of them; float32 on the CPU out."""
        p = next(self.model.parameters())
        out = []
        with torch.no_grad():
            for part in inputs.split(max(1, self.chunk // views)):
                x = part.to(p.device, p.dtype) if part.is_floating_point() else part.to(p.device)
                out.append(self.model({modality: x})[modality].float().cpu())
        return torch.cat(out)

    def frames(self, batch: AVBatch) -> list[torch.Tensor]:
        """Every frame of every clip as an image embedding: one [T, D] per clip."""
        def compute():
            t = batch.video.shape[1]
            images = torch.cat([P.images(clip) for clip in batch.video])
            return list(self._run(model_module().ModalityType.VISION, images).split(t))
        return self._cached(batch, "frames", compute)

    def audio16(self, batch: AVBatch) -> list[torch.Tensor]:
        """Each clip's waveform at 16 kHz [C, S]."""
        return self._cached(batch, "audio16", lambda: [P.to_16k(a, batch.sample_rate)
                                                       for a in batch.audio])

    def audio(self, batch: AVBatch) -> torch.Tensor:
        """[N, D]: each clip's audio by the 3-clip rule."""
        def compute():
            clips = torch.stack([P.audio_clips(a) for a in self.audio16(batch)])  # [N, 3, 1, 128, 204]
            return self._run(model_module().ModalityType.AUDIO, clips, views=clips.shape[1])
        return self._cached(batch, "audio", compute)

    def audio_windows(self, batch: AVBatch) -> list[torch.Tensor]:
        """[M_i, D] per clip: the embedding of each 2 s audio window (stride 0.5 s) of clip i,
        all windows of all clips in one pass (a window is its own three identical clips, which
        the model would average to the same embedding)."""
        def compute():
            per_clip = []
            for a in self.audio16(batch):
                starts = P.window_starts(a.shape[-1], WINDOW_SAMPLES, WINDOW_HOP_SAMPLES)
                per_clip.append([P.fbank(a[:, s:s + WINDOW_SAMPLES]) for s in starts])
            flat = torch.stack([f for clip in per_clip for f in clip])
            return list(self._run(model_module().ModalityType.AUDIO, flat)
                        .split([len(c) for c in per_clip]))
        return self._cached(batch, "audio_windows", compute)

    def video(self, batch: AVBatch) -> torch.Tensor:
        """[N, D]: each clip as video (5 clips x 3 crops, the views averaged)."""
        def compute():
            views = torch.stack([P.video_views(clip, batch.fps) for clip in batch.video])
            return self._run(model_module().ModalityType.VISION, views, views=views.shape[1])
        return self._cached(batch, "video", compute)

    def text(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        """[N, D]: one prompt per clip (a single prompt serves every clip)."""
        n = len(batch)
        if len(prompts) not in (1, n):
            raise ValueError(f"need one prompt or one per clip ({n}), got {len(prompts)}")
        prompts = list(prompts) * (n if len(prompts) == 1 else 1)
        return self._cached(batch, ("text", tuple(prompts)), lambda: self._run(
            model_module().ModalityType.TEXT, tokenizer()(prompts).reshape(n, -1)))


def _fingerprint(model: torch.nn.Module) -> str:
    """A short hash of the model's shapes and some of its weights: the same file, the same
    fingerprint, without hashing gigabytes."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(f"{name}{tuple(t.shape)}".encode())
        if name.startswith("modality_heads."):
            h.update(t.detach().flatten()[:1024].float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


_embedders: "weakref.WeakKeyDictionary[torch.nn.Module, ImageBindEmbedder]" = weakref.WeakKeyDictionary()


def embedder(model) -> ImageBindEmbedder:
    """The embedder of ``model`` (an ImageBindModel or an embedder): one per model, so every
    score made from the same model shares its embeddings."""
    if isinstance(model, ImageBindEmbedder):
        return model
    if model not in _embedders:
        _embedders[model] = ImageBindEmbedder(model)
    return _embedders[model]
