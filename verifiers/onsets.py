"""Audio onset times as ``librosa.onset.onset_detect(y, sr=22050, units='time')`` finds them.

AV-Align takes its audio peaks from librosa with every default. librosa is a 400 MB install that
compiles with numba, so its default chain is restated here in numpy / scipy: mono mix, resample
to 22050 Hz, 128-band Slaney mel power spectrogram, dB, spectral flux, normalisation and the
onset peak picker. Given the same 22050 Hz samples it picks librosa's onsets exactly. librosa
resamples with soxr_hq, which is not in numpy / scipy: a frequency-domain resampler fitted to
it stands in (see ``to_mono_22050``).
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import get_window
from scipy.special import erfc

SAMPLE_RATE = 22050
N_FFT = 2048
HOP = 512
N_MELS = 128
TOP_DB = 80.0
AMIN = 1e-10
# onset_detect's peak_pick defaults, in frames (librosa's formulas, then ceil as peak_pick does).
PRE_MAX = int(np.ceil(0.03 * SAMPLE_RATE // HOP))
POST_MAX = int(np.ceil(0.00 * SAMPLE_RATE // HOP + 1))
PRE_AVG = int(np.ceil(0.10 * SAMPLE_RATE // HOP))
POST_AVG = int(np.ceil(0.10 * SAMPLE_RATE // HOP + 1))
WAIT = int(np.ceil(0.03 * SAMPLE_RATE // HOP))
DELTA = 0.07
# The low-pass standing in for soxr_hq: 0.5 * erfc((f - CUTOFF) / WIDTH), f in units of the
# lower Nyquist; zeros appended before the FFT keep its ringing from wrapping around.
RESAMPLE_CUTOFF = 0.957
RESAMPLE_WIDTH = 0.016
RESAMPLE_GUARD = 2048


def to_mono_22050(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Channel mean then resampling to 22050 Hz, as ``librosa.load(path)`` delivers audio
    (float32, ``ceil(S * 22050 / sample_rate)`` samples).

    librosa resamples with soxr_hq, which numpy / scipy lack. This resamples in the frequency
    domain (zero-padded, so without wrap-around) through an erfc-shaped low-pass fitted to
    soxr_hq on noise: its output follows soxr's to about 0.2 % RMS."""
    y = np.asarray(waveform, dtype=np.float32)
    if y.ndim > 1:
        y = y.reshape(-1, y.shape[-1]).mean(axis=0)
    if sample_rate == SAMPLE_RATE:
        return y
    g = gcd(int(sample_rate), SAMPLE_RATE)
    up, down = SAMPLE_RATE // g, int(sample_rate) // g
    n_out = -(-y.shape[-1] * up // down)
    blocks = next_fast_len(-(-(y.shape[-1] + RESAMPLE_GUARD) // down))
    n_in, n_resampled = blocks * down, blocks * up
    spectrum = rfft(y.astype(np.float64), n_in)
    n_bins = min(spectrum.shape[-1], n_resampled // 2 + 1)
    nyquist = min(int(sample_rate), SAMPLE_RATE) / 2.0
    freq = np.arange(n_bins) * (sample_rate / n_in) / nyquist
    gain = 0.5 * erfc((freq - RESAMPLE_CUTOFF) / RESAMPLE_WIDTH) * (n_resampled / n_in)
    out = np.zeros(n_resampled // 2 + 1, dtype=spectrum.dtype)
    out[:n_bins] = spectrum[:n_bins] * gain
    return irfft(out, n_resampled)[:n_out].astype(np.float32)


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return get_window("hann", N_FFT, fftbins=True).astype(np.float32)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's scale: linear below 1 kHz, logarithmic above."""
    mel = hz / (200.0 / 3)
    log = hz >= 1000.0
    mel[log] = 15.0 + np.log(hz[log] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    hz = mel * (200.0 / 3)
    log = mel >= 15.0
    hz[log] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel[log] - 15.0))
    return hz


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """[128, 1025] triangular Slaney-normalised filters from 0 Hz to Nyquist (librosa.filters.mel)."""
    fft_hz = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array([SAMPLE_RATE / 2.0]))[0], N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def onset_strength(y: np.ndarray) -> np.ndarray:
    """Spectral flux of the dB mel spectrogram (lag 1, mean over bands), one value per STFT
    frame, shifted by librosa's padding so that value k describes frame k."""
    padded = np.pad(y, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _hann(), axis=-1)) ** 2
    mel = mel_filterbank() @ power.T
    db = 10.0 * np.log10(np.maximum(AMIN, mel))
    db = np.maximum(db, db.max() - TOP_DB)
    flux = np.maximum(0.0, db[:, 1:] - db[:, :-1]).mean(axis=0)
    n_frames = db.shape[1]
    return np.concatenate([np.zeros(1 + N_FFT // (2 * HOP), flux.dtype), flux])[:n_frames]


def _window_reduce(x: np.ndarray, before: int, after: int, fill: float, reduce) -> np.ndarray:
    """``reduce(x[n - before : n + after])`` for every n, the slice clipped to the array."""
    padded = np.pad(x.astype(np.float64), (before, after - 1), constant_values=fill)
    return reduce(np.lib.stride_tricks.sliding_window_view(padded, before + after), axis=-1)


def pick_peaks(envelope: np.ndarray) -> np.ndarray:
    """Frame indices librosa's peak_pick keeps with onset_detect's defaults: the window maximum,
    at least DELTA above the window mean, and more than WAIT frames after the last kept peak."""
    x = envelope.astype(np.float64)
    is_max = x == _window_reduce(x, PRE_MAX, POST_MAX, -np.inf, np.max)
    count = _window_reduce(np.ones_like(x), PRE_AVG, POST_AVG, 0.0, np.sum)
    mean = _window_reduce(x, PRE_AVG, POST_AVG, 0.0, np.sum) / count
    candidates = np.flatnonzero(is_max & (x >= mean + DELTA))
    kept: list[int] = []
    for n in candidates:
        if not kept or n > kept[-1] + WAIT:
            kept.append(int(n))
    return np.asarray(kept, dtype=np.int64)


def onset_times(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times in seconds of a [C, S] or [S] waveform at ``sample_rate``; silent or
    non-finite audio has none."""
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.size == 0 or not np.isfinite(waveform).all():
        return np.zeros(0)
    env = onset_strength(to_mono_22050(waveform, sample_rate))
    env = env - env.min()
    env /= env.max() + np.finfo(env.dtype).tiny
    if not env.any():
        return np.zeros(0)
    return pick_peaks(env) * HOP / float(SAMPLE_RATE)
