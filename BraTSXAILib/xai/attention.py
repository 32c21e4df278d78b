"""Attention maps of AttUNet3D: every gate's α and every CBAM spatial map on the input grid, CBAM channel weights.

The maps are the modules' own values from the last forward pass (models/attention.py), not a function of the
logits: they show where the network chose to look at each skip connection. Level 0 is the top
(highest-resolution) skip, the one the study showed, and the default for display.

Views:
- "sigmoid" (default): α itself, in [0, 1] as the network uses it.
- "softmax": the softmax over voxels of the gate's pre-sigmoid score ψ = logit(α) (Jetley et al. 2018), shown as
  a / max a = exp(ψ − max ψ): it shows where attention concentrates relative to its peak.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..inference import autocast
from ..models.skeleton import LEVELS
from .grid import padding_divisor, to_input_grid

VIEWS = ("sigmoid", "softmax")
DEFAULT_LEVEL = 0
_LOGIT_EPS = 1e-6


@dataclass(frozen=True)
class AttentionMap:
    """One attention map on the network's input grid, float32 in [0, 1]."""

    map: str  # "gate" or "cbam_spatial"
    level: int
    view: str
    values: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.map}{self.level}"


def has_attention(model: nn.Module) -> bool:
    return callable(getattr(model, "attention_maps", None))


def softmax_view(score: torch.Tensor) -> torch.Tensor:
    """exp(ψ − max ψ): the softmax over all voxels of ψ divided by its maximum, in (0, 1]."""
    return torch.exp(score - score.max())


def read_attention(model: nn.Module, spatial_shape: Sequence[int], view: str = "sigmoid",
                   ) -> tuple[list[AttentionMap], dict[str, list[float]]]:
    """Maps of the model's last forward pass of an input of `spatial_shape`, and CBAM channel weights per level.

    Returns (maps for every level of gate and cbam_spatial, {"cbam0": [weight per channel], ...}).
    """
    if not has_attention(model):
        raise InputError(f"{type(model).__name__} has no attention maps", "use the attunet model")
    if view not in VIEWS:
        raise InputError(f"unknown attention view '{view}'", f"choose from {', '.join(VIEWS)}")
    raw = model.attention_maps()
    divisor = padding_divisor(model)
    maps, weights = [], {}
    for level in range(LEVELS):
        for kind, key in (("gate", f"gate{level}"), ("cbam_spatial", f"cbam{level}_spatial")):
            alpha = raw[key].detach()[:1].float()
            if view == "softmax":
                score = torch.logit(alpha, eps=_LOGIT_EPS)
                values = softmax_view(to_input_grid(score, spatial_shape, divisor))
            else:
                values = to_input_grid(alpha, spatial_shape, divisor).clamp(0.0, 1.0)
            maps.append(AttentionMap(kind, level, view, values[0, 0].cpu().numpy()))
        weights[f"cbam{level}"] = [float(w) for w in raw[f"cbam{level}_channel"].detach()[0].flatten().cpu()]
    return maps, weights


def attention_volumes(model: nn.Module, x: torch.Tensor, view: str = "sigmoid", precision: str = "float32",
                      ) -> tuple[list[AttentionMap], dict[str, list[float]]]:
    """Run one forward pass of `x` (1, 4, z, y, x) without gradients and read its attention maps."""
    with torch.inference_mode(), autocast(x.device, precision):
        model(x)
    return read_attention(model, x.shape[2:], view)
