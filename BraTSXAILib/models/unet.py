"""UNet3D: the study's plain 3D UNet (double 3×3×3 conv → GroupNorm → ReLU blocks)."""
from __future__ import annotations

from .blocks import DoubleConv
from .skeleton import UNetSkeleton


class UNet3D(UNetSkeleton):
    def __init__(self, width: int = 24):
        super().__init__(DoubleConv, width)
