"""Which layer a class-activation map is taken at: presets, validation, and a listing of every candidate.

Presets exist for every network of the family (they share one skeleton, models/skeleton.py):
`bottleneck`, `decoder.3` … `decoder.0` (decoder.0 is the full-resolution block just before the head),
`decoder.0.conv` (that block's first convolution, named differently per network) and `final`, the 1×1×1 output
head the study's notebook hooked. `final` and `decoder.0` give maps that are, up to a
constant, the logit map itself (a linear head leaves nothing else to weigh), so they explain nothing the
prediction does not already show; the triviality score in faithfulness.py measures that and the pipeline warns.
The default was chosen by measuring pointing game and triviality per preset (docs/explanations.md,
`python -m BraTSXAILib.xai.choose_layer`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError
from ..models.skeleton import IN_CHANNELS, padding_for
from .grid import padding_divisor

PRESETS = {
    "bottleneck": ("bottleneck",),
    "decoder.3": ("decoder.3",),
    "decoder.2": ("decoder.2",),
    "decoder.1": ("decoder.1",),
    "decoder.0.conv": ("decoder.0.0.0", "decoder.0.residual.2"),  # first convolution of the full-resolution block
    "decoder.0": ("decoder.0",),
    "final": ("head",),
}


@dataclass(frozen=True)
class LayerInfo:
    """A module whose output can carry a map: its name, type, channels, map size and voxels per map cell."""

    name: str
    module: str
    channels: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def resolve_layer(model: nn.Module, layer: str) -> tuple[str, nn.Module]:
    """Preset or module name -> (module name, module); an unknown name is the user's mistake."""
    modules = dict(model.named_modules())
    name = next((name for name in PRESETS.get(layer, (layer,)) if name in modules), None)
    if not name:
        raise InputError(f"no layer '{layer}' in {type(model).__name__}",
                         f"use a preset ({', '.join(PRESETS)}) or a layer that "
                         "`python -m BraTSXAILib.xai.list_layers` lists")
    return name, modules[name]


def candidate_layers(model: nn.Module, spatial_shape: Sequence[int] = (32, 32, 32)) -> list[LayerInfo]:
    """Every module that runs once per forward pass and outputs a spatial (B, C, d, h, w) map, in the order they finish.

    Found by one forward pass of zeros of `spatial_shape`; the shapes listed are for that input size.
    """
    pads, _ = padding_for(spatial_shape, padding_divisor(model))
    padded = [int(n) + before + after for n, (before, after) in zip(spatial_shape, pads)]
    outputs: dict[str, list[torch.Size]] = {}
    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(
                lambda module, inputs, output, name=name: outputs.setdefault(name, []).append(
                    output.shape if isinstance(output, torch.Tensor) else None)))
    parameter = next(model.parameters())
    try:
        with torch.no_grad():
            model(torch.zeros((1, IN_CHANNELS, *spatial_shape), dtype=parameter.dtype, device=parameter.device))
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    found = []
    for name, shapes in outputs.items():
        if len(shapes) != 1 or shapes[0] is None or len(shapes[0]) != 5 or all(n == 1 for n in shapes[0][2:]):
            continue
        shape = tuple(int(n) for n in shapes[0][2:])
        found.append(LayerInfo(name, type(modules[name]).__name__, int(shapes[0][1]), shape,
                               tuple(p // n for p, n in zip(padded, shape))))
    return found
