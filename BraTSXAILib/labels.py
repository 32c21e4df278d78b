"""BraTS label maps and the nested WT/TC/ET region channels the networks predict.

Label map values: 1 = necrotic/non-enhancing core (NCR), 2 = peritumoral edema (ED),
4 = enhancing tumour (ET), or 3 for ET in BraTS 2023+ naming.
Regions: WT = 1+2+ET, TC = 1+ET, ET = ET, always nested ET ⊆ TC ⊆ WT.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .choices import ET_LABELS

REGIONS = ("WT", "TC", "ET")
REGION_NAMES = {"WT": "whole tumour", "TC": "tumour core", "ET": "enhancing tumour"}

NCR, ED = 1, 2


def label_classes(et_label: int = 4) -> list[dict]:
    """What a viewer needs for each label value: value, name, RGB colour (Slicer's tumour colours)."""
    return [
        {"value": NCR, "name": "necrotic core", "color": [1.0, 0.0, 0.0]},
        {"value": ED, "name": "edema", "color": [0.0, 1.0, 0.0]},
        {"value": et_label, "name": "enhancing tumour", "color": [1.0, 1.0, 0.0]},
    ]


def bounding_box(mask: np.ndarray, margin: int | Sequence[int] = 0) -> tuple[slice, ...] | None:
    """The smallest box holding every voxel of `mask`, widened by `margin` voxels (one number, or one per axis)
    inside the array; None if empty. Label rules and metrics work inside it: a tumour fills a few percent of the
    grid."""
    margins = [margin] * mask.ndim if isinstance(margin, int) else list(margin)
    box = []
    for axis, widen in enumerate(margins):
        present = np.flatnonzero(mask.any(axis=tuple(other for other in range(mask.ndim) if other != axis)))
        if present.size == 0:
            return None
        box.append(slice(max(int(present[0]) - widen, 0), min(int(present[-1]) + 1 + widen, mask.shape[axis])))
    return tuple(box)


def labels_to_regions(label_map: np.ndarray) -> np.ndarray:
    """Label map (1/2/4 or 1/2/3) -> boolean array (3, *shape) for WT, TC, ET."""
    et = np.isin(label_map, ET_LABELS)
    tc = et | (label_map == NCR)
    wt = tc | (label_map == ED)
    return np.stack([wt, tc, et])


def enforce_nesting(regions: np.ndarray) -> np.ndarray:
    """Make ET ⊆ TC ⊆ WT by intersection: a voxel is core only if tumour, enhancing only if core."""
    wt = regions[0].astype(bool)
    tc = regions[1].astype(bool) & wt
    et = regions[2].astype(bool) & tc
    return np.stack([wt, tc, et])


def regions_to_labels(regions: np.ndarray, et_label: int = 4) -> np.ndarray:
    """Boolean (3, *shape) WT/TC/ET -> uint8 label map, nesting enforced first."""
    if et_label not in ET_LABELS:
        raise ValueError(f"enhancing-tumour label must be 4 or 3, got {et_label}")
    wt, tc, et = enforce_nesting(regions)
    labels = np.zeros(wt.shape, dtype=np.uint8)
    labels[wt] = ED
    labels[tc] = NCR
    labels[et] = et_label
    return labels
