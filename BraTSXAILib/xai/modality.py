"""Which MRI sequence carried each region's evidence: occlusion of one sequence at a time.

For a network and a region, the score is the sum of the region's logits over the voxels the network predicts for
it (under the label rule the labels are written with). Each sequence in turn is replaced by a neutral baseline —
0 after z-score normalisation, i.e. that sequence's mean brain intensity, which is also the background value —
and the drop of the score is that sequence's evidence. Shares are the positive drops normalised over the four
sequences, so they sum to 1 (a sequence whose removal raises the score gets 0). Logits, not probabilities: a
saturated sigmoid would hide how much evidence a sequence adds to an already sure voxel. It costs one forward
pass per sequence, without gradients.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..io import MODALITIES
from ..labels import REGIONS
from ..postprocess import LabelRule, rule_regions

CLAMP = 1e-6


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities.astype(np.float64), CLAMP, 1 - CLAMP)
    return np.log(p / (1 - p))


def region_scores(probabilities: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Sum of each region's logits over its own predicted voxels: one number per region."""
    logits = logits_of(probabilities)
    return np.array([logits[i][regions[i]].sum() for i in range(len(REGIONS))])


def shares(drops: np.ndarray) -> dict[str, dict[str, float]]:
    """Drops (modalities × regions) -> per region the positive drops normalised to sum 1 (all 0: no evidence)."""
    positive = np.clip(drops, 0.0, None)
    result = {}
    for index, region in enumerate(REGIONS):
        total = positive[:, index].sum()
        result[region] = {m: round(float(positive[k, index] / total), 4) if total > 0 else 0.0
                          for k, m in enumerate(MODALITIES)}
    return result


def modality_importance(forward: Callable[[np.ndarray], np.ndarray], array: np.ndarray,
                        probabilities: np.ndarray, rule: LabelRule, spacing: Sequence[float],
                        ) -> dict[str, dict[str, float]]:
    """Shares of evidence per region and sequence for a network given as `forward` (array -> probabilities, in
    network space), its input (4, z, y, x) and its probabilities on that input."""
    regions = rule_regions(probabilities, rule, spacing)
    base = region_scores(probabilities, regions)
    drops = []
    for channel in range(len(MODALITIES)):
        occluded = array.copy()
        occluded[channel] = 0.0
        drops.append(base - region_scores(forward(occluded), regions))
    return shares(np.array(drops))


def no_evidence_warnings(importance: dict[str, dict[str, float]], model: str) -> list[str]:
    """A region whose shares are all 0 has no share to show: removing any one sequence alone did not lower its
    score (the others carry it), which the manifest says rather than leave four zeros unexplained."""
    return [f"{model}: removing any one sequence alone does not lower the {region} score, so no sequence share "
            f"is given for {region}" for region, values in importance.items() if not any(values.values())]
