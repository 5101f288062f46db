"""DeSync as av-benchmark defines it, as a verifier: Synchformer predicts the audio-video offset
(one of 21 classes, -2 s to +2 s every 0.2 s) of the first and of the last 4.8 s window of each
clip; the clip's DeSync is the mean of the two |offsets| in seconds (the benchmark's DeSync is
the mean of these over clips). The reward is -DeSync, so higher is better. The benchmark cuts
both streams of a file to one duration, so a clip whose streams last differently is scored on
the shorter one's length (whole 25 fps frames), the longer stream trimmed."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch

from ...core.batch import AVBatch, MediaError
from . import preprocess as P
from .model import Synchformer

GRID = torch.from_numpy(np.linspace(-2, 2, 21)).float()
"""Offset of each class in seconds (float32, as the benchmark's make_class_grid(-2, 2, 21));
a positive offset means the sound comes early."""
OUTPUTS = ("desync", "sync_prob")
"""-DeSync in seconds (the benchmark's number, negated), and the softmax probability of the
0 s class averaged over the two windows (a continuous in-sync confidence, higher is better)."""
SHORT_CLIPS = ("error", "pad")
"""A clip under one window (4.8 s): an error naming its length (the benchmark scores none), or
padded to 4.8 s by holding its last frame and appending silence (then scored as one window)."""


def window_starts(segments: int, window: int) -> list[int]:
    """The first and the last window of ``window`` segments (the same one when they coincide)."""
    return sorted({0, segments - window})


def desync_seconds(logits: torch.Tensor) -> torch.Tensor:
    """[N, W, 21] window logits -> float64 [N]: the mean |offset| of each clip's argmax classes."""
    offsets = GRID.double().abs()[logits.argmax(-1).cpu()]
    return offsets.mean(dim=1)


class DeSync:
    """Rewards for the chosen ``outputs``: ``name`` is -DeSync in seconds, ``<name>_sync_prob``
    the in-sync probability. Batched over candidates; runs on the model's device and dtype
    (the benchmark's is fp32)."""

    def __init__(self, model: Synchformer, outputs: Sequence[str] = ("desync",),
                 name: str = "desync", short_clips: str = "error", chunk: int = 32) -> None:
        outputs = tuple(outputs)
        if not outputs or any(o not in OUTPUTS for o in outputs) or len(set(outputs)) != len(outputs):
            raise ValueError(f"outputs must be distinct names among {OUTPUTS}, got {outputs}")
        if short_clips not in SHORT_CLIPS:
            raise ValueError(f"short_clips must be one of {SHORT_CLIPS}, got {short_clips!r}")
        self.model, self.outputs, self.name = model, outputs, name
        self.short_clips, self.chunk = short_clips, chunk
        self.rewards = tuple(name if o == "desync" else f"{name}_{o}" for o in outputs)
        self.identity = (f"{name}:desync[{','.join(outputs)}](synchformer {_fingerprint(model)}, "
                         f"short clips {short_clips})")

    def models(self) -> list[torch.nn.Module]:
        return [self.model]

    def __call__(self, batch: AVBatch, prompts: list[str]) -> dict[str, torch.Tensor]:
        logits = self.window_logits(batch)
        values = {"desync": -desync_seconds(logits),
                  "sync_prob": torch.softmax(logits.double(), -1)[..., len(GRID) // 2].mean(1)}
        return {reward: values[o] for reward, o in zip(self.rewards, self.outputs)}

    def lengths_used(self, batch: AVBatch) -> list[str]:
        """The length both streams were cut to (and padded to, for a short clip padded)."""
        frames25 = P.clip_frames(batch.video.shape[1], batch.fps, batch.audio.shape[-1], batch.sample_rate)
        longer = "audio" if batch.audio_seconds > batch.video_seconds else "video"
        said = f"trimmed {longer} to {frames25 / P.FPS:.2f} s, the shorter stream's length"
        if frames25 < self._window_frames():
            said += f", then padded to {self._window_frames() / P.FPS:.2f} s"
        return [said] * len(batch)

    def window_logits(self, batch: AVBatch) -> torch.Tensor:
        """float32 [N, W, 21]: the offset logits of each clip's first and last window (W = 1
        when they are the same window)."""
        window = self.model.arch.segments
        frames25 = P.clip_frames(batch.video.shape[1], batch.fps, batch.audio.shape[-1], batch.sample_rate)
        length = self._length(batch, frames25, window)
        frames25 = max(frames25, 1)
        starts = window_starts(P.segments(length), window)
        used = sorted({s + i for s in starts for i in range(window)})
        frames = sorted({f for s in used for f in range(s * P.SEGMENT_FRAME_STEP,
                                                        s * P.SEGMENT_FRAME_STEP + P.SEGMENT_FRAMES)})
        clips = [P.video(batch.video[i], batch.fps, frames25, length, frames) for i in range(len(batch))]
        video = self._run(self.model.extract_vfeats, [
            (lambda c=c, s=s: P.to_model(clips[c][s * P.SEGMENT_FRAME_STEP:][:P.SEGMENT_FRAMES]))
            for c in range(len(batch)) for s in used])
        mels = []
        for i in range(len(batch)):
            sound = P.audio(batch.audio[i], batch.sample_rate, frames25 * P.SAMPLES_PER_FRAME)
            sound = torch.nn.functional.pad(sound, (0, length * P.SAMPLES_PER_FRAME - sound.shape[0]))
            mels.append(P.log_mel(torch.stack([sound[s * P.SEGMENT_SAMPLE_STEP:][:P.SEGMENT_SAMPLES]
                                               for s in used])))
        audio = self._run(self.model.extract_afeats, [(lambda m=m: m) for m in torch.cat(mels)])
        video = video.view(len(batch), len(used), *video.shape[1:])
        audio = audio.view(len(batch), len(used), *audio.shape[1:])
        pick = [[used.index(s + i) for i in range(window)] for s in starts]
        v = torch.stack([video[:, p] for p in pick], 1).flatten(0, 1)
        a = torch.stack([audio[:, p] for p in pick], 1).flatten(0, 1)
        with torch.no_grad():
            logits = torch.cat([self.model.compare_v_a(vc, ac) for vc, ac in
                                zip(v.split(self.chunk), a.split(self.chunk))])
        return logits.float().cpu().view(len(batch), len(starts), -1)

    def _length(self, batch: AVBatch, frames25: int, window: int) -> int:
        """The clip's length in 25 fps frames as scored: at least one window, else an error or
        the padded length (``short_clips``)."""
        need = self._window_frames()
        if frames25 < need and self.short_clips == "error":
            raise MediaError(
                f"DeSync needs clips of at least {need / P.FPS:g} s (one window of {window} "
                f"segments at 25 fps); this one lasts {frames25 / P.FPS:g} s at 25 fps "
                f"({batch.video.shape[1]} frames at {batch.fps:g} fps, {batch.audio_seconds:.3f} s "
                f"of sound). Set short_clips to 'pad' to score it padded with its last frame "
                f"and silence.")
        return max(frames25, need)

    def _window_frames(self) -> int:
        """One window's length in 25 fps frames (120: 4.8 s)."""
        return P.SEGMENT_FRAMES + (self.model.arch.segments - 1) * P.SEGMENT_FRAME_STEP

    def _run(self, extract, items: list) -> torch.Tensor:
        """``extract`` over [1, 1, ...] segments made by ``items``, ``chunk`` at a time: [n, ...]."""
        p = next(self.model.parameters())
        out = []
        with torch.no_grad():
            for i in range(0, len(items), self.chunk):
                x = torch.stack([make() for make in items[i:i + self.chunk]])[:, None]
                out.append(extract(x.to(p.device, p.dtype))[:, 0].float().cpu())
        return torch.cat(out)


def _fingerprint(model: torch.nn.Module) -> str:
    """A short hash of the shapes and the offset head: the same file, the same fingerprint."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(f"{name}{tuple(t.shape)}".encode())
        if name.startswith("transformer.off_head."):
            h.update(t.detach().flatten()[:1024].float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]
