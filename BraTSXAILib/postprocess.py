"""From WT/TC/ET probabilities on the reference grid to the label map users get, and that evaluation scores.

One rule for both paths (`brats-xai segment` and `training.evaluate`), so the model card's numbers are what a
user's files would score. A `LabelRule` holds a threshold per region and the two post-processing steps of BraTS
practice, both chosen on validation cases (`training.calibrate`) and stored with the weights' registry entry:
- an enhancing-tumour component smaller than `min_et_mm3` becomes necrotic core (it stays tumour core: small
  enhancing specks are mostly vessels or noise, and BraTS scores an ET false positive in an ET-free case as 0);
- a whole-tumour component smaller than `min_wt_mm3` is removed (isolated specks far from the tumour).
Sizes are in mm³ so that a rule holds on any voxel size.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from .errors import InputError
from .labels import REGIONS, bounding_box, enforce_nesting, regions_to_labels
from .preprocess import Geometry

CONNECTIVITY = ndimage.generate_binary_structure(3, 3)  # 26-neighbourhood: diagonal touching is one component


def _default_thresholds() -> dict[str, float]:
    return {region: 0.5 for region in REGIONS}


@dataclass(frozen=True)
class LabelRule:
    """Per-region thresholds (p ≥ t is in the region) and minimum component sizes (0 switches a step off)."""

    thresholds: Mapping[str, float] = field(default_factory=_default_thresholds)
    min_et_mm3: float = 0.0
    min_wt_mm3: float = 0.0

    def __post_init__(self):
        if set(self.thresholds) != set(REGIONS):
            raise InputError(f"a label rule needs thresholds for {', '.join(REGIONS)}", "fix the registry entry")
        for region, value in self.thresholds.items():
            if not 0.0 < float(value) < 1.0:
                raise InputError(f"threshold {value} for {region} is outside (0, 1)", "give a probability such as 0.5")
        if self.min_et_mm3 < 0 or self.min_wt_mm3 < 0:
            raise InputError("minimum component sizes must be ≥ 0 mm³", "fix the registry entry")

    def with_threshold(self, threshold: float | None) -> LabelRule:
        """The rule with one threshold for every region (a user's `--threshold`); unchanged for None."""
        if threshold is None:
            return self
        return LabelRule({region: float(threshold) for region in REGIONS}, self.min_et_mm3, self.min_wt_mm3)

    def to_dict(self) -> dict:
        return {**asdict(self), "thresholds": {region: float(self.thresholds[region]) for region in REGIONS}}

    @classmethod
    def from_dict(cls, raw: Mapping | None) -> LabelRule:
        if not raw:
            return cls()
        return cls({region: float(value) for region, value in raw.get("thresholds", _default_thresholds()).items()},
                   float(raw.get("min_et_mm3", 0.0)), float(raw.get("min_wt_mm3", 0.0)))


def small_components(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """The voxels of `mask` in connected components of fewer than `min_voxels` voxels."""
    if min_voxels <= 0 or not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    components, count = ndimage.label(mask, structure=CONNECTIVITY)
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    small = sizes < min_voxels
    small[0] = False
    return small[components]


def apply_rule(regions: np.ndarray, rule: LabelRule, spacing: Sequence[float]) -> np.ndarray:
    """Nested boolean WT/TC/ET after the rule's post-processing, for boolean (3, z, y, x) regions."""
    voxel_mm3 = float(np.prod(spacing))
    wt, tc, et = enforce_nesting(regions)
    removed = small_components(wt, rule.min_wt_mm3 / voxel_mm3)
    wt, tc, et = wt & ~removed, tc & ~removed, et & ~removed
    et = et & ~small_components(et, rule.min_et_mm3 / voxel_mm3)  # demoted ET stays in TC: necrotic core
    return np.stack([wt, tc, et])


def _rule_in_box(probabilities: np.ndarray, rule: LabelRule, spacing: Sequence[float],
                 ) -> tuple[tuple[slice, ...] | None, np.ndarray | None]:
    """The rule run inside the box of the voxels that pass any threshold (outside it every region is empty, and a
    tumour fills a few percent of the grid): the box and the regions (3, ...) inside it; (None, None) if empty."""
    candidates = np.zeros(probabilities.shape[1:], dtype=bool)
    for region, channel in zip(REGIONS, probabilities):
        candidates |= channel >= rule.thresholds[region]
    box = bounding_box(candidates)
    if box is None:
        return None, None
    thresholds = np.array([rule.thresholds[region] for region in REGIONS], dtype=np.float32)
    return box, apply_rule(probabilities[(slice(None), *box)] >= thresholds[:, None, None, None], rule, spacing)


def rule_regions(probabilities: np.ndarray, rule: LabelRule, spacing: Sequence[float]) -> np.ndarray:
    """Thresholded and post-processed regions (3, z, y, x) of WT/TC/ET probabilities."""
    regions = np.zeros(probabilities.shape, dtype=bool)
    box, inside = _rule_in_box(probabilities, rule, spacing)
    if box is not None:
        regions[(slice(None), *box)] = inside
    return regions


def labels_from_probabilities(probabilities: np.ndarray, rule: LabelRule, spacing: Sequence[float],
                              et_label: int = 4) -> np.ndarray:
    """BraTS label map (uint8, z, y, x) from probabilities (3, z, y, x) on the grid of voxel size `spacing`."""
    labels = np.zeros(probabilities.shape[1:], dtype=np.uint8)
    box, inside = _rule_in_box(probabilities, rule, spacing)
    if box is not None:
        labels[box] = regions_to_labels(inside, et_label)
    return labels


def reference_probabilities(probabilities: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Network-space probabilities (3, ...) mapped onto the reference grid (linear), float32 (3, z, y, x)."""
    on_reference = np.zeros((len(probabilities), *geometry.reference.shape), dtype=np.float32)
    for channel, target in zip(probabilities, on_reference):
        geometry.to_reference_array(channel.astype(np.float32), "linear", out=target)
    return on_reference


def segment_probabilities(probabilities: np.ndarray, geometry: Geometry, rule: LabelRule,
                          et_label: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """What `segment` writes and evaluation scores: the probabilities on the reference grid, and the label map
    made from them there (map back first, then threshold and post-process)."""
    on_reference = reference_probabilities(probabilities, geometry)
    spacing = geometry.reference.spacing[::-1]
    return on_reference, labels_from_probabilities(on_reference, rule, spacing, et_label)
