"""What the Qwen2-VL verifiers (VideoReward, VQAScore) share: a batch of clips turned into the
model's inputs the way the reference pipelines turn a video file into them, and one forward
pass of the language model over those inputs.

Frames follow qwen-vl-utils' ``fetch_video`` for a file: ``smart_nframes`` picks the frame count
for the sampling fps, ``linspace(...).round()`` the indices, ``smart_resize`` the size (sides
multiples of 28, at most ``max_pixels``, at least 128 * 28 * 28 pixels, so small frames are
upscaled), and a bicubic antialiased resize of the 8-bit frames. Then transformers' Qwen2-VL
image processor: scale to 0..1, CLIP normalisation, patches of 14 px over 2 frames, grouped by
2 x 2 for the merger. The sampled frames are few (2 fps: 10 of a 5 s clip), so they are
prepared on the CPU and only the patches go to the model's device.

The chat text is Qwen2-VL-Instruct's chat template rendered for one user turn holding a video
and a text, with the video placeholder expanded to one token per merged patch, as the
Qwen2-VL processor does.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from ..core.checkpoints import CheckpointError
from .frames import clip_normalise, to_uint8

PATCH, MERGE, TEMPORAL = 14, 2, 2
FACTOR = PATCH * MERGE  # frame sides are multiples of this
VIDEO_MIN_PIXELS = 128 * 28 * 28
MIN_FRAMES, MAX_FRAMES = 4, 768
MAX_ASPECT_RATIO = 200

VIDEO_TOKEN = "<|video_pad|>"
CHAT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|>{video}<|vision_end|>{text}<|im_end|>\n<|im_start|>assistant\n")
"""Qwen2-VL-Instruct's chat template applied to [{"role": "user", "content": [video, text]}]
with add_generation_prompt=True (its default system turn included)."""


# --- frames -----------------------------------------------------------------------------------

def _round_to(x: float, factor: int) -> int:
    return round(x / factor) * factor  # Python's round (half to even), as the reference


def _ceil_to(x: float, factor: int) -> int:
    return math.ceil(x / factor) * factor


def _floor_to(x: float, factor: int) -> int:
    return math.floor(x / factor) * factor


def frame_count(total: int, source_fps: float, fps: float) -> int:
    """``smart_nframes``: total / source_fps * fps frames, clamped to [4, the even part of
    min(768, total)], rounded to an even count, at most ``total``. The model takes frames in
    pairs, so a clip needs at least 2."""
    if total < TEMPORAL:
        raise ValueError(f"a clip needs at least {TEMPORAL} frames to be scored by Qwen2-VL (it "
                         f"reads frames in pairs), got {total}")
    low, high = _ceil_to(MIN_FRAMES, TEMPORAL), _floor_to(min(MAX_FRAMES, total), TEMPORAL)
    n = _round_to(min(max(total / source_fps * fps, low), high), TEMPORAL)
    return min(n, total)


def frame_indices(total: int, source_fps: float, fps: float) -> torch.Tensor:
    """The indices of the frames sampled at ``fps`` from ``total`` frames at ``source_fps``:
    uniform over the clip, first and last included."""
    return torch.linspace(0, total - 1, frame_count(total, source_fps, fps)).round().long()


def frame_size(height: int, width: int, max_pixels: int,
               min_pixels: int = VIDEO_MIN_PIXELS) -> tuple[int, int]:
    """``smart_resize``: the nearest multiples of 28; scaled down (floor) when above
    ``max_pixels``, up (ceil) when below ``min_pixels``, keeping the aspect ratio."""
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"frames of {height} x {width} px are too elongated for Qwen2-VL "
                         f"(aspect ratio above {MAX_ASPECT_RATIO})")
    h = max(FACTOR, _round_to(height, FACTOR))
    w = max(FACTOR, _round_to(width, FACTOR))
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = _floor_to(height / beta, FACTOR), _floor_to(width / beta, FACTOR)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = _ceil_to(height * beta, FACTOR), _ceil_to(width * beta, FACTOR)
    return h, w


def patches(frames: torch.Tensor) -> torch.Tensor:
    """[T, 3, H, W] normalised frames (T even, H and W multiples of 28) as the Qwen2-VL
    processor's flattened patches [T/2 * H/14 * W/14, 3 * 2 * 14 * 14]: one row per 2-frame
    14 x 14 patch, rows ordered so each 2 x 2 group the merger joins is contiguous."""
    t, c, h, w = frames.shape
    gt, gh, gw = t // TEMPORAL, h // PATCH, w // PATCH
    x = frames.reshape(gt, TEMPORAL, c, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, c * TEMPORAL * PATCH * PATCH)


@dataclass(frozen=True)
class Videos:
    """The vision inputs of N clips: ``pixel_values`` [sum of patches, 1176] float32 and
    ``grid_thw`` [N, 3] (temporal, height, width patch counts of each clip)."""

    pixel_values: torch.Tensor
    grid_thw: torch.Tensor

    @property
    def tokens(self) -> list[int]:
        """Language tokens per clip: one per 2 x 2 group of patches."""
        return (self.grid_thw.prod(-1) // MERGE ** 2).tolist()


def videos(video: torch.Tensor, source_fps: float, fps: float, max_pixels: int) -> Videos:
    """[N, T, H, W, 3] clips in 0..1 at ``source_fps`` as Qwen2-VL video inputs, frames sampled
    at ``fps`` and resized to at most ``max_pixels``."""
    if video.ndim != 5 or video.shape[-1] != 3 or 0 in video.shape:
        raise ValueError(f"video must be a non-empty [N, T, H, W, 3] tensor, got {tuple(video.shape)}")
    n, t, height, width, _ = video.shape
    index = frame_indices(t, source_fps, fps).to(video.device)
    h, w = frame_size(height, width, max_pixels)
    frames = to_uint8(video.index_select(1, index)).flatten(0, 1)       # [N * t', 3, H, W]
    frames = TF.resize(frames, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    frames = clip_normalise(frames.float() / 255, 1).unflatten(0, (n, len(index)))
    grid = torch.tensor([[len(index) // TEMPORAL, h // PATCH, w // PATCH]] * n)
    return Videos(torch.cat([patches(clip) for clip in frames]), grid)


# --- text ----------------------------------------------------------------------------------------

def prompts_for(n: int, prompts: list[str], tokenizer) -> list[str]:
    """One prompt per clip: ``prompts`` as given, or its single prompt for every clip. A prompt
    may not spell one of the tokenizer's special tokens, which would be read as that token."""
    if len(prompts) not in (1, n):
        raise ValueError(f"need one prompt or one per clip ({n}), got {len(prompts)}")
    special = [t.content for t in tokenizer.added_tokens_decoder.values()]
    for p in prompts:
        if not isinstance(p, str):
            raise ValueError(f"prompts must be strings, got {p!r}")
        found = [s for s in special if s in p]
        if found:
            raise ValueError(f"the prompt {p[:80]!r} contains the special token {found[0]!r}")
    return list(prompts) * (n if len(prompts) == 1 else 1)


def token_id(tokenizer, token: str) -> int:
    """The id of a token the tokenizer must have as one piece."""
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        raise CheckpointError(f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no "
                              f"token {token!r}: it is not a Qwen2-VL tokenizer")
    return ids[0]


@dataclass(frozen=True)
class Chats:
    """Tokenised chats, right-padded: ``input_ids`` and ``attention_mask`` [N, L], and the
    vision inputs their video placeholders stand for."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    videos: Videos


def chats(tokenizer, texts: list[str], clips: Videos) -> Chats:
    """One chat per clip: its video, then ``texts[i]``, then the assistant's turn opening."""
    rows = [tokenizer.encode(CHAT.format(video=VIDEO_TOKEN * k, text=text), add_special_tokens=False)
            for text, k in zip(texts, clips.tokens)]
    length = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), length), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return Chats(ids, mask, clips)


# --- model ---------------------------------------------------------------------------------------

def hidden_states(qwen: torch.nn.Module, inputs: Chats, flat_positions: bool) -> torch.Tensor:
    """The last hidden states [N, L, D] of a transformers ``Qwen2VLModel`` over ``inputs``, in the
    model's device and dtype. ``flat_positions``: rotary positions 0..L-1 on all three M-RoPE
    axes, which is what VideoReward was trained and published with (transformers 4.45 used
    these when no positions were passed); otherwise Qwen2-VL's own 3-D M-RoPE positions."""
    p = next(qwen.parameters())
    ids = inputs.input_ids.to(p.device)
    kwargs = dict(input_ids=ids, attention_mask=inputs.attention_mask.to(p.device),
                  pixel_values_videos=inputs.videos.pixel_values.to(p.device, p.dtype),
                  video_grid_thw=inputs.videos.grid_thw.to(p.device))
    if flat_positions:
        n, length = ids.shape
        kwargs["position_ids"] = torch.arange(length, device=p.device).view(1, 1, -1).expand(3, n, -1)
    else:
        kwargs["mm_token_type_ids"] = (ids == qwen.config.video_token_id).int() * 2
    return qwen(**kwargs).last_hidden_state


def files_fingerprint(paths: Iterable[Path]) -> str:
    """A short fingerprint of weight files without reading gigabytes: their sizes and a sha256
    of each file's first MiB."""
    h = hashlib.sha256()
    size = 0
    for path in sorted(Path(p) for p in paths):
        size += path.stat().st_size
        h.update(f"{path.name}:{path.stat().st_size}:".encode())
        with open(path, "rb") as f:
            h.update(f.read(1 << 20))
    return f"{size}B-{h.hexdigest()[:12]}"
