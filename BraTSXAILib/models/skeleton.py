"""The encoder–decoder skeleton the three networks share; they differ only in block and skip transform.

Module names are stable and used by the explanation code: `encoder.0..3` (level 0 = full resolution),
`bottleneck`, `decoder.3..0` (run deepest first), `skips.0..3` (transform applied to each skip), `head`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..shapes import DIVISOR, IN_CHANNELS, LEVELS, OUT_CHANNELS, padding_for

__all__ = ["DIVISOR", "IN_CHANNELS", "LEVELS", "OUT_CHANNELS", "UNetSkeleton", "level_widths", "pad_to_multiple",
           "padding_for"]

BlockFactory = Callable[[int, int], nn.Module]
SkipFactory = Callable[[int, int], nn.Module]  # (skip channels, gating channels) -> module(skip, gate)


class IdentitySkip(nn.Module):
    """Plain UNet skip connection: the encoder features pass unchanged."""

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return skip


def level_widths(width: int) -> list[int]:
    """Channels at encoder levels 0..3 and the bottleneck: w, 2w, 4w, 8w, 8w."""
    return [width, 2 * width, 4 * width, 8 * width, 8 * width]


def pad_to_multiple(x: torch.Tensor, divisor: int = DIVISOR) -> tuple[torch.Tensor, list[slice]]:
    """Zero-pad the spatial axes (split evenly) to a multiple of `divisor`; return the crop that undoes it."""
    pads, spatial_crop = padding_for(x.shape[2:], divisor)
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first
    return (F.pad(x, flat) if any(flat) else x), [slice(None), slice(None)] + spatial_crop


class UNetSkeleton(nn.Module):
    """Four 2×2×2 max-pool levels, trilinear ×2 upsampling, concatenation with the (transformed) skip, 1×1×1 head.

    Input (B, 4, D, H, W) of any size; output (B, 3, D, H, W) logits for WT, TC, ET.
    """

    def __init__(self, block: BlockFactory, width: int = 24, skip: SkipFactory | None = None, stem: bool = False):
        super().__init__()
        self.width = width
        widths = level_widths(width)
        skip = skip or (lambda skip_channels, gate_channels: IdentitySkip())
        if stem:  # a plain convolution first, for blocks that must not normalise the raw input
            first = nn.Sequential(nn.Conv3d(IN_CHANNELS, width, 3, padding=1, bias=False), block(width, width))
        else:
            first = block(IN_CHANNELS, width)
        self.encoder = nn.ModuleList([first] + [block(widths[i - 1], widths[i]) for i in range(1, LEVELS)])
        self.bottleneck = block(widths[LEVELS - 1], widths[LEVELS])
        decoder_out = [width] + widths[: LEVELS - 1]  # level 0 keeps w; level i gives the width of level i-1
        gate_channels = [decoder_out[i + 1] if i + 1 < LEVELS else widths[LEVELS] for i in range(LEVELS)]
        self.skips = nn.ModuleList([skip(widths[i], gate_channels[i]) for i in range(LEVELS)])
        self.decoder = nn.ModuleList(
            [block(widths[i] + gate_channels[i], decoder_out[i]) for i in range(LEVELS)]
        )
        self.head = nn.Conv3d(width, OUT_CHANNELS, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, crop = pad_to_multiple(x)
        return self.forward_padded(x)[tuple(crop)]

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of an input whose spatial sizes are already multiples of 16 (what an exported graph runs)."""
        skips = []
        for encoder in self.encoder:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool3d(x, 2)
        x = self.bottleneck(x)
        for level in reversed(range(LEVELS)):
            skip = self.skips[level](skips[level], x)
            x = F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)
            x = self.decoder[level](torch.cat([skip, x], dim=1))
        return self.head(x)
