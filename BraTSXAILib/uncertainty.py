"""How sure the primary result is: test-time flips, an uncertainty map per region, and an expected Dice per case.

Members are every network run, each on the input as given and on `flips` mirrored copies (mirrored back after the
pass; left-right first, since a brain is nearly symmetric that way). The uncertainty of a region at a voxel is the
binary predictive entropy of the members' mean probability, in bits: 0 where every member is sure, 1 where the
mean is 0.5. The expected Dice of a region is the soft Dice between the written region and that mean
probability — the Dice the case would score if the truth were drawn voxel by voxel from the members' belief —
mapped through a straight line fitted on validation cases (`training.uncertainty`, stored in the registry with the
ensemble). The label map never depends on the flips: asking for uncertainty does not change the segmentation.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .labels import REGIONS, bounding_box

FLIP_AXES = ((2,), (1,), (0,), (1, 2), (0, 2), (0, 1), (0, 1, 2))  # array axes (z, y, x); x = left-right first
COLORMAP = "ColdToHotRainbow"
EPSILON = 1e-6
LOW_QUALITY = 0.5  # an expected Dice below this is flagged for a check by hand


def flipped(array: np.ndarray, index: int) -> np.ndarray:
    """The (C, z, y, x) array mirrored along the `index`-th entry of FLIP_AXES (its own inverse)."""
    return np.ascontiguousarray(np.flip(array, axis=tuple(1 + a for a in FLIP_AXES[index])))


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def entropy_bits(probabilities: np.ndarray) -> np.ndarray:
    """Binary entropy in bits of probabilities in [0, 1], float32: 0 where p ≤ ε or p ≥ 1 − ε (its limit there),
    so that logarithms are taken only inside the box of uncertain voxels; most of a volume is surely background."""
    p = np.asarray(probabilities, dtype=np.float32)
    entropy = np.zeros(p.shape, dtype=np.float32)
    uncertain = (p > EPSILON) & (p < 1 - EPSILON)
    box = bounding_box(uncertain)
    if box is not None:
        inside = p[box]
        entropy[box] = np.where(uncertain[box], _binary_entropy(np.clip(inside, EPSILON, 1 - EPSILON)), 0.0)
    return entropy


def soft_dice(probability: np.ndarray, mask: np.ndarray) -> float:
    """2 Σ p·m / (Σ p + Σ m): 1.0 when both are empty (the metrics' empty-region rule)."""
    denominator = float(probability.sum(dtype=np.float64)) + float(np.count_nonzero(mask))
    if denominator == 0:
        return 1.0
    return float(2 * probability[mask].sum(dtype=np.float64) / denominator)


def expected_dice(mean: np.ndarray, regions: np.ndarray,
                  calibration: Mapping[str, Sequence[float]] | None = None) -> dict[str, dict[str, float]]:
    """Per region: the soft Dice of the written regions (3, ...) against the members' mean probabilities
    (3, ...), and the calibrated estimate `a + b × soft Dice` clipped to [0, 1] (soft Dice itself uncalibrated)."""
    quality = {}
    for index, region in enumerate(REGIONS):
        raw = soft_dice(mean[index], regions[index])
        a, b = (calibration or {}).get(region, (0.0, 1.0))
        quality[region] = {"expected_dice": round(float(np.clip(a + b * raw, 0.0, 1.0)), 4),
                           "soft_dice": round(raw, 4)}
    return quality


def quality_warnings(quality: Mapping[str, Mapping[str, float]], model: str) -> list[str]:
    return [f"{model}: expected {region} Dice {scores['expected_dice']:.2f} is below {LOW_QUALITY}: "
            f"check this region by hand" for region, scores in quality.items()
            if scores["expected_dice"] < LOW_QUALITY]


def _accumulate(total: np.ndarray | None, member: np.ndarray) -> np.ndarray:
    """A running sum in place (volumes are ~100 MB each); the first member is copied, never changed."""
    if total is None:
        return member.astype(np.float32, copy=True)
    total += member
    return total


class Members:
    """Running sums of the members' probabilities on the reference grid: the networks alone (they make the
    primary labels) and the networks with their flipped passes (they make the uncertainty)."""

    def __init__(self):
        self.plain: np.ndarray | None = None
        self.extra: np.ndarray | None = None
        self.networks = 0
        self.flips = 0

    def add_network(self, on_reference: np.ndarray) -> None:
        self.plain = _accumulate(self.plain, on_reference)
        self.networks += 1

    def add_flip(self, on_reference: np.ndarray) -> None:
        self.extra = _accumulate(self.extra, on_reference)
        self.flips += 1

    def mean(self) -> np.ndarray:
        return self.plain / self.networks

    def belief(self) -> np.ndarray:
        """Mean over every member, flips included."""
        total = self.plain if self.extra is None else self.plain + self.extra
        return total / (self.networks + self.flips)


def flip_passes(forward: Callable[[np.ndarray], np.ndarray], array: np.ndarray, flips: int,
                to_reference: Callable[[np.ndarray], np.ndarray], members: Members) -> None:
    """Add `flips` mirrored passes of one network (network-space `forward`) to `members`."""
    for index in range(flips):
        probabilities = flipped(forward(flipped(array, index)), index)
        members.add_flip(to_reference(probabilities))
