"""The networks' input/output channels and the padding their four poolings need, without torch: the OpenVINO
path pads and crops numpy arrays with the same rule as the PyTorch skeleton."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LEVELS = 4
DIVISOR = 2**LEVELS
IN_CHANNELS = 4  # T1, T1ce, T2, FLAIR
OUT_CHANNELS = 3  # WT, TC, ET logits


def padding_for(spatial_shape: Sequence[int], divisor: int = DIVISOR) -> tuple[list[tuple[int, int]], list[slice]]:
    """(before, after) zero padding per spatial axis, split evenly, reaching a multiple of `divisor`, and the
    spatial crop that undoes it. Shared by the forward pass and by code that maps internal feature maps back."""
    pads, crop = [], []
    for size in spatial_shape:
        extra = -size % divisor
        before = extra // 2
        pads.append((before, extra - before))
        crop.append(slice(before, before + size))
    return pads, crop


def pad_array(batch: np.ndarray, divisor: int = DIVISOR) -> tuple[np.ndarray, tuple[slice, ...]]:
    """`batch` (B, C, z, y, x) zero-padded like the skeleton pads its input, and the crop that undoes it."""
    pads, spatial_crop = padding_for(batch.shape[2:], divisor)
    padded = np.pad(batch, [(0, 0), (0, 0), *pads]) if any(sum(pair) for pair in pads) else batch
    return padded, (slice(None), slice(None), *spatial_crop)
