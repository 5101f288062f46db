"""MUSIQ's multi-scale input as pyiqa builds it (after the official TF preprocessing): an image
resized (bicubic, aspect kept) so its longer side is 224 and then 384, plus the image itself, each
cut into square patches; each patch carries a hashed grid position, its scale's index and a
validity bit. The two fixed scales are padded with blank patches to their full square of
patches; the image's own scale keeps every patch it has."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LONGER_SIDES = (224, 384)
"""The longer side of each resized scale, ascending (pyiqa's MUSIQ default, which VBench keeps)."""
SCALES = len(LONGER_SIDES) + 1
"""The resized scales and the image's own resolution (scale index ``len(LONGER_SIDES)``)."""


@dataclass(frozen=True)
class Tokens:
    """Images cut into L patches: ``patches`` [B, L, 3, p, p]; per patch (shared by the batch,
    whose images have one size) its hashed position ``spatial`` [L] (long), ``scale`` [L] (long)
    and ``mask`` [L] (bool, False for padding, whose position and scale are 0)."""

    patches: torch.Tensor
    spatial: torch.Tensor
    scale: torch.Tensor
    mask: torch.Tensor


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero padding of [B, C, H, W] as TF's 'SAME' (the odd pixel at the bottom and right)."""
    def split(n: int) -> tuple[int, int]:
        total = (math.ceil(n / stride) - 1) * stride + kernel - n
        return total // 2, total - total // 2

    (top, bottom), (left, right) = split(x.shape[-2]), split(x.shape[-1])
    return F.pad(x, (left, right, top, bottom))


def hashed_positions(rows: int, cols: int, grid: int, device: torch.device) -> torch.Tensor:
    """[rows * cols] (long): each patch's cell of a ``grid`` x ``grid`` hash of the patch grid,
    row-major, each axis mapped to the grid by nearest-neighbour resampling."""
    cells = torch.arange(grid, dtype=torch.float32, device=device)[None, None]
    r = F.interpolate(cells, size=rows, mode="nearest")[0, 0].long()
    c = F.interpolate(cells, size=cols, mode="nearest")[0, 0].long()
    return (r[:, None] * grid + c[None, :]).flatten()


def _cut(images: torch.Tensor, patch: int, grid: int, scale: int, length: int | None) -> Tokens:
    """``images`` [B, 3, h, w] as patches, padded with blank ones to ``length`` when given."""
    b, c, h, w = images.shape
    x = same_pad(images, patch, patch)
    rows, cols = x.shape[-2] // patch, x.shape[-1] // patch
    patches = x.view(b, c, rows, patch, cols, patch).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c, patch, patch)
    spatial = hashed_positions(rows, cols, grid, images.device)
    n = len(spatial)
    scales = torch.full((n,), scale, dtype=torch.long, device=images.device)
    mask = torch.ones(n, dtype=torch.bool, device=images.device)
    if length is not None:  # pyiqa pads, then cuts to length; a fixed scale never exceeds it
        blank = length - n
        patches = torch.cat([patches, patches.new_zeros(b, blank, c, patch, patch)], 1)
        spatial, scales = (F.pad(t, (0, blank)) for t in (spatial, scales))
        mask = F.pad(mask, (0, blank), value=False)
    return Tokens(patches, spatial, scales, mask)


def musiq_patches(images: torch.Tensor, patch: int, grid: int) -> Tokens:
    """The multi-scale tokens of float [B, 3, H, W] images (pyiqa feeds them in -1..1)."""
    h, w = images.shape[-2:]
    parts = []
    for scale, longer in enumerate(LONGER_SIDES):
        ratio = longer / max(h, w)
        rh, rw = round(h * ratio), round(w * ratio)
        if min(rh, rw) < 1:
            raise ValueError(f"a {h}x{w} image is too thin for MUSIQ: at a longer side of {longer} "
                             f"px it would be {rh}x{rw}")
        resized = F.interpolate(images, (rh, rw), mode="bicubic", align_corners=False)
        parts.append(_cut(resized, patch, grid, scale, math.ceil(longer / patch) ** 2))
    parts.append(_cut(images, patch, grid, len(LONGER_SIDES), None))
    return Tokens(*(torch.cat([getattr(t, f) for t in parts], dim) for f, dim in
                    (("patches", 1), ("spatial", 0), ("scale", 0), ("mask", 0))))
