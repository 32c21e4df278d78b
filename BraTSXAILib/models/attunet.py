"""AttUNet3D: the UNet skeleton with CBAM and an additive attention gate on every skip connection."""
from __future__ import annotations

import torch

from .attention import CBAMGatedSkip
from .blocks import DoubleConv
from .skeleton import LEVELS, UNetSkeleton


class AttUNet3D(UNetSkeleton):
    def __init__(self, width: int = 24):
        super().__init__(DoubleConv, width, skip=CBAMGatedSkip)

    def attention_maps(self) -> dict[str, torch.Tensor]:
        """Maps of the last forward pass, per skip level (0 = full resolution):
        `gate{l}` α (B,1,…), `cbam{l}_spatial` (B,1,…), `cbam{l}_channel` (B,C,1,1,1).

        Their spatial size is that of the padded input at that level (a multiple of 16 at level 0);
        the pipeline crops them back with the same crop as the output.
        """
        maps: dict[str, torch.Tensor] = {}
        for level in range(LEVELS):
            skip = self.skips[level]
            if skip.gate.alpha is None:
                raise RuntimeError("no attention maps yet: run a forward pass first")
            maps[f"gate{level}"] = skip.gate.alpha
            maps[f"cbam{level}_spatial"] = skip.cbam.spatial_map
            maps[f"cbam{level}_channel"] = skip.cbam.channel_weights
        return maps
