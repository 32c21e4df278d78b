"""Summary statistics for the report: mean ± SD or SE, pooled voxel scores, paired Wilcoxon signed-rank tests."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import wilcoxon


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample SD / √n); the error is NaN for fewer than two values."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return math.nan, math.nan
    se = float(array.std(ddof=1) / math.sqrt(array.size)) if array.size > 1 else math.nan
    return float(array.mean()), se


def format_mean_se(values: Sequence[float], digits: int = 3) -> str:
    mean, se = mean_se(values)
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def paired_wilcoxon(first: Sequence[float], second: Sequence[float]) -> tuple[float, float]:
    """Median of the paired differences (first − second) and the two-sided Wilcoxon signed-rank p-value.

    Identical samples give p = 1; fewer than two pairs give p = NaN (no test is possible).
    """
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    differences = differences[np.isfinite(differences)]
    if differences.size == 0:
        return math.nan, math.nan
    median = float(np.median(differences))
    if not differences.any():
        return median, 1.0
    if differences.size < 2:
        return median, math.nan
    return median, float(wilcoxon(differences).pvalue)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (the spread of the values themselves); SD is NaN below two values."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else math.nan


def format_mean_sd(values: Sequence[float], digits: int = 3) -> str:
    mean, sd = mean_sd(values)
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def pooled_scores(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of summed voxel counts, as the study's classification table computes
    them (one confusion matrix over all voxels; a zero denominator gives NaN, there is nothing to score)."""
    def ratio(numerator, denominator):
        return numerator / denominator if denominator else math.nan

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {"accuracy": ratio(tp + tn, tp + fp + fn + tn), "precision": precision, "recall": recall,
            "f1": ratio(2 * tp, 2 * tp + fp + fn)}
