"""How much the networks agree with each other, and with a ground truth, per tumour region (Dice).

Label maps are compared through their nested WT/TC/ET regions (BraTSXAILib.labels) with the library's Dice
(BraTSXAILib.metrics: 1.0 when both regions are empty). Imported on demand, as the metrics pull in torch.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .manifest import model_label

REGIONS = ("WT", "TC", "ET")  # = BraTSXAILib.labels.REGIONS


@dataclass(frozen=True)
class AgreementRow:
    comparison: str  # "UNet vs Residual UNet" or "UNet vs ground truth"
    dice: tuple[float, float, float]  # WT, TC, ET


def _region_dice(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    from BraTSXAILib.labels import labels_to_regions
    from BraTSXAILib.metrics import dice

    if a.shape != b.shape:
        raise ValueError(f"label maps of different shapes {a.shape} and {b.shape} cannot be compared")
    regions_a, regions_b = labels_to_regions(a), labels_to_regions(b)
    return tuple(dice(regions_a[r], regions_b[r]) for r in range(len(REGIONS)))


def agreement_rows(label_maps: Mapping[str, np.ndarray], truth: np.ndarray | None = None) -> list[AgreementRow]:
    """Dice per region for every pair of models, then for every model against `truth` when one is given."""
    rows = [
        AgreementRow(f"{model_label(a)} vs {model_label(b)}", _region_dice(label_maps[a], label_maps[b]))
        for a, b in combinations(label_maps, 2)
    ]
    if truth is not None:
        rows += [AgreementRow(f"{model_label(m)} vs ground truth", _region_dice(label_maps[m], truth))
                 for m in label_maps]
    return rows
