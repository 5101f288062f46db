"""The media a verifier scores: a batch of clips in ComfyUI's own IMAGE / AUDIO layout.

Generated clips (every search) must have audio and video of the same length: a mismatch there
is a bug upstream, so it is refused. Real media (a file, another pack's output) may have streams
of different lengths, and each benchmark reads those its own way: ``AVBatch.media`` keeps each
stream's own length and leaves the reading to each verifier's benchmark rule."""

from __future__ import annotations

from dataclasses import dataclass

import torch


class MediaError(ValueError):
    """Audio-video input that cannot be scored (empty, wrong layout, mismatched lengths)."""


@dataclass(frozen=True)
class AVBatch:
    """N clips: ``video`` float [N, T, H, W, 3] in 0..1 at ``fps``; ``audio`` float [N, C, S] at
    ``sample_rate``. The layout is ComfyUI's IMAGE per clip and AUDIO's waveform, so the node glue
    passes tensors through without converting."""

    video: torch.Tensor
    fps: float
    audio: torch.Tensor
    sample_rate: int
    own_lengths: bool = False
    """True for real media (``AVBatch.media``): the streams may last differently. False (every
    generated clip): they must match within max(2 frames, 5 %)."""

    @classmethod
    def media(cls, video: torch.Tensor, fps: float, audio: torch.Tensor, sample_rate: int) -> "AVBatch":
        """Real media as a benchmark reads a file: each stream keeps its own length."""
        return cls(video, fps, audio, sample_rate, own_lengths=True)

    def __post_init__(self) -> None:
        v, a = self.video, self.audio
        if v.ndim != 5 or v.shape[-1] != 3:
            raise MediaError(f"video must be [N, T, H, W, 3], got {tuple(v.shape)}")
        if a.ndim != 3:
            raise MediaError(f"audio must be [N, channels, samples], got {tuple(a.shape)}")
        if v.shape[0] != a.shape[0]:
            raise MediaError(f"{v.shape[0]} video clips but {a.shape[0]} audio clips")
        if v.shape[0] == 0:
            raise MediaError("the batch holds no clips")
        if v.shape[1] == 0 or v.shape[2] == 0 or v.shape[3] == 0:
            raise MediaError(f"the video is empty: shape {tuple(v.shape)}")
        if a.shape[1] == 0 or a.shape[2] == 0:
            raise MediaError(f"the audio is empty: shape {tuple(a.shape)}")
        if not (self.fps > 0 and self.sample_rate > 0):
            raise MediaError(f"fps ({self.fps}) and sample_rate ({self.sample_rate}) must be positive")
        if not (self.own_lengths or self.lengths_match):
            raise MediaError(
                f"video lasts {self.video_seconds:.3f} s ({v.shape[1]} frames at {self.fps:g} fps) "
                f"but audio lasts {self.audio_seconds:.3f} s ({a.shape[2]} samples at "
                f"{self.sample_rate} Hz); trim or pad one of them to match")

    def __len__(self) -> int:
        return self.video.shape[0]

    @property
    def video_seconds(self) -> float:
        return self.video.shape[1] / self.fps

    @property
    def audio_seconds(self) -> float:
        return self.audio.shape[2] / self.sample_rate

    @property
    def lengths_match(self) -> bool:
        """Audio and video last the same, within max(2 frames, 5 %) (a generated clip's rule)."""
        tolerance = max(2.0 / self.fps, 0.05 * self.video_seconds)
        return abs(self.video_seconds - self.audio_seconds) <= tolerance

    def lengths(self) -> str:
        """The two durations, for messages: "audio 5.00 s, video 4.00 s"."""
        return f"audio {self.audio_seconds:.2f} s, video {self.video_seconds:.2f} s"

    def clip(self, i: int) -> "AVBatch":
        """Clip ``i`` as a batch of one, without copying (a view of this batch)."""
        return AVBatch(self.video[i:i + 1], self.fps, self.audio[i:i + 1], self.sample_rate,
                       self.own_lengths)
