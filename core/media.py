"""Writing a candidate as an mp4 (H.264 video + AAC audio) with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch


def write_mp4(path: Path, frames: torch.Tensor, fps: float, waveform: torch.Tensor,
              sample_rate: int) -> None:
    """frames [T, H, W, 3] in 0..1, waveform [C, S]; odd frame sizes are padded to even. One
    encoder thread, so the same clip gives the same bytes in any process on any machine (x264
    picks its thread count from the CPUs it sees, and its output depends on it)."""
    t, h, w, _ = frames.shape
    pix = (frames.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    if h % 2 or w % 2:
        pix = np.pad(pix, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    audio = waveform.detach().float().cpu().numpy()
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    audio = audio[:2]
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = pix.shape[2], pix.shape[1], "yuv420p"
        vs.options = {"crf": "18", "threads": "1"}  # x264's bitstream depends on its thread count
        aud = out.add_stream("aac", rate=sample_rate, layout=layout)
        for frame in pix:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(vs.encode())
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, dtype=np.float32),
                                           format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        for packet in aud.encode(frame):
            out.mux(packet)
        out.mux(aud.encode())

