"""What an explanation explains: a score computed from the network's logits, one per class and case.

A segmentation network has no single class score, so each target sums the **logits** of a region channel over a
voxel set: the predicted region (default), the ground truth, one connected component, or a single voxel.
Logits rather than sigmoid probabilities, because a saturated sigmoid has almost no gradient in exactly the
voxels the network is most sure about.

Besides the nested regions WT, TC, ET there are two exclusive classes, whose score also pushes the enclosing
region apart from the enclosed one (the logit difference, summed over the exclusive voxels):
- ED (edema) = WT and not TC, score Σ (z_WT − z_TC);
- NCR (necrotic core) = TC and not ET, score Σ (z_TC − z_ET).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ..errors import InputError
from ..labels import enforce_nesting, labels_to_regions
from ..postprocess import LabelRule, rule_regions

# class -> (channel whose logits count, channel subtracted or None)
CLASS_CHANNELS: dict[str, tuple[int, int | None]] = {"WT": (0, None), "TC": (1, None), "ET": (2, None),
                                                      "ED": (0, 1), "NCR": (1, 2)}
CLASSES = tuple(CLASS_CHANNELS)
CLASS_NAMES = {"WT": "whole tumour", "TC": "tumour core", "ET": "enhancing tumour", "ED": "edema",
               "NCR": "necrotic core"}
VOXEL_SETS = ("prediction", "truth", "component", "voxel")


@dataclass(frozen=True)
class RegionTarget:
    """Sum over `mask` of the class's logit expression (z_include, or z_include − z_exclude)."""

    name: str
    mask: torch.Tensor  # bool (z, y, x) on the network's input grid
    include: int
    exclude: int | None = None
    voxel_set: str = "prediction"

    @property
    def empty(self) -> bool:
        """An empty voxel set has a constant score: nothing to explain, and the map would be zero."""
        return not bool(self.mask.any())

    def logit_map(self, logits: torch.Tensor) -> torch.Tensor:
        """The per-voxel logit expression (B, z, y, x) whose masked sum is the score."""
        values = logits[:, self.include]
        return values if self.exclude is None else values - logits[:, self.exclude]

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """Scalar score of logits (B, 3, z, y, x), summed over the batch."""
        return (self.logit_map(logits) * self.mask.to(logits.dtype)).sum()

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean sigmoid of the logit expression over the voxel set: a bounded score for deletion/insertion."""
        values = torch.sigmoid(self.logit_map(logits))[:, self.mask]
        return values.mean() if values.numel() else values.sum()


def class_masks(regions: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean WT/TC/ET regions (3, z, y, x) -> the voxel set of every class, with ET ⊆ TC ⊆ WT enforced."""
    wt, tc, et = enforce_nesting(regions)
    return {"WT": wt, "TC": tc, "ET": et, "ED": wt & ~tc, "NCR": tc & ~et}


def predicted_masks(logits: torch.Tensor, rule: LabelRule | None = None,
                    spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, np.ndarray]:
    """Class voxel sets of the prediction of logits (1, 3, z, y, x) under the label rule the labels are written
    with (default: p ≥ 0.5 everywhere, no post-processing), so a map explains the region the user sees."""
    probabilities = torch.sigmoid(logits[0].float()).detach().cpu().numpy()
    return class_masks(rule_regions(probabilities, rule or LabelRule(), spacing))


def truth_masks(label_map: np.ndarray) -> dict[str, np.ndarray]:
    """Class voxel sets of a BraTS label map (z, y, x) with labels 1, 2 and 4 (or 3)."""
    return class_masks(labels_to_regions(label_map))


def component_mask(mask: np.ndarray, voxel: Sequence[int] | None = None) -> np.ndarray:
    """One connected component (26-connectivity) of `mask`: the one holding `voxel`, or else the largest."""
    components, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    if voxel is not None:
        index = components[tuple(int(v) for v in voxel)]
        if index == 0:
            raise InputError(f"voxel {tuple(voxel)} is outside the region", "pick a voxel inside the region")
        return components == index
    sizes = np.bincount(components.ravel())[1:]
    return components == 1 + int(np.argmax(sizes))


def voxel_mask(shape: Sequence[int], voxel: Sequence[int]) -> np.ndarray:
    """A voxel set holding only `voxel` (z, y, x)."""
    if len(voxel) != len(shape) or not all(0 <= int(v) < n for v, n in zip(voxel, shape)):
        raise InputError(f"voxel {tuple(voxel)} lies outside the volume of shape {tuple(shape)}",
                         "give z, y, x indices inside the volume")
    mask = np.zeros(tuple(shape), dtype=bool)
    mask[tuple(int(v) for v in voxel)] = True
    return mask


def check_classes(classes: Iterable[str]) -> list[str]:
    """Validated class names in the order given (unknown names are the user's mistake)."""
    classes = list(classes)
    unknown = [c for c in classes if c not in CLASS_CHANNELS]
    if unknown:
        raise InputError(f"unknown class {', '.join(unknown)}", f"choose from {', '.join(CLASSES)}")
    return classes


def make_targets(classes: Iterable[str], masks: Mapping[str, np.ndarray], device: torch.device | str = "cpu",
                 voxel_set: str = "prediction") -> list[RegionTarget]:
    """One target per class over the given voxel sets (from `predicted_masks`, `truth_masks`, ...)."""
    if voxel_set not in VOXEL_SETS:
        raise InputError(f"unknown voxel set '{voxel_set}'", f"choose from {', '.join(VOXEL_SETS)}")
    targets = []
    for name in check_classes(classes):
        include, exclude = CLASS_CHANNELS[name]
        mask = torch.from_numpy(np.ascontiguousarray(masks[name], dtype=bool)).to(device)
        targets.append(RegionTarget(name, mask, include, exclude, voxel_set))
    return targets


__all__ = ["CLASSES", "CLASS_CHANNELS", "CLASS_NAMES", "RegionTarget", "VOXEL_SETS", "check_classes",
           "class_masks", "component_mask", "make_targets", "predicted_masks", "truth_masks", "voxel_mask"]
