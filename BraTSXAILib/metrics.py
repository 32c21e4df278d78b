"""Overlap, voxel-classification and surface metrics per tumour region (WT, TC, ET).

Empty-region conventions (stated once, used everywhere):
- Dice, Jaccard, precision, recall, F1: a ratio whose denominator is zero is 1.0 when prediction and truth
  are both empty (nothing to find, nothing found) and 0.0 otherwise.
- HD95: 0.0 mm when both are empty; when exactly one is empty, the length of the image's diagonal in mm
  (the largest distance possible inside the volume; √(240² + 240² + 155²) = 373.13 mm for a 240×240×155 1 mm BraTS
  grid).

Every region also reports its voxel counts (`tp_WT`, `fp_WT`, `fn_WT`, `tn_WT`, ...), so that scores can be pooled
over cases and regions as the study's classification table pools them (training/report.py).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .labels import REGIONS, labels_to_regions


def _ratio(numerator: float, denominator: float, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return float(numerator / denominator)


def confusion(prediction: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    """True positives, false positives, false negatives, true negatives of two boolean masks."""
    prediction, truth = prediction.astype(bool), truth.astype(bool)
    tp = int(np.count_nonzero(prediction & truth))
    fp = int(np.count_nonzero(prediction & ~truth))
    fn = int(np.count_nonzero(~prediction & truth))
    return tp, fp, fn, prediction.size - tp - fp - fn


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    tp, fp, fn, _ = confusion(prediction, truth)
    return _ratio(2 * tp, 2 * tp + fp + fn, tp + fp + fn == 0)


def jaccard(prediction: np.ndarray, truth: np.ndarray) -> float:
    tp, fp, fn, _ = confusion(prediction, truth)
    return _ratio(tp, tp + fp + fn, tp + fp + fn == 0)


def voxel_scores(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Voxel accuracy, precision, recall (sensitivity) and F1, as reported in the study."""
    tp, fp, fn, tn = confusion(prediction, truth)
    both_empty = tp + fp + fn == 0
    precision = _ratio(tp, tp + fp, both_empty)
    recall = _ratio(tp, tp + fn, both_empty)
    return {
        "accuracy": (tp + tn) / prediction.size,
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, both_empty),
    }


def hd95(prediction: np.ndarray, truth: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> float:
    """95th-percentile symmetric Hausdorff distance between mask surfaces, in millimetres.

    `spacing` is the voxel size along the array's axes, in the same order as the array.
    """
    prediction, truth = prediction.astype(bool), truth.astype(bool)
    has_prediction, has_truth = prediction.any(), truth.any()
    if not has_prediction and not has_truth:
        return 0.0
    if has_prediction != has_truth:
        return float(np.linalg.norm(np.asarray(prediction.shape) * np.asarray(spacing, dtype=float)))
    from monai.metrics import compute_hausdorff_distance  # MONAI costs 1–2 s to import: only when needed

    with warnings.catch_warnings():  # MONAI 1.5+ warns about its own internal use of a deprecated argument
        warnings.simplefilter("ignore", FutureWarning)
        distance = compute_hausdorff_distance(
            torch.from_numpy(prediction)[None, None],
            torch.from_numpy(truth)[None, None],
            percentile=95,
            spacing=[float(s) for s in spacing],
        )
    return float(distance.item())


def region_metrics(
    prediction_labels: np.ndarray,
    truth_labels: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    with_hd95: bool = True,
) -> dict[str, float]:
    """All metrics for WT/TC/ET of two BraTS label maps, flat keys like `dice_WT`, `hd95_ET`, `tp_TC`."""
    predicted, true = labels_to_regions(prediction_labels), labels_to_regions(truth_labels)
    scores: dict[str, float] = {}
    for index, region in enumerate(REGIONS):
        counts = confusion(predicted[index], true[index])
        scores.update({f"{name}_{region}": count for name, count in zip(("tp", "fp", "fn", "tn"), counts)})
        scores[f"dice_{region}"] = dice(predicted[index], true[index])
        scores[f"jaccard_{region}"] = jaccard(predicted[index], true[index])
        if with_hd95:
            scores[f"hd95_{region}"] = hd95(predicted[index], true[index], spacing)
        for name, value in voxel_scores(predicted[index], true[index]).items():
            scores[f"{name}_{region}"] = value
    return scores
