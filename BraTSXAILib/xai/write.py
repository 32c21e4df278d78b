"""Explanation outputs of one model for the pipeline: volumes on the reference grid and CBAM weights as JSON.

Kept beside the maps' computation so that pipeline.py only asks for them. Maps computed on the network's input
grid go through `Geometry.to_reference_array` (the exact inverse of the crop/reorientation, trilinear where the
model's spacing differs) in the writer's background threads (`OutputWriter.network_map`). Attention maps are read
from the Grad-CAM pass when there was one, so an AttUNet explained both ways still costs one forward pass.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..choices import DEFAULT_LAYER
from ..labels import REGIONS
from ..postprocess import LabelRule
from ..preprocess import Geometry
from ..writer import CHANNEL_WEIGHTS_KIND
from .attention import has_attention
from .explain import Explanation, explain_attention, explain_gradcam

ATTENTION_VIEWS = {"attention": "sigmoid", "attention-softmax": "softmax"}  # --explain name -> attention view


def _volume(writer, name: str, explanation: Explanation, geometry: Geometry, architecture: str) -> None:
    writer.network_map(name, explanation.values.astype(np.float32), geometry,
                       {**explanation.fields, "model": architecture})


def gradcam_plan(defaults: Mapping[str, dict], layer: str | None, method: str | None,
                 ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Each region's layer and method (all regions share one Grad-CAM pass, whatever their layers), and the
    regions with no faithful map. A user's `layer`/`method` overrides the defaults for every region (and also asks
    for the `none` ones)."""
    layers, methods, missing = {}, {}, {}
    for region in REGIONS:
        default = defaults.get(region, {})
        if "none" in default and layer is None and method is None:
            missing[region] = default["none"]
            continue
        layers[region] = layer or default.get("layer", DEFAULT_LAYER)
        methods[region] = method or default.get("method", "gradcam")
    return layers, methods, missing


def write_explanations(writer, architecture: str, network: nn.Module, array: np.ndarray, geometry: Geometry,
                       kinds: Sequence[str], device: torch.device,
                       progress: Callable[[str], None] | None = None,
                       rule: LabelRule | None = None, layer: str | None = None, method: str | None = None,
                       defaults: Mapping[str, dict] | None = None, precision: str = "float32",
                       ) -> tuple[list[str], torch.Tensor | None]:
    """Write the requested kinds ("gradcam", "attention", "attention-softmax") through `writer`
    (pipeline.OutputWriter); return the warnings and the Grad-CAM pass's logits (None without Grad-CAM).

    Attention is written only for networks that have it (the pipeline warns when a requested kind wrote nothing);
    the first attention view written holds the default map (gate0). Grad-CAM explains the regions that `rule`
    (the label rule the labels are written with) gives on the network grid. Each region's layer and method are
    the network's measured `defaults` (registry `explain`), unless `layer` or `method` is given; a region whose
    default is `none` gets no map, and a warning saying why. The passes run in `precision` (a resolved one).
    """
    report = progress or (lambda stage: None)
    x = torch.from_numpy(np.ascontiguousarray(array))[None].to(device)
    warnings: list[str] = []
    explained, logits = False, None
    if "gradcam" in kinds:
        layers, methods, missing = gradcam_plan(defaults or {}, layer, method)
        warnings += [f"{architecture}: no faithful {region} Grad-CAM map: {why} (--layer/--method ask for one anyway)"
                     for region, why in missing.items()]
        if methods:
            report(f"Grad-CAM {', '.join(methods)} ({architecture})")
            explanations, found, logits = explain_gradcam(network, x, list(methods), methods, layers, rule=rule,
                                                          spacing=geometry.network.spacing[::-1],
                                                          precision=precision)
            warnings += [f"{architecture}: {warning}" for warning in found]
            for explanation in explanations:
                _volume(writer, f"{architecture}_gradcam_{explanation.key}.nii.gz", explanation, geometry,
                        architecture)
            explained = True
    views = [view for name, view in ATTENTION_VIEWS.items() if name in kinds] if has_attention(network) else []
    for position, view in enumerate(views):
        report(f"Attention maps ({architecture})")
        explanations, weights = explain_attention(network, x, view, forward=not explained,
                                                     precision=precision)
        explained = True
        infix = "attention" if view == "sigmoid" else f"attention_{view}"
        for explanation in explanations:
            explanation.fields["default"] = explanation.fields["default"] and position == 0
            _volume(writer, f"{architecture}_{infix}_{explanation.key}.nii.gz", explanation, geometry, architecture)
    if views:
        writer.json(f"{architecture}_cbam_channel_weights.json", {"model": architecture, "levels": weights},
                    {"kind": CHANNEL_WEIGHTS_KIND, "model": architecture})
    return warnings, logits
