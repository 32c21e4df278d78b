"""How much the networks agree with each other, and with a ground truth, per tumour region (Dice).

Pairs of networks are compared here with numpy on their label maps; Dice against the ground truth comes from the
manifest's `metrics` (the library computes it when the case folder holds a `_seg` file, which the module writes).
No torch or MONAI enters Slicer's process for this.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .manifest import REGIONS, model_label

_REGION_LABELS = {"WT": (1, 2, 3, 4), "TC": (1, 3, 4), "ET": (3, 4)}  # BraTS 2018 (ET 4) and 2023 (ET 3) labels


@dataclass(frozen=True)
class AgreementRow:
    comparison: str  # "UNet vs Residual UNet" or "UNet vs ground truth"
    dice: tuple[float, float, float]  # WT, TC, ET


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A∩B| / (|A|+|B|); 1.0 when both are empty (as BraTSXAILib.metrics.dice)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def region_dice(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    if a.shape != b.shape:
        raise ValueError(f"label maps of different shapes {a.shape} and {b.shape} cannot be compared")
    return tuple(_dice(np.isin(a, _REGION_LABELS[r]), np.isin(b, _REGION_LABELS[r])) for r in REGIONS)


def truth_rows(metrics: Mapping[str, Mapping], models) -> list[AgreementRow]:
    """"<model> vs ground truth" rows from the manifest's per-model `dice_WT/TC/ET`, for models that have them."""
    rows = []
    for model in models:
        values = metrics.get(model) or {}
        if all(f"dice_{r}" in values for r in REGIONS):
            rows.append(AgreementRow(f"{model_label(model)} vs ground truth",
                                     tuple(float(values[f"dice_{r}"]) for r in REGIONS)))
    return rows


def agreement_rows(label_maps: Mapping[str, np.ndarray], metrics: Mapping[str, Mapping] | None = None
                   ) -> list[AgreementRow]:
    """Dice per region for every pair of models, then each model against the ground truth where metrics have it."""
    rows = [
        AgreementRow(f"{model_label(a)} vs {model_label(b)}", region_dice(label_maps[a], label_maps[b]))
        for a, b in combinations(label_maps, 2)
    ]
    return rows + truth_rows(metrics or {}, label_maps)
