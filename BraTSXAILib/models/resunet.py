"""ResUNet3D: the UNet skeleton with pre-activation residual blocks.

A pre-activation block starts with GroupNorm → ReLU. On the raw input that GroupNorm has 4 groups for the 4
channels, i.e. it standardises each MRI modality over the whole volume, and the ReLU after it would then zero
every voxel below its modality's mean before any convolution has seen it. A plain 3×3×3 stem convolution
therefore maps the input to the base width first. (The study's notebook starts with conv → ReLU → GroupNorm →
conv plus a 1×1 shortcut instead; docs/fidelity.md compares the two.)
"""
from __future__ import annotations

from .blocks import PreActResidualBlock
from .skeleton import UNetSkeleton


class ResUNet3D(UNetSkeleton):
    def __init__(self, width: int = 24):
        super().__init__(PreActResidualBlock, width, stem=True)
