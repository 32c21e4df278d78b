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

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .labels import REGIONS, bounding_box, labels_to_regions


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


def scores_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Dice, Jaccard, voxel accuracy, precision, recall (sensitivity) and F1 of one confusion matrix."""
    both_empty = tp + fp + fn == 0
    overlap = _ratio(2 * tp, 2 * tp + fp + fn, both_empty)
    return {"dice": overlap, "jaccard": _ratio(tp, tp + fp + fn, both_empty),
            "accuracy": (tp + tn) / (tp + fp + fn + tn), "precision": _ratio(tp, tp + fp, both_empty),
            "recall": _ratio(tp, tp + fn, both_empty), "f1": overlap}


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    return scores_from_counts(*confusion(prediction, truth))["dice"]


def jaccard(prediction: np.ndarray, truth: np.ndarray) -> float:
    return scores_from_counts(*confusion(prediction, truth))["jaccard"]


def voxel_scores(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Voxel accuracy, precision, recall (sensitivity) and F1, as reported in the study."""
    scores = scores_from_counts(*confusion(prediction, truth))
    return {name: scores[name] for name in ("accuracy", "precision", "recall", "f1")}


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of `mask` with a face-neighbour outside it (MONAI's `get_mask_edges`: the mask minus its erosion)."""
    return mask & ~ndimage.binary_erosion(mask)


def _surface_distances(source: np.ndarray, target: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distance (mm) from every voxel of the surface `source` to the nearest voxel of the surface `target`."""
    return ndimage.distance_transform_edt(~target, sampling=spacing)[source]


def hd95(prediction: np.ndarray, truth: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
         grid_shape: Sequence[int] | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance between mask surfaces, in millimetres.

    `spacing` is the voxel size along the array's axes, in the same order as the array; `grid_shape` is the whole
    grid's when the masks are cut from it (for the one-sided-empty distance). The definition is
    MONAI's `compute_hausdorff_distance(percentile=95)` (the larger of the two directed 95th percentiles); it is
    computed with SciPy on the masks' bounding box, because importing MONAI's metrics costs about 2 s per run.
    """
    prediction, truth = prediction.astype(bool), truth.astype(bool)
    has_prediction, has_truth = prediction.any(), truth.any()
    if not has_prediction and not has_truth:
        return 0.0
    if has_prediction != has_truth:
        shape = prediction.shape if grid_shape is None else grid_shape
        return float(np.linalg.norm(np.asarray(shape) * np.asarray(spacing, dtype=float)))
    box = bounding_box(prediction | truth, margin=1)  # surfaces and distances between them are the same inside
    predicted, true = _surface(prediction[box]), _surface(truth[box])
    spacing = [float(s) for s in spacing]
    return float(max(np.percentile(_surface_distances(predicted, true, spacing), 95),
                     np.percentile(_surface_distances(true, predicted, spacing), 95)))


def region_metrics(
    prediction_labels: np.ndarray,
    truth_labels: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    with_hd95: bool = True,
) -> dict[str, float]:
    """All metrics for WT/TC/ET of two BraTS label maps, flat keys like `dice_WT`, `hd95_ET`, `tp_TC`.
    Computed inside the box of both maps' labelled voxels; every voxel outside it is a true negative."""
    box = bounding_box((prediction_labels > 0) | (truth_labels > 0)) or (slice(0, 0),) * prediction_labels.ndim
    predicted, true = labels_to_regions(prediction_labels[box]), labels_to_regions(truth_labels[box])
    outside = prediction_labels.size - predicted[0].size
    scores: dict[str, float] = {}
    for index, region in enumerate(REGIONS):
        tp, fp, fn, tn = confusion(predicted[index], true[index])
        counts = (tp, fp, fn, tn + outside)
        scores.update({f"{name}_{region}": count for name, count in zip(("tp", "fp", "fn", "tn"), counts)})
        scores.update({f"{name}_{region}": value for name, value in scores_from_counts(*counts).items()})
        if with_hd95:
            scores[f"hd95_{region}"] = hd95(predicted[index], true[index], spacing, prediction_labels.shape)
    return scores
