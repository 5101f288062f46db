"""VBench's motion smoothness: AMT-S interpolates each clip's odd frames back from its even ones
(t = 0.5 between frames 0 and 2, 2 and 4, ...), and the clip scores (255 - d) / 255, where d
is the mean absolute difference between the 8-bit interpolated and real odd frames (over
pixels and channels, then over frames). A last odd frame with no even frame after it is not
scored. Higher is smoother."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ...core.batch import AVBatch, MediaError
from ...core.checkpoints import CheckpointError, load_strict, read_file
from .amt import AMTS, DIVISOR, LEVELS, architecture
from .files import identity, require
from .frames import uint8_frames

NAME = "motion_smoothness"
FILES: tuple[tuple[str, str], ...] = (
    ("amt-s.pth", "https://huggingface.co/lalala125/AMT/resolve/main/amt-s.pth"),)
LICENCE = ("AMT code and weights: CC BY-NC 4.0, non-commercial use only "
           "(github.com/MCG-NKU/AMT, LICENSE and README)")
SMALLEST = 8 * 2 ** LEVELS
"""The smallest padded frame side: AMT-S correlates features at 1/8 of the frame, halved
``LEVELS - 1`` times, and its sampler divides by the coarsest level's width - 1."""
CHUNK = 4
"""Frame pairs per forward pass: AMT-S's all-pairs correlation of a 512 x 320 pair holds about
50 MB, and grows with the square of the frame area."""


class MotionSmoothness:
    """Tensor[N] in 0..1, higher is better. ``scale`` < 1 estimates the flows on frames shrunk
    by it, as VBench does on a GPU whose memory it judges too small for the frame size (VBench
    uses 1 on the CPU and, on a GPU, for frames up to about 2 MP per 24 GB); padding is then to
    multiples of ``16 / scale``."""

    name = NAME

    def __init__(self, model: AMTS, identity: str, scale: float = 1.0, chunk: int = CHUNK) -> None:
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        self.model, self.scale, self.chunk = model, scale, chunk
        self.identity = identity if scale == 1 else f"{identity}; scale {scale:g}"

    def models(self) -> list[torch.nn.Module]:
        return [self.model]

    def __call__(self, batch: AVBatch, prompts: list[str]) -> torch.Tensor:
        frames = uint8_frames(batch.video).cpu()
        n, length, _, h, w = frames.shape
        if length < 3:
            raise MediaError(f"motion smoothness needs at least 3 frames (two even frames to "
                             f"interpolate between); this clip has {length}")
        pad = padding(h, w, int(DIVISOR / self.scale))
        if min(h + pad[2] + pad[3], w + pad[0] + pad[1]) * self.scale < SMALLEST:
            raise MediaError(f"motion smoothness needs frames padded to at least {SMALLEST} px a "
                             f"side{f' after scaling by {self.scale:g}' if self.scale != 1 else ''}, "
                             f"so that AMT-S's coarsest correlation level is 2 wide (VBench's AMT-S "
                             f"gives NaN below); these are {h} x {w}")
        keys = frames[:, 0::2]
        real = frames[:, 1::2][:, :keys.shape[1] - 1]
        p = next(self.model.parameters())
        x = F.pad(keys.flatten(0, 1).float() / 255.0, pad, mode="replicate").view(n, keys.shape[1], 3,
                                                                                   h + pad[2] + pad[3], -1)
        first, second = x[:, :-1].flatten(0, 1), x[:, 1:].flatten(0, 1)
        made = []
        with torch.no_grad():
            for a, b in zip(first.split(self.chunk), second.split(self.chunk)):
                out = self.model(a.to(p.device, p.dtype), b.to(p.device, p.dtype), 0.5, self.scale)
                out = out[..., pad[2]:out.shape[-2] - pad[3], pad[0]:out.shape[-1] - pad[1]]
                made.append((out.float() * 255.0).clamp(0, 255).to(torch.uint8).cpu())
        made_frames = torch.cat(made).view(real.shape)
        diff = (made_frames.short() - real.short()).abs()
        per_frame = diff.flatten(2).sum(-1).double() / diff[0, 0].numel()
        return (255.0 - per_frame.mean(1)) / 255.0


def padding(h: int, w: int, divisor: int) -> tuple[int, int, int, int]:
    """AMT's InputPadder: (left, right, top, bottom) replicated pixels that make both sides
    multiples of ``divisor``, split evenly with the odd one at the right and bottom."""
    ph, pw = -h % divisor, -w % divisor
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def load(folder: str | Path, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> MotionSmoothness:
    """Motion smoothness on ``folder``'s ``amt-s.pth`` (AMT's checkpoint: the model's state dict
    under ``state_dict``; VBench runs it in fp32)."""
    paths = require(folder, FILES)
    name, source = FILES[0]
    path = paths[name]
    checkpoint = read_file(path)
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} has no 'state_dict' (it holds {sorted(checkpoint)[:5]}): "
                              f"not an AMT checkpoint; the official file is {source}")
    model = AMTS(architecture(state, source))
    load_strict(model, state, path, "the AMT-S architecture its shapes imply")
    return MotionSmoothness(model.to(device=device, dtype=dtype).eval(), identity(NAME, paths, dtype))
