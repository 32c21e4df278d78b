"""All faithfulness measures for one network and one case, as table rows (one per class).

Used by `brats-xai faithfulness` (CSV) and by choose_layer.py. Maps are explained for the predicted regions;
the pointing game is scored against the prediction and, when a ground truth is given, against it too.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..choices import DEFAULT_LAYER
from ..labels import REGIONS
from ..postprocess import LabelRule
from .cam import make_cam
from .explain import brain_voxels
from .faithfulness import (RANDOMISATION_STAGES, cascading_randomisation, deletion_insertion, energy_pointing_game,
                           triviality)
from .targets import make_targets, predicted_masks, truth_masks

AREA_COLUMNS = ("deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random")
STAGES = tuple(stage for stage, _ in RANDOMISATION_STAGES)
COLUMNS = (
    "class", "method", "layer", "voxels_prediction", "voxels_truth", "pointing_prediction", "pointing_truth",
    "triviality", *AREA_COLUMNS, *(f"rank_correlation_{stage}" for stage in STAGES),
)


def _number(value: float) -> float | None:
    """NaN (undefined, e.g. an empty map) as None, so that CSV and JSON show a blank, not a fake number."""
    return None if value is None or np.isnan(value) else float(value)


def evaluate_explanations(model: nn.Module, x: torch.Tensor, classes: Sequence[str] = REGIONS,
                          method: str = "gradcam", layer: str = DEFAULT_LAYER, truth: np.ndarray | None = None,
                          steps: int = 10, baseline: str = "blur", curves: bool = True, randomisation: bool = True,
                          seed: int = 0, progress: Callable[[str], None] | None = None,
                          rule: LabelRule | None = None, spacing: Sequence[float] = (1.0, 1.0, 1.0),
                          precision: str = "float32") -> list[dict]:
    """Rows with the COLUMNS above for each class; measures left out (or undefined) are None. Maps explain the
    regions `rule` predicts (the model's label rule, on voxels of `spacing` mm; default p ≥ 0.5), from Grad-CAM
    passes in `precision` (a resolved one)."""
    report = progress or (lambda stage: None)
    report(f"{method} maps")
    cam = make_cam(method, model, layer, precision)
    result = cam(x, lambda logits: make_targets(classes, predicted_masks(logits, rule, spacing), x.device))
    targets = result.targets
    live = [target for target in targets if not target.empty]
    brain = brain_voxels(x)
    truths = truth_masks(truth) if truth is not None else None
    perturbation, correlations = {}, {}
    if curves and live:
        report("deletion and insertion curves")
        perturbation = deletion_insertion(model, x, live, result.maps, brain, steps, baseline, seed)
    if randomisation and live:
        report("parameter randomisation")
        correlations = cascading_randomisation(model, x, live, method, cam.layer, seed,
                                               {target.name: result.maps[target.name] for target in live}, precision)
    rows = []
    for target in targets:
        saliency = result.maps[target.name]
        curve = perturbation.get(target.name, {})
        rows.append({
            "class": target.name, "method": method, "layer": cam.layer,
            "voxels_prediction": int(target.mask.sum()),
            "voxels_truth": int(truths[target.name].sum()) if truths is not None else None,
            "pointing_prediction": _number(energy_pointing_game(saliency, target.mask.cpu().numpy())),
            "pointing_truth": _number(energy_pointing_game(saliency, truths[target.name]))
            if truths is not None else None,
            "triviality": _number(triviality(saliency, target.logit_map(result.logits)[0].cpu().numpy(), brain)),
            **{key: _number(curve.get(key)) for key in AREA_COLUMNS},
            **{f"rank_correlation_{stage}": _number(correlations.get(stage, {}).get(target.name)) for stage in STAGES},
        })
    return rows
