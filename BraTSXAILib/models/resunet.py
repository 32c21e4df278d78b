"""ResUNet3D: the UNet skeleton with pre-activation residual blocks.

A pre-activation block starts with GroupNorm → ReLU, which would normalise the four raw MRI channels as one
group; a plain 3×3×3 stem convolution therefore maps the input to the base width first.
"""
from __future__ import annotations

from .blocks import PreActResidualBlock
from .skeleton import UNetSkeleton


class ResUNet3D(UNetSkeleton):
    def __init__(self, width: int = 24):
        super().__init__(PreActResidualBlock, width, stem=True)
