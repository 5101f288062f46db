"""ImageBind's input pipeline, as the paper's reference implementation computes it,
on the tensors a search holds: frames [T, H, W, 3] in 0..1, waveforms [C, S]. Frames are first
quantised to 8 bits (``frames.to_uint8``), as the reference read them from files. One implementation serves every
ImageBind score (TV/TA/AV-IB, AVHScore, JavisScore)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from PIL import Image

from ..frames import clip_normalise, to_uint8

SIZE = 224
SAMPLE_RATE = 16000
CLIP_SECONDS = 2
FBANK_BINS, FBANK_FRAMES = 128, 204
FBANK_MEAN, FBANK_STD = -4.268, 9.138
AUDIO_CLIPS, VIDEO_CLIPS, VIDEO_CLIP_FRAMES, VIDEO_CROPS = 3, 5, 2, 3


def images(frames: torch.Tensor) -> torch.Tensor:
    """Frames as ImageBind images [T, 3, 224, 224], as the reference's PIL pipeline makes them:
    8-bit frames, short side to 224 with PIL's bicubic, centre crop, CLIP normalisation."""
    h, w = frames.shape[1:3]
    size = (SIZE, int(SIZE * w / h)) if h <= w else (int(SIZE * h / w), SIZE)
    top, left = int(round((size[0] - SIZE) / 2.0)), int(round((size[1] - SIZE) / 2.0))
    out = []
    for frame in to_uint8(frames).permute(0, 2, 3, 1).numpy():
        image = Image.fromarray(frame)
        if (h, w) != size:
            image = image.resize((size[1], size[0]), Image.BICUBIC)
        out.append(np.asarray(image)[top:top + SIZE, left:left + SIZE])
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0
    return clip_normalise(x, 1)


def to_16k(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[C, S] at ``sample_rate`` -> [C, S'] at 16 kHz (torchaudio's resampler, as the reference)."""
    waveform = waveform.detach().float().cpu()
    if sample_rate == SAMPLE_RATE:
        return waveform
    return torchaudio.functional.resample(waveform, orig_freq=int(sample_rate), new_freq=SAMPLE_RATE)


def fbank(waveform: torch.Tensor) -> torch.Tensor:
    """One audio clip [C, s] at 16 kHz -> normalised log-mel input [1, 128, 204]. As the
    reference: the clip's mean (over every channel) is subtracted, the Kaldi fbank reads channel
    0, frames are cut or zero-padded at the end to 204."""
    x = waveform - waveform.mean()
    if x.shape[-1] >= 400:  # at least one 25 ms frame
        feats = torchaudio.compliance.kaldi.fbank(
            x, htk_compat=True, sample_frequency=SAMPLE_RATE, use_energy=False,
            window_type="hanning", num_mel_bins=FBANK_BINS, dither=0.0, frame_length=25,
            frame_shift=10, energy_floor=0.0).transpose(0, 1)
    else:
        feats = torch.zeros(FBANK_BINS, 0)
    feats = F.pad(feats, (0, max(FBANK_FRAMES - feats.shape[1], 0)))[:, :FBANK_FRAMES]
    return ((feats - FBANK_MEAN) / FBANK_STD).unsqueeze(0)


def clip_starts(duration: float, clips: int) -> list[Fraction]:
    """Start times of ``clips`` clips of 2 s: k * max(D - 2, 0) / clips (pytorchvideo's
    ConstantClipsPerVideoSampler, in exact fractions as it computes them)."""
    room = Fraction(max(duration - CLIP_SECONDS, 0))
    return [room / clips * k for k in range(clips)]


def audio_clips(waveform16: torch.Tensor) -> torch.Tensor:
    """The whole-clip audio input [3, 1, 128, 204]: three 2 s clips spread over the waveform
    (the model averages their embeddings). The reference subtracts each clip's mean in place on
    a view of the loaded waveform, so a clip that overlaps an earlier one sees that one's shift
    too; done the same way here (on a copy), the numbers are the reference's."""
    waveform = waveform16.clone()
    out = []
    for s in clip_starts(waveform.shape[-1] / SAMPLE_RATE, AUDIO_CLIPS):
        clip = waveform[:, int(s * SAMPLE_RATE):int((s + CLIP_SECONDS) * SAMPLE_RATE)]
        clip -= clip.mean()  # in place, as the reference
        out.append(fbank(clip))
    return torch.stack(out)


def window_starts(n: int, size: int, stride: int) -> list[int]:
    """JavisScore's sliding windows over n items: starts 0, stride, ... each clamped to n - size,
    stopping after the first window that reaches the end."""
    starts, s = [], 0
    while True:
        start = min(s, n - size)
        starts.append(start)
        if start + size >= n:
            return starts
        s += max(stride, 1)


def video_views(frames: torch.Tensor, fps: float) -> torch.Tensor:
    """The video input for TV/AV-IB [15, 3, 2, 224, 224]: five 2 s clips (the frames whose time
    i / fps falls in [start, start + 2)), two frames each (uniform subsample), short side scaled
    to 224 (bilinear, as pytorchvideo), CLIP normalisation, three spatial crops each."""
    n = frames.shape[0]
    x = to_uint8(frames).float() / 255.0  # [T, 3, H, W]
    views = []
    for start in clip_starts(n / fps, VIDEO_CLIPS):
        end = start + CLIP_SECONDS
        inside = [i for i in range(n) if start <= Fraction(i) / Fraction(fps) < end] or [n - 1]
        pick = torch.linspace(0, len(inside) - 1, VIDEO_CLIP_FRAMES).clamp(0, len(inside) - 1).long()
        clip = x[[inside[int(p)] for p in pick]]  # [2, 3, H, W]
        h, w = clip.shape[-2:]
        size = (SIZE, int(w / h * SIZE)) if w >= h else (int(h / w * SIZE), SIZE)
        clip = clip_normalise(F.interpolate(clip, size=size, mode="bilinear", align_corners=False), 1)
        views += [_crop(clip, k).permute(1, 0, 2, 3) for k in range(VIDEO_CROPS)]  # [3, 2, 224, 224]
    return torch.stack(views)


def _crop(clip: torch.Tensor, index: int) -> torch.Tensor:
    """Left / centre / right (top / centre / bottom when taller) 224 crop of [T, 3, H, W]."""
    h, w = clip.shape[-2:]
    y, x = -(-(h - SIZE) // 2), -(-(w - SIZE) // 2)
    if h > w:
        y = {0: 0, 1: y, 2: h - SIZE}[index]
    else:
        x = {0: 0, 1: x, 2: w - SIZE}[index]
    return clip[..., y:y + SIZE, x:x + SIZE]
