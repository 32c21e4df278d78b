"""From a network and one preprocessed case to display-ready explanation maps with their manifest fields.

This is what the pipeline calls: maps come back on the network's input grid (the pipeline maps them onto the
reference grid with `Geometry.to_reference`), as float32 display values in [0, 1] (display.py's rule; the raw
map is value × raw_range[1]), with the warnings a user must see: an empty region, a map without positive
evidence, a map that only repeats the prediction.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..choices import DEFAULT_LAYER
from ..labels import REGIONS
from ..postprocess import LabelRule
from .attention import DEFAULT_LEVEL, attention_volumes, read_attention
from .cam import make_cam
from .display import COLORMAP, display_map
from .faithfulness import TRIVIAL_THRESHOLD, triviality
from .targets import CLASS_NAMES, make_targets, predicted_masks


@dataclass
class Explanation:
    """One map to write: `key` names the file part (class or map+level), `fields` go into its manifest entry."""

    kind: str
    key: str
    values: np.ndarray
    fields: dict


def brain_voxels(x: torch.Tensor) -> np.ndarray:
    """Brain voxels of a preprocessed case (1, 4, z, y, x): preprocessing leaves exactly 0 outside the brain."""
    return (x[0] != 0).any(0).cpu().numpy()


def explain_gradcam(model: nn.Module, x: torch.Tensor, classes: Sequence[str] = REGIONS,
                    method: str | Mapping[str, str] = "gradcam", layer: str | Mapping[str, str] = DEFAULT_LAYER,
                    masks: Mapping[str, np.ndarray] | None = None, rule: LabelRule | None = None,
                    spacing: Sequence[float] = (1.0, 1.0, 1.0), precision: str = "float32",
                    ) -> tuple[list[Explanation], list[str], torch.Tensor]:
    """One map per class from one forward pass; targets are the regions predicted under `rule` (as the label map
    is written, on voxels of `spacing` mm) unless `masks` are given. `method` and `layer` are one for every class,
    or one per class (still one pass), run in `precision` (a resolved one: float32, bf16, float16).

    Also returns the pass's logits (1, 3, z, y, x), so that a caller can segment from the same pass.
    """
    methods = dict(method) if isinstance(method, Mapping) else {name: method for name in classes}
    layers = dict(layer) if isinstance(layer, Mapping) else {name: layer for name in classes}
    cam = make_cam(methods[classes[0]], model, layers[classes[0]], precision)
    if masks is None:
        targets = lambda logits: make_targets(classes, predicted_masks(logits, rule, spacing), x.device)  # noqa: E731
    else:
        targets = make_targets(classes, masks, x.device, voxel_set="truth")
    result = cam(x, targets, methods, layers)
    brain = brain_voxels(x)
    explanations, warnings = [], []
    for target in result.targets:
        raw = result.maps[target.name]
        shown = display_map(raw)
        score = float("nan") if shown.empty else triviality(raw, target.logit_map(result.logits)[0].cpu().numpy(),
                                                             brain)
        what = f"{target.name} {methods[target.name]} at {result.layers[target.name]}"
        if target.empty:
            warnings.append(f"{what}: the {target.voxel_set} {CLASS_NAMES[target.name]} region is empty, "
                            "so the map is blank")
        elif shown.empty:
            warnings.append(f"{what}: no positive evidence anywhere, so the map is blank")
        elif score > TRIVIAL_THRESHOLD:
            warnings.append(f"{what}: correlates {score:.2f} with the logit map, so it shows the prediction, "
                            "not why; try a deeper layer (--layer decoder.2 or bottleneck) or --method hirescam")
        explanations.append(Explanation("gradcam", target.name, shown.values, {
            "kind": "gradcam", "class": target.name, "method": methods[target.name],
            "layer": result.layers[target.name],
            "voxel_set": target.voxel_set, "voxels": int(target.mask.sum()), "range": [0.0, 1.0],
            "raw_range": list(shown.raw_range),
            "colormap": COLORMAP, "empty": shown.empty, "triviality": None if np.isnan(score) else score,
            "precision": precision,
        }))
    return explanations, warnings, result.logits


def explain_attention(model: nn.Module, x: torch.Tensor, view: str = "sigmoid", forward: bool = True,
                      precision: str = "float32") -> tuple[list[Explanation], dict[str, list[float]]]:
    """Every gate and CBAM spatial map, and the CBAM channel weights per level.

    With `forward=False` the maps of the model's last forward pass of `x` are read (e.g. the Grad-CAM pass).
    """
    maps, weights = attention_volumes(model, x, view, precision) if forward else \
        read_attention(model, x.shape[2:], view)
    explanations = [
        Explanation("attention", m.name, m.values.astype(np.float32), {
            "kind": "attention", "level": m.level, "map": m.map, "view": m.view, "range": [0.0, 1.0],
            "raw_range": [float(m.values.min()), float(m.values.max())], "colormap": COLORMAP,
            "default": m.map == "gate" and m.level == DEFAULT_LEVEL,
        })
        for m in maps
    ]
    return explanations, weights
