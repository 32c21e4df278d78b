"""BCE-Dice loss of the study: L = BCE(logits, y) + (1 - soft Dice(sigmoid(logits), y)), per region channel."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_dice(probabilities: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice per (batch, channel): (2 Σ p t + s) / (Σ p + Σ t + s)."""
    dims = tuple(range(2, probabilities.ndim))
    intersection = (probabilities * target).sum(dims)
    total = probabilities.sum(dims) + target.sum(dims)
    return (2 * intersection + smooth) / (total + smooth)


class BCEDiceLoss(nn.Module):
    """Binary cross-entropy on logits plus soft Dice loss, both averaged over batch and WT/TC/ET channels.

    Computed in at least float32 whatever the autocast dtype, so that bf16 training stays stable.
    """

    def __init__(self, smooth: float = 1.0, bce_weight: float = 1.0, dice_weight: float = 1.0):
        super().__init__()
        self.smooth, self.bce_weight, self.dice_weight = smooth, bce_weight, dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(logits.dtype, torch.float32)
        logits, target = logits.to(dtype), target.to(dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        dice = soft_dice(torch.sigmoid(logits), target, self.smooth).mean()
        return self.bce_weight * bce + self.dice_weight * (1 - dice)
