"""Synchformer's inputs exactly as av-benchmark's DeSync evaluation makes them, from the tensors
a search holds: frames [T, H, W, 3] in 0..1 at any fps become 8-bit frames at 25 fps (FFmpeg's
fps filter), short side to 224 (bicubic, on uint8), centre crop, -1..1; sound becomes mono
16 kHz, cut into 0.64 s segments every 0.32 s, each a 128-band log-mel padded to 66 frames."""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torchaudio
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from ..frames import to_uint8

FPS, SIZE = 25, 224
SAMPLE_RATE = 16000
SEGMENT_FRAMES, SEGMENT_FRAME_STEP = 16, 8
SEGMENT_SAMPLES, SEGMENT_SAMPLE_STEP = 10240, 5120
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
MEL_FRAMES = 66
MEL_MEAN, MEL_STD = -4.2677393, 4.5689974
_mel = torchaudio.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=1024, win_length=400,
                                            hop_length=160, n_mels=128)


def frames_at_25(count: int, fps: float) -> int:
    """How many 25 fps frames a clip of ``count`` frames at ``fps`` holds whole."""
    return math.floor(count * FPS / _exact(fps))


def clip_frames(video_frames: int, fps: float, samples: int, sample_rate: int) -> int:
    """The evaluated length in 25 fps frames: the shorter of picture and sound, whole frames
    (the benchmark's duration D with 25 D an integer, so both sides give the same segments)."""
    return min(frames_at_25(video_frames, fps), math.floor(Fraction(samples * FPS, int(sample_rate))))


def segments(frames25: int) -> int:
    """Segments of 16 frames every 8 (equal to those of the 16 kHz sound of the same length)."""
    return max(0, (frames25 - SEGMENT_FRAMES) // SEGMENT_FRAME_STEP + 1)


def source_indices(count: int, fps: float, frames25: int) -> list[int]:
    """The source frame each 25 fps frame shows, as FFmpeg's fps filter picks it (the newest
    frame whose timestamp, rounded to the 1/25 s grid half away from zero, is not later)."""
    ratio = _exact(fps) / FPS
    return [min(count - 1, math.ceil((n + Fraction(1, 2)) * ratio) - 1) for n in range(frames25)]


def video(frames: torch.Tensor, fps: float, frames25: int, length: int | None = None,
          keep: list[int] | None = None) -> torch.Tensor:
    """[T, H, W, 3] in 0..1 -> uint8 [length, 3, 224, 224]: the first ``frames25`` frames at
    25 fps, then the last one held up to ``length``; v2.Resize(224, bicubic) and
    v2.CenterCrop(224) on 8-bit frames, as the benchmark transforms decoded frames. Only the
    frames in ``keep`` are made (the others stay zero)."""
    index = source_indices(frames.shape[0], fps, frames25)
    length = frames25 if length is None else length
    index += index[-1:] * (length - frames25)
    keep = list(range(length)) if keep is None else keep
    out = torch.zeros(length, 3, SIZE, SIZE, dtype=torch.uint8)
    if keep:
        x = to_uint8(frames[[index[k] for k in keep]])
        x = TF.resize(x, [SIZE], interpolation=InterpolationMode.BICUBIC)
        out[keep] = TF.center_crop(x, [SIZE, SIZE])
    return out


def to_model(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float32 in -1..1 (v2.ToDtype(scale=True), v2.Normalize(0.5, 0.5))."""
    x = TF.to_dtype(frames, torch.float32, scale=True)
    return TF.normalize(x, [0.5] * 3, [0.5] * 3)


def audio(waveform: torch.Tensor, sample_rate: int, samples: int) -> torch.Tensor:
    """[C, S] -> [samples] mono at 16 kHz: the channel mean, torchaudio's default resampler,
    the first ``samples`` (no DC removal, no gain)."""
    x = waveform.detach().to("cpu", torch.float32).mean(0)
    if sample_rate != SAMPLE_RATE:
        x = torchaudio.functional.resample(x, int(sample_rate), SAMPLE_RATE)
    return x[:samples]


def log_mel(segments: torch.Tensor) -> torch.Tensor:
    """[n, 10240] sound segments -> [n, 1, 128, 66]: power mel, log(x + 1e-6), padded with 0.0
    in the log domain to 66 frames, then (x - mean) / (2 std)."""
    x = torch.log(_mel(segments) + 1e-6)
    x = torch.nn.functional.pad(x, (0, MEL_FRAMES - x.shape[-1]), value=0.0)[..., :MEL_FRAMES]
    return ((x - MEL_MEAN) / (2 * MEL_STD)).unsqueeze(1)


def _exact(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(100000)
