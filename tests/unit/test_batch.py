"""AVBatch rejects media that cannot be scored, with a message that says what is wrong."""

import pytest
import torch

from comfyui_avits.verifiers import AVBatch, MediaError


def batch(n=2, t=48, fps=24.0, s=32000, sr=16000, h=8):
    return AVBatch(torch.rand(n, t, h, h, 3), fps, torch.zeros(n, 1, s), sr)


def test_valid_batch_and_clip_views():
    b = batch()
    assert len(b) == 2 and b.video_seconds == 2.0 and b.audio_seconds == 2.0
    one = b.clip(1)
    assert len(one) == 1 and one.video.data_ptr() == b.video[1].data_ptr()


@pytest.mark.parametrize("kwargs,match", [
    ({"s": 16000}, "video lasts 2.000 s .* but audio lasts 1.000 s"),
    ({"t": 0}, "video is empty"),
    ({"s": 0}, "audio is empty"),
    ({"n": 0}, "no clips"),
    ({"fps": 0.0}, "must be positive"),
])
def test_bad_media(kwargs, match):
    with pytest.raises(MediaError, match=match):
        batch(**kwargs)


def test_layout_errors():
    with pytest.raises(MediaError, match=r"\[N, T, H, W, 3\]"):
        AVBatch(torch.rand(2, 48, 8, 8), 24.0, torch.zeros(2, 1, 32000), 16000)
    with pytest.raises(MediaError, match="2 video clips but 3 audio clips"):
        AVBatch(torch.rand(2, 48, 8, 8, 3), 24.0, torch.zeros(3, 1, 32000), 16000)
