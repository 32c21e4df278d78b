"""The BraTS challenge's own scoring beside ours: lesion-wise Dice and HD95 per region, as the 2023+ leaderboards
rank them, computed by the challenge's package `brats-evaluation` (Panoptica, its glioma config).

The package finds the lesions (connected components of each region), matches predicted to reference lesions
one to one (maximum bipartite matching on Dice) and scores every matched pair. A region's lesion-wise score is
the mean over its reference lesions of at least 50 mm³ and all its unmatched predicted lesions, where a missed or
false-positive lesion scores Dice 0 and HD95 373 mm: the 2023 leaderboard's rule, computed as the package's
`parse_mets_results` computes it (its 373 mm; the 2023 code used 374 mm and merged reference lesions closer than
3 voxels first, which Panoptica does not). A region empty in both maps scores Dice 1 and HD95 0, as in 2023.
`matched_dice` is the mean Dice of the matched lesions alone, which the package's `brats-parse-metrics seg` reports
as `lesionwise_dsc_mean`. The package is optional (`pip install 'brats-xai[brats]'`), imported only when asked for.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from BraTSXAILib.errors import InputError
from BraTSXAILib.labels import ET_LABELS, REGIONS

PENALTY_MM = 373.0  # the package's HD95 for a missed or false-positive lesion ("diameter of the SRI cube")
MIN_LESION_MM3 = 50.0  # smaller reference lesions are left out of the lesion-wise mean (2023 glioma rule)
GROUPS = {"WT": "wt", "TC": "tc", "ET": "et"}  # our regions -> the glioma config's label groups
GLIOMA_ET = 3  # the glioma config's enhancing-tumour label (its label 4 is a resection cavity)
INSTALL = "pip install 'brats-xai[brats]' (or: pip install brats-evaluation)"


def glioma_evaluator():
    """The package's evaluator with its bundled glioma config; a missing package is one clear InputError."""
    try:
        from brats_evaluation import config_path
        from panoptica import Panoptica_Evaluator
    except ImportError:
        raise InputError("--brats-scoring needs the BraTS challenge package brats-evaluation", INSTALL) from None
    return Panoptica_Evaluator.load_from_config(str(config_path("gli")))


def lesionwise(group: dict) -> tuple[float, float]:
    """Lesion-wise (Dice, HD95 mm) of one region from the package's result for it (`PanopticaResult.to_dict`)."""
    lesions = [lesion for lesion in group.get("reference_instances") or [] if lesion["volume"] >= MIN_LESION_MM3]
    false_positives = int(group.get("fp") or 0)
    if not lesions and not false_positives:
        return 1.0, 0.0
    dice = [lesion["sq_dsc"] if lesion.get("is_matched") else 0.0 for lesion in lesions] + [0.0] * false_positives
    hd95 = [lesion["sq_hd95"] if lesion.get("is_matched") else PENALTY_MM for lesion in lesions]
    hd95 += [PENALTY_MM] * false_positives
    return float(np.mean(dice)), float(np.mean([PENALTY_MM if math.isinf(h) else h for h in hd95]))


def challenge_scores(evaluator, prediction: np.ndarray, truth: np.ndarray, spacing: Sequence[float]) -> dict:
    """Lesion-wise Dice and HD95 and the lesion counts per region of two BraTS label maps (z, y, x), ET as 4 or 3;
    `spacing` in array order, mm."""
    def glioma(labels: np.ndarray) -> np.ndarray:
        return np.where(np.isin(labels, ET_LABELS), GLIOMA_ET, labels).astype(np.uint8)

    with warnings.catch_warnings():  # the package warns about its NSD's default tolerance, which is not used here
        warnings.simplefilter("ignore", UserWarning)
        results = evaluator.evaluate(glioma(prediction), glioma(truth), voxelspacing=tuple(float(s) for s in spacing),
                                     skip_groups=["netc", "snfh", "rc"], verbose=False)
    scores = {}
    for region in REGIONS:
        group = results[GROUPS[region]].to_dict(True)
        scores[f"lesionwise_dice_{region}"], scores[f"lesionwise_hd95_{region}"] = lesionwise(group)
        scores[f"matched_dice_{region}"] = float(group["sq_dsc"]) if group.get("tp") else math.nan
        scores.update({f"lesions_{count}_{region}": int(group.get(count) or 0) for count in ("tp", "fn", "fp")})
    return scores
