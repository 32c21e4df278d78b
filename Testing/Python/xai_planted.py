"""A tiny network whose enhancing-tumour output depends only on a cube planted in the T1ce channel.

Layers: `features` (1×1×1 convolution) → `act` (ReLU) → `pool` (2×2×2 average) → `up` (×2 trilinear) →
`spread` (5×5×5 mean per channel) → `head`. Channel 0 of `act` is max(T1ce − 0.5, 0): non-zero only in the cube;
channels 1 and 2 carry FLAIR and T1 + T2, strong everywhere, and feed only WT and TC. The spread makes the
predicted ET region a dilation of the cube, so a map that merely repeated the prediction would put much of its
mass outside the cube.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CUBE = (slice(8, 16),) * 3


class Upsample(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)


class PlantedCubeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Conv3d(4, 3, 1)
        self.act = nn.ReLU()
        self.pool = nn.AvgPool3d(2)
        self.up = Upsample()
        self.spread = nn.Conv3d(3, 3, 5, padding=2, groups=3, bias=False)
        self.head = nn.Conv3d(3, 3, 1)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0, 1] = 1.0  # T1ce
            self.features.weight[1, 3] = 1.0  # FLAIR
            self.features.weight[2, 0] = self.features.weight[2, 2] = 1.0  # T1 + T2
            self.features.bias.copy_(torch.tensor([-0.5, 0.0, 0.0]))
            self.spread.weight.fill_(1.0 / 125)
            self.head.weight.zero_()
            self.head.weight[0, 1] = self.head.weight[1, 2] = 1.0  # WT from FLAIR, TC from T1 + T2
            self.head.weight[2, 0] = 30.0  # ET from the cube only
            self.head.bias.copy_(torch.tensor([-0.5, -1.0, -1.0]))

    def forward(self, x):
        return self.head(self.spread(self.up(self.pool(self.act(self.features(x))))))


def planted_case(shape=(24, 24, 24), seed: int = 0) -> torch.Tensor:
    """(1, 4, *shape): T1, T2, FLAIR bright and noisy everywhere, T1ce low noise with a bright cube."""
    rng = np.random.default_rng(seed)
    x = np.stack([
        rng.uniform(0.5, 1.5, shape),
        np.clip(rng.normal(0.0, 0.1, shape), -0.3, 0.3),
        rng.uniform(0.5, 1.5, shape),
        rng.uniform(0.5, 1.5, shape),
    ]).astype(np.float32)
    x[1][CUBE] = 1.0
    return torch.from_numpy(x)[None]


def cube_mask(shape=(24, 24, 24)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[CUBE] = True
    return mask
