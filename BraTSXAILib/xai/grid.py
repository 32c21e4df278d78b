"""From a feature map inside the network back to the network's input grid.

The networks zero-pad their input to a multiple of 16 and crop the output back (models/skeleton.py). A map taken
at pooling level l covers the padded input with cells of 2^l voxels, whose centres sit where trilinear
interpolation with `align_corners=False` puts them; after upsampling, the same centred crop as the output's
leaves exactly the input grid.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from torch import nn

from ..models.skeleton import DIVISOR, UNetSkeleton, padding_for


def padding_divisor(model: nn.Module) -> int:
    """The multiple a network pads its input to: the skeleton's for the three UNets, none for other modules."""
    return DIVISOR if isinstance(model, UNetSkeleton) else 1


def to_input_grid(maps: torch.Tensor, spatial_shape: Sequence[int], divisor: int = DIVISOR) -> torch.Tensor:
    """Maps (B, C, d, h, w) at any level of the padded input -> (B, C, *spatial_shape), trilinear.

    `divisor` is the network's padding multiple (`padding_divisor(model)`).
    """
    pads, crop = padding_for(spatial_shape, divisor)
    padded = tuple(int(n) + before + after for n, (before, after) in zip(spatial_shape, pads))
    if tuple(maps.shape[2:]) != padded:
        maps = F.interpolate(maps, size=padded, mode="trilinear", align_corners=False)
    return maps[(slice(None), slice(None), *crop)]
