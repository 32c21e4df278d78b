"""Building blocks shared by the three networks. No operation is in-place, so hooks on any output are safe."""
from __future__ import annotations

import torch
from torch import nn

GROUPS = 8


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """(B, C, z, y, x) -> (B, C, 1, 1, 1): the mean over the spatial axes, taken one axis at a time. The same value
    as `x.mean((2, 3, 4))` in PyTorch; in an OpenVINO graph it keeps float32 sums exact, where one reduction over a
    whole feature map is off by up to 3e-4 of its range (docs/cli.md, "Backend")."""
    batch, channels, depth, height = x.shape[:4]
    means = x.reshape(batch, channels, depth, height, -1).mean(4).mean(3).mean(2)
    return means.reshape(batch, channels, 1, 1, 1)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 8 groups, as in the study; fewer when the channel count is not divisible by 8."""
    groups = GROUPS
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


class ConvNormAct(nn.Sequential):
    """3×3×3 convolution → GroupNorm → ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            group_norm(out_channels),
            nn.ReLU(),
        )


class DoubleConv(nn.Sequential):
    """The UNet block: two ConvNormAct in a row."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(ConvNormAct(in_channels, out_channels), ConvNormAct(out_channels, out_channels))


class PreActResidualBlock(nn.Module):
    """Pre-activation residual block (He et al. 2016): x + (GN → ReLU → conv) ×2, projected shortcut if needed."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.residual = nn.Sequential(
            group_norm(in_channels),
            nn.ReLU(),
            nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            group_norm(out_channels),
            nn.ReLU(),
            nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        )
        self.shortcut = (
            nn.Identity() if in_channels == out_channels else nn.Conv3d(in_channels, out_channels, kernel_size=1)
        )

    def forward(self, x):
        return self.shortcut(x) + self.residual(x)
