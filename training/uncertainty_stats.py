"""The statistics behind `training.uncertainty`: error-detection AUROC, QU-BraTS filtered Dice, calibration error,
the expected-Dice calibration, and the docs table."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from BraTSXAILib.labels import REGIONS
from BraTSXAILib.metrics import dice

BINS = 1000  # uncertainty histogram bins over [0, 1]: AUROC exact to ties within 0.001


def error_histograms(uncertainty: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """Counts (2, BINS) of the uncertainty of right (row 0) and wrong (row 1) voxels: cases pool by addition."""
    bins = np.clip((uncertainty * BINS).astype(np.int64), 0, BINS - 1)
    return np.stack([np.bincount(bins[~wrong], minlength=BINS), np.bincount(bins[wrong], minlength=BINS)])


def auroc_of_histograms(counts: np.ndarray) -> float:
    """Probability that a wrong voxel is more uncertain than a right one (ties count half): the Mann-Whitney AUROC."""
    right, wrong = counts[0].astype(np.float64), counts[1].astype(np.float64)
    if right.sum() == 0 or wrong.sum() == 0:
        return float("nan")
    right_below = np.cumsum(right) - right  # right voxels in lower bins
    return float(((right_below + 0.5 * right) * wrong).sum() / (right.sum() * wrong.sum()))


def filtered_dice(predicted: np.ndarray, truth: np.ndarray, uncertainty: np.ndarray, threshold: float,
                  ) -> tuple[float, float]:
    """QU-BraTS: Dice over the voxels whose uncertainty is ≤ threshold, and the share of true positives removed."""
    kept = uncertainty <= threshold
    true_positives = np.count_nonzero(predicted & truth)
    removed = np.count_nonzero(predicted & truth & ~kept) / true_positives if true_positives else 0.0
    return dice(predicted & kept, truth & kept), float(removed)


def ece(probability: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the voxel-weighted mean gap between mean probability and frequency per bin."""
    index = np.clip((probability * bins).astype(np.int64), 0, bins - 1)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    mean_p = np.bincount(index, weights=probability.astype(np.float64), minlength=bins)
    frequency = np.bincount(index, weights=truth.astype(np.float64), minlength=bins)
    filled = count > 0
    return float(np.abs(mean_p[filled] - frequency[filled]).sum() / count.sum())


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(x) < 2 or np.ptp(x) == 0:
        return float(np.mean(y - x)), 1.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def calibration_fit(soft: Sequence[float], true: Sequence[float]) -> dict:
    """The expected-Dice calibration of one region: identity (a=0, b=1) or a fitted line, whichever has the lower
    leave-one-out mean absolute error; with it, that error and the in-sample error."""
    x, y = np.asarray(soft, dtype=float), np.asarray(true, dtype=float)
    errors = {"identity": float(np.mean(np.abs(np.clip(x, 0, 1) - y)))}
    loo = []
    for held in range(len(x)):
        keep = np.arange(len(x)) != held
        a, b = _line(x[keep], y[keep])
        loo.append(abs(np.clip(a + b * x[held], 0, 1) - y[held]))
    errors["line"] = float(np.mean(loo)) if len(x) > 2 else float("inf")
    kind = min(errors, key=errors.get)
    a, b = (0.0, 1.0) if kind == "identity" else _line(x, y)
    return {"a": round(a, 4), "b": round(b, 4), "kind": kind, "loo_mae": round(errors[kind], 4),
            "identity_mae": round(errors["identity"], 4)}


def uncertainty_table(summary: dict, thresholds: Sequence[float]) -> str:
    """The markdown of docs/uncertainty.md's measured section."""
    n = len(summary["cases"])
    lines = [f"Validation cases ({n}): {', '.join(summary['cases'])}. Ensemble Dice WT/TC/ET "
             + "/".join(f"{summary['dice'][r]:.3f}" for r in REGIONS)
             + "; ECE of the ensemble probabilities inside the brain "
             + "/".join(f"{summary['ece'][r]:.4f}" for r in REGIONS) + ".", "",
             "| flips per network | seconds per case | AUROC WT | AUROC TC | AUROC ET | expected-Dice MAE WT/TC/ET "
             "(leave-one-out) | Spearman ρ WT/TC/ET |", "|" + " --- |" * 7]
    for count, row in summary["flips"].items():
        lines.append(f"| {count} | {row['seconds']:.1f} | " + " | ".join(f"{row['auroc'][r]:.3f}" for r in REGIONS)
                     + " | " + "/".join(f"{row['quality'][r]['loo_mae']:.3f}" for r in REGIONS)
                     + " | " + "/".join(f"{row['spearman'][r]:.2f}" for r in REGIONS) + " |")
    lines += ["", "Uncertainty-filtered Dice (QU-BraTS; share of true positives filtered away in brackets), "
              "per uncertainty threshold in bits:", "",
              "| flips | region | " + " | ".join(f"u ≤ {t:g}" for t in thresholds) + " |",
              "|" + " --- |" * (len(thresholds) + 2)]
    for count, row in summary["flips"].items():
        for region in REGIONS:
            cells = [f"{d:.3f} ({r:.2f})" for d, r in row["filtered_dice"][region]]
            lines.append(f"| {count} | {region} | " + " | ".join(cells) + " |")
    lines += ["", "Top sequence of the modality attribution, per network (cases out of "
              f"{n}): ET on T1ce, WT on FLAIR or T2.", "", "| network | ET → T1ce | WT → FLAIR/T2 |",
              "| --- | --- | --- |"]
    for model, row in summary["modality"].items():
        lines.append(f"| `{model}` | {row['ET_t1ce']} | {row['WT_flair_or_t2']} |")
    return "\n".join(lines) + "\n"
