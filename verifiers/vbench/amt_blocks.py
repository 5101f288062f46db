"""The parts AMT-S (MCG-NKU/AMT, networks/blocks) is built from, under their parameter names:
RAFT's small feature encoder and bidirectional all-pairs correlation, IFRNet's feature pyramid
and decoders, the update block that refines flows from the correlation, and backward warping."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear rescaling by ``scale`` (AMT's ``resize``: align_corners off)."""
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` [B, C, H, W] sampled at each pixel plus ``flow`` [B, 2, H, W] (x, y in pixels),
    bilinear, edges repeated. The base grid is made on the CPU in float32, as AMT does."""
    b, _, h, w = flow.shape
    xs = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(b, -1, h, -1)
    ys = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(b, -1, -1, w)
    grid = torch.cat([xs, ys], 1).to(image)
    shift = torch.cat([flow[:, :1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    return F.grid_sample(image, (grid + shift).permute(0, 2, 3, 1), mode="bilinear",
                         padding_mode="border", align_corners=True)


def pixel_grid(b: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """[B, 2, H, W] pixel coordinates (x, y) in ``like``'s device and dtype."""
    y, x = torch.meshgrid(torch.arange(h, device=like.device), torch.arange(w, device=like.device),
                          indexing="ij")
    return torch.stack([x, y]).to(like.dtype)[None].repeat(b, 1, 1, 1)


class Correlation:
    """RAFT's all-pairs correlation of two feature maps, kept as a pyramid both ways (0 -> 1 and
    1 -> 0); a lookup reads a (2r+1)^2 window around given points at every level."""

    def __init__(self, f0: torch.Tensor, f1: torch.Tensor, levels: int, radius: int) -> None:
        b, c, h, w = f0.shape
        corr = (f0.view(b, c, h * w).transpose(1, 2) @ f1.view(b, c, h * w)) / c ** 0.5
        corr = corr.view(b, h, w, 1, h, w)
        forward = corr.reshape(b * h * w, 1, h, w)
        backward = corr.permute(0, 4, 5, 3, 1, 2).reshape(b * h * w, 1, h, w)
        self.radius = radius
        self.pyramids: tuple[list[torch.Tensor], list[torch.Tensor]] = ([forward], [backward])
        for _ in range(levels - 1):
            for pyramid in self.pyramids:
                pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2))

    def __call__(self, points0: torch.Tensor, points1: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Correlations around ``points0`` in frame 1's map and around ``points1`` in frame 0's
        (both [B, 2, h, w] pixel coordinates): two [B, levels * (2r+1)^2, h, w]."""
        r = self.radius
        d = torch.linspace(-r, r, 2 * r + 1, device=points0.device)
        window = torch.stack(torch.meshgrid(d, d, indexing="ij"), -1).view(1, 2 * r + 1, 2 * r + 1, 2)
        b, _, h, w = points0.shape
        out = []
        for points, pyramid in zip((points0, points1), self.pyramids):
            centres = points.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
            levels = [_sample(corr, centres / 2 ** i + window).view(b, h, w, -1)
                      for i, corr in enumerate(pyramid)]
            out.append(torch.cat(levels, -1).permute(0, 3, 1, 2).contiguous())
        return out[0], out[1]


def _sample(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``image`` read bilinearly at pixel ``points`` (x, y; zeros outside), RAFT's sampler."""
    h, w = image.shape[-2:]
    x, y = points.split([1, 1], dim=-1)
    grid = torch.cat([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], dim=-1)
    return F.grid_sample(image, grid, align_corners=True)


class Bottleneck(nn.Module):
    """RAFT's bottleneck residual block with instance norms (which hold no parameters)."""

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes // 4, 1)
        self.conv2 = nn.Conv2d(planes // 4, planes // 4, 3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(planes // 4, planes, 1)
        self.downsample = (None if stride == 1 else
                           nn.Sequential(nn.Conv2d(cin, planes, 1, stride=stride), nn.InstanceNorm2d(planes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.instance_norm(self.conv1(x)))
        y = F.relu(F.instance_norm(self.conv2(y)))
        y = F.relu(F.instance_norm(self.conv3(y)))
        return F.relu((x if self.downsample is None else self.downsample(x)) + y)


class FeatureEncoder(nn.Module):
    """RAFT's small encoder: matching features at 1/8 of the frame size."""

    def __init__(self, layers: tuple[int, int, int], dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, layers[0], 7, stride=2, padding=3)
        cin = layers[0]
        for i, planes in enumerate(layers, 1):
            self.add_module(f"layer{i}", nn.Sequential(Bottleneck(cin, planes, 1 if i == 1 else 2),
                                                       Bottleneck(planes, planes)))
            cin = planes
        self.conv2 = nn.Conv2d(cin, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.instance_norm(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


def conv_prelu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """A 3x3 convolution and a PReLU per channel (IFRNet's ``convrelu``)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.PReLU(cout))


class PyramidEncoder(nn.Module):
    """IFRNet's context pyramid: features at 1/2, 1/4, 1/8 and 1/16 of the frame size."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.levels = len(channels)
        cin = 3
        for i, c in enumerate(channels, 1):
            self.add_module(f"pyramid{i}", nn.Sequential(conv_prelu(cin, c, 2), conv_prelu(c, c)))
            cin = c

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i in range(1, self.levels + 1):
            x = getattr(self, f"pyramid{i}")(x)
            out.append(x)
        return out


class ResBlock(nn.Module):
    """IFRNet's residual block whose last ``side`` channels get convolutions of their own."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.conv1 = conv_prelu(channels, channels)
        self.conv2 = conv_prelu(side, side)
        self.conv3 = conv_prelu(channels, channels)
        self.conv4 = conv_prelu(side, side)
        self.conv5 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.prelu = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.side
        out = self.conv1(x)
        out = self.conv3(torch.cat([out[:, :-s], self.conv2(out[:, -s:])], 1))
        out = self.conv5(torch.cat([out[:, :-s], self.conv4(out[:, -s:])], 1))
        return self.prelu(x + out)


class Decoder(nn.Module):
    """One decoder level: a convolution, a residual block and a 2x transposed convolution; the
    model says what goes in and what the outputs mean at each level."""

    def __init__(self, cin: int, width: int, cout: int, side: int) -> None:
        super().__init__()
        self.convblock = nn.Sequential(conv_prelu(cin, width), ResBlock(width, side),
                                       nn.ConvTranspose2d(width, cout, 4, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convblock(x)


class UpdateBlock(nn.Module):
    """RAFT's small update block as AMT uses it: from the correlation and the current flows of a
    level, a residual for the intermediate feature and for both flows; ``scale`` > 1 runs it at
    that fraction of the level's size."""

    def __init__(self, feature: int, hidden: int, flow_dim: int, corr_dim: int, fc_dim: int,
                 corr_planes: int, scale: int | None = None) -> None:
        super().__init__()
        self.scale = scale
        self.convc1 = nn.Conv2d(2 * corr_planes, corr_dim, 1)
        self.convf1 = nn.Conv2d(4, flow_dim * 2, 7, padding=3)
        self.convf2 = nn.Conv2d(flow_dim * 2, flow_dim, 3, padding=1)
        self.conv = nn.Conv2d(corr_dim + flow_dim, fc_dim, 3, padding=1)
        self.gru = _two_convs(fc_dim + 4 + feature, hidden, hidden)
        self.feat_head = _two_convs(hidden, hidden, feature)
        self.flow_head = _two_convs(hidden, hidden, 4)

    def forward(self, feature: torch.Tensor, flow: torch.Tensor, corr: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scale is not None:
            feature = resize(feature, 1 / self.scale)
        c = F.leaky_relu(self.convc1(corr), 0.1)
        f = F.leaky_relu(self.convf2(F.leaky_relu(self.convf1(flow), 0.1)), 0.1)
        x = F.leaky_relu(self.conv(torch.cat([c, f], 1)), 0.1)
        out = self.gru(torch.cat([x, flow, feature], 1))
        d_feature, d_flow = self.feat_head(out), self.flow_head(out)
        if self.scale is not None:
            d_feature = resize(d_feature, self.scale)
            d_flow = self.scale * resize(d_flow, self.scale)
        return d_feature, d_flow


def _two_convs(cin: int, width: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, width, 3, padding=1), nn.LeakyReLU(0.1),
                         nn.Conv2d(width, cout, 3, padding=1))
