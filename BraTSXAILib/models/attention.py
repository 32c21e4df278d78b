"""CBAM (Woo et al. 2018) and the additive attention gate (Oktay et al. 2018), in 3D.

Each module keeps the maps of its last forward pass (`channel_weights`, `spatial_map`, `alpha`) so that the
explanation code reads them without running the network again. They are kept detached: a stored map holds only
its own few one-channel values, never the autograd graph of the pass that made it, so dropping a pass's output
frees all of that pass's activations (tested). The forward pass itself uses the attached maps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import spatial_mean


class ChannelAttention(nn.Module):
    """Shared MLP over global average- and max-pooled features; sigmoid weights per channel."""

    def __init__(self, channels: int, ratio: int = 8):
        super().__init__()
        hidden = max(1, channels // ratio)
        self.mlp = nn.Sequential(nn.Conv3d(channels, hidden, 1), nn.ReLU(), nn.Conv3d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.mlp(spatial_mean(x)) + self.mlp(F.adaptive_max_pool3d(x, 1))
        return torch.sigmoid(pooled)  # (B, C, 1, 1, 1)


class SpatialAttention(nn.Module):
    """7×7×7 convolution on [channel mean; channel max] → one-channel sigmoid map."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv3d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        descriptor = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(descriptor))  # (B, 1, D, H, W)


class CBAM(nn.Module):
    """Channel attention, then spatial attention; each map multiplies the features."""

    def __init__(self, channels: int, ratio: int = 8, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, ratio)
        self.spatial = SpatialAttention(kernel_size)
        self.channel_weights: torch.Tensor | None = None
        self.spatial_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.channel(x)
        x = x * weights
        spatial = self.spatial(x)
        self.channel_weights, self.spatial_map = weights.detach(), spatial.detach()
        return x * spatial


class AttentionGate(nn.Module):
    """α = σ(ψ(ReLU(W_x x + W_g g))): one coefficient per voxel of the skip x, gated by coarser features g."""

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int | None = None):
        super().__init__()
        inter = inter_channels or max(1, skip_channels // 2)
        self.theta_x = nn.Conv3d(skip_channels, inter, 1, bias=False)
        self.phi_g = nn.Conv3d(gate_channels, inter, 1)
        self.psi = nn.Conv3d(inter, 1, 1)
        self.alpha: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        gate = F.interpolate(self.phi_g(g), size=x.shape[2:], mode="trilinear", align_corners=False)
        alpha = torch.sigmoid(self.psi(F.relu(self.theta_x(x) + gate)))  # (B, 1, D, H, W)
        self.alpha = alpha.detach()
        return x * alpha


class CBAMGatedSkip(nn.Module):
    """The Attention UNet skip: CBAM refines the encoder features, the attention gate then weights them."""

    def __init__(self, skip_channels: int, gate_channels: int):
        super().__init__()
        self.cbam = CBAM(skip_channels)
        self.gate = AttentionGate(skip_channels, gate_channels)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return self.gate(self.cbam(skip), gate)
