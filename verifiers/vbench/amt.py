"""AMT-S (MCG-NKU/AMT, networks/AMT-S.py), the frame interpolator VBench's motion smoothness
runs, under its parameter names so ``amt-s.pth`` loads strictly. Widths are read off the file;
the correlation's radius and levels (AMT-S.yaml: 3 and 4) and the four-level layout are fixed in
AMT's code. Inference only: it returns the interpolated frame."""

from __future__ import annotations

from functools import partial

import re
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from ...core.checkpoints import CheckpointError, shape_of
from .amt_blocks import (Correlation, Decoder, FeatureEncoder, PyramidEncoder, UpdateBlock,
                         pixel_grid, resize, warp)

RADIUS = 3
LEVELS = 4
"""AMT-S.yaml's ``corr_radius`` and ``corr_lvls``: they only show in the file as their product
``LEVELS * (2 * RADIUS + 1) ** 2``, which the loader checks."""
DIVISOR = 16
"""Frame sides the network takes are multiples of this (its pyramid halves them four times)."""


@dataclass(frozen=True)
class Architecture:
    """AMT-S's widths; the defaults are the published model's."""

    channels: tuple[int, int, int, int] = (20, 32, 44, 56)
    skip: int = 20
    flows: int = 3
    feat_layers: tuple[int, int, int] = (32, 64, 96)
    feat_dim: int = 84
    hidden: int = 76
    flow_dim: int = 20
    corr_dim: int = 64
    fc_dim: int = 68


class AMTS(nn.Module):
    """AMT-S: ``model(img0, img1)`` -> the frame halfway between (``t`` elsewhere), [B, 3, H, W]
    in 0..1, for frames [B, 3, H, W] in 0..1 whose sides are multiples of ``DIVISOR / scale``."""

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        c, skip = arch.channels, arch.skip
        self.feat_encoder = FeatureEncoder(arch.feat_layers, arch.feat_dim)
        self.encoder = PyramidEncoder(c)
        self.decoder4 = Decoder(2 * c[3] + 1, 2 * c[3], c[2] + 4, skip)
        self.decoder3 = Decoder(3 * c[2] + 4, 3 * c[2], c[1] + 4, skip)
        self.decoder2 = Decoder(3 * c[1] + 4, 3 * c[1], c[0] + 4, skip)
        self.decoder1 = Decoder(3 * c[0] + 4, 3 * c[0], 8 * arch.flows, skip)
        planes = LEVELS * (2 * RADIUS + 1) ** 2
        sizes = (arch.hidden, arch.flow_dim, arch.corr_dim, arch.fc_dim, planes)
        self.update4 = UpdateBlock(c[2], *sizes)
        self.update3 = UpdateBlock(c[1], *sizes, scale=2)
        self.update2 = UpdateBlock(c[0], *sizes, scale=4)
        n = arch.flows
        self.comb_block = nn.Sequential(nn.Conv2d(3 * n, 6 * n, 3, 1, 1), nn.PReLU(6 * n),
                                        nn.Conv2d(6 * n, 3, 3, 1, 1))

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, t: float = 0.5,
                scale: float = 1.0) -> torch.Tensor:
        """The frame at time ``t`` between ``img0`` and ``img1``; ``scale`` < 1 estimates the
        flows on frames shrunk by it (VBench's memory saver) and warps at full size."""
        mean = torch.cat([img0, img1], 2).mean(1, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)
        img0, img1 = img0 - mean, img1 - mean
        small0 = resize(img0, scale) if scale != 1.0 else img0
        small1 = resize(img1, scale) if scale != 1.0 else img1
        b, _, h, w = small0.shape
        embt = img0.new_full((b, 1, 1, 1), t)
        grid = pixel_grid(b, h // 8, w // 8, img0)
        fmap0, fmap1 = self.feat_encoder(torch.cat([small0, small1])).chunk(2)
        corr = Correlation(fmap0, fmap1, LEVELS, RADIUS)
        f0, f1 = self.encoder(small0), self.encoder(small1)

        out = self.decoder4(torch.cat([f0[3], f1[3], embt.repeat(1, 1, *f0[3].shape[2:])], 1))
        flow0, flow1, feature = out[:, :2], out[:, 2:4], out[:, 4:]
        for level, decoder, update in ((3, self.decoder3, self.update4),
                                       (2, self.decoder2, self.update3),
                                       (1, self.decoder1, self.update2)):
            flow0, flow1, feature = self._refine(update, corr, grid, flow0, flow1, feature, embt,
                                                 2 ** (3 - level))
            x = torch.cat([feature, warp(f0[level - 1], flow0), warp(f1[level - 1], flow1), flow0, flow1], 1)
            out = decoder(x)
            if level > 1:
                flow0 = out[:, :2] + 2.0 * resize(flow0, 2.0)
                flow1 = out[:, 2:4] + 2.0 * resize(flow1, 2.0)
                feature = out[:, 4:]

        n = self.arch.flows
        d0, d1, mask, residual = torch.split(out, [2 * n, 2 * n, n, 3 * n], 1)
        flow0 = d0 + 2.0 * resize(flow0, 2.0).repeat(1, n, 1, 1)
        flow1 = d1 + 2.0 * resize(flow1, 2.0).repeat(1, n, 1, 1)
        mask = torch.sigmoid(mask)
        if scale != 1.0:
            flow0, flow1 = (resize(f, 1.0 / scale) * (1.0 / scale) for f in (flow0, flow1))
            mask, residual = resize(mask, 1.0 / scale), resize(residual, 1.0 / scale)
        return torch.clamp(self._combine(img0, img1, flow0, flow1, mask, residual, mean), 0, 1)

    @staticmethod
    def _refine(update: UpdateBlock, corr: Correlation, grid: torch.Tensor, flow0: torch.Tensor,
                flow1: torch.Tensor, feature: torch.Tensor, embt: torch.Tensor, downsample: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One correlation-guided residual update of a level's flows and feature: the flows from
        t, stretched to whole-interval flows (linear motion), look up the correlation."""
        small0, small1 = flow0, flow1
        if downsample != 1:
            small0 = resize(flow0, 1 / downsample) * (1 / downsample)
            small1 = resize(flow1, 1 / downsample) * (1 / downsample)
        c0, c1 = corr(grid + small1 * (1.0 / embt), grid + small0 * (1.0 / (1.0 - embt)))
        d_feature, d_flow = update(feature, torch.cat([small0, small1], 1), torch.cat([c0, c1], 1))
        return flow0 + d_flow[:, :2], flow1 + d_flow[:, 2:], feature + d_feature

    def _combine(self, img0: torch.Tensor, img1: torch.Tensor, flow0: torch.Tensor,
                 flow1: torch.Tensor, mask: torch.Tensor, residual: torch.Tensor,
                 mean: torch.Tensor) -> torch.Tensor:
        """AMT's multi-flow merge: each of the flow pairs warps both frames, blended by its mask
        plus its residual; their mean plus a learned correction of all of them."""
        b, _, h, w = flow0.shape
        n = self.arch.flows

        def per_flow(x: torch.Tensor, c: int) -> torch.Tensor:
            return x.reshape(b, n, c, h, w).reshape(-1, c, h, w)

        def repeated(x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x] * n, 1).reshape(-1, *x.shape[1:])

        warped0 = warp(repeated(img0), per_flow(flow0, 2))
        warped1 = warp(repeated(img1), per_flow(flow1, 2))
        m = per_flow(mask, 1)
        frames = m * warped0 + (1 - m) * warped1 + repeated(mean) + per_flow(residual, 3)
        frames = frames.reshape(b, n, 3, h, w)
        return frames.mean(1) + self.comb_block(frames.view(b, -1, h, w))


def architecture(state: Mapping[str, torch.Tensor], source: str) -> Architecture:
    """The widths an AMT-S state dict implies; an error naming the key (and ``source``, where
    the official file is published) when it is not one."""
    shape = partial(shape_of, state, source="the state dict",
                    what=f"AMT-S (the official file is {source})")

    planes = shape("update4.convc1.weight")[1]
    if planes != 2 * LEVELS * (2 * RADIUS + 1) ** 2:
        raise CheckpointError(
            f"'update4.convc1.weight' takes {planes} correlation channels; AMT-S's correlation "
            f"(radius {RADIUS}, {LEVELS} levels, both ways) gives {2 * LEVELS * (2 * RADIUS + 1) ** 2}")
    pyramid = sorted(int(m.group(1)) for m in map(re.compile(r"encoder\.pyramid(\d)\.0\.0\.weight$").match,
                                                   state) if m)
    if pyramid != [1, 2, 3, 4]:
        raise CheckpointError(f"the state dict has feature pyramid levels {pyramid} "
                              f"('encoder.pyramid<i>'); AMT-S has 4")
    return Architecture(
        channels=tuple(shape(f"encoder.pyramid{i}.0.0.weight")[0] for i in range(1, 5)),
        skip=shape("decoder4.convblock.1.conv2.0.weight")[0],
        flows=shape("comb_block.0.weight")[1] // 3,
        feat_layers=tuple(shape(f"feat_encoder.layer{i}.0.conv3.weight")[0] for i in range(1, 4)),
        feat_dim=shape("feat_encoder.conv2.weight")[0],
        hidden=shape("update4.gru.0.weight")[0], flow_dim=shape("update4.convf2.weight")[0],
        corr_dim=shape("update4.convc1.weight")[0], fc_dim=shape("update4.conv.weight")[0])
