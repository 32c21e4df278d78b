"""The Grad-CAM family for 3D segmentation: Grad-CAM, HiResCAM, Grad-CAM++ and LayerCAM.

All methods share one piece of machinery (`BaseCAM.layer_gradients`): ONE forward pass in which a forward hook
makes the chosen layer's output a fresh leaf of the autograd graph, then `torch.autograd.grad` of each class
target with respect to that activation only. Classes explained at different layers share the pass too: the first
of their layers to run becomes the leaf, the later ones are read inside the graph. Parameters are frozen for the
duration (no parameter gradients), nothing before the first layer is recorded for backward, the graph is kept
between classes and freed after the last.
The pass may run in bf16 autocast (CPUs with native bf16, CUDA): 1.8–2.4× faster on a real case, maps correlating
0.996–0.99999 with float32 ones (docs/explanations.md, "Cost"); activations and gradients are combined in float32.
A method only says how activation A and gradient G (both (B, K, d, h, w)) combine into a map; every map is
ReLU-ed, so raw values are ≥ 0 and mean "evidence for the class".
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..inference import autocast
from .grid import padding_divisor, to_input_grid
from .layers import resolve_layer
from .targets import RegionTarget

SPATIAL = (2, 3, 4)
Targets = Union[Sequence[RegionTarget], Callable[[torch.Tensor], Sequence[RegionTarget]]]


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters do not require gradients inside the block; their flags are restored after it."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


@contextmanager
def graph_starts_at(modules: Sequence[nn.Module]) -> Iterator[dict[nn.Module, torch.Tensor]]:
    """Yield the dict that receives each module's output in the next forward pass. The first of them to run (and
    any other not downstream of it) is replaced by a detached leaf that requires grad, so that the graph starts
    there; an output already in the graph is kept as it is, so gradients w.r.t. it flow on to earlier layers."""
    captured: dict[nn.Module, torch.Tensor] = {}

    def hook(module, inputs, output):
        if module in captured:
            raise ValueError("the chosen layer runs more than once per forward pass; choose another layer")
        if not isinstance(output, torch.Tensor) or output.ndim != 5:
            raise ValueError("the chosen layer does not output a (B, C, z, y, x) feature map")
        if output.requires_grad:
            captured[module] = output
            return None
        captured[module] = output.detach().requires_grad_()
        return captured[module]

    handles = [module.register_forward_hook(hook) for module in dict.fromkeys(modules)]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class LayerGradients:
    """One forward pass: per target its layer (module name), that layer's activation and the target's gradient
    w.r.t. it, and the logits."""

    layers: list[str]
    activations: list[torch.Tensor]
    gradients: list[torch.Tensor]
    logits: torch.Tensor
    targets: list[RegionTarget]


@dataclass
class CAMResult:
    """Raw maps (float32 (z, y, x) on the network's input grid, ≥ 0) per class, with what describes them."""

    method: str
    layers: dict[str, str]  # class -> the module name its map was taken at
    maps: dict[str, np.ndarray]
    logits: torch.Tensor
    targets: list[RegionTarget]
    empty_targets: list[str] = field(default_factory=list)


class BaseCAM(ABC):
    """A class-activation method at one layer of one network; `cam(x, targets)` gives a CAMResult."""

    method = ""

    def __init__(self, model: nn.Module, layer: str, precision: str = "float32"):
        self.model, self.precision = model, precision
        self.layer, self.module = resolve_layer(model, layer)

    def layer_gradients(self, x: torch.Tensor, targets: Targets,
                        layers: Mapping[str, str] | None = None) -> LayerGradients:
        """The one forward pass and one gradient per target (zeros for a target with an empty voxel set).

        `targets` may be a function of the logits (e.g. the predicted regions), evaluated inside the same pass.
        `layers` may name another layer for some targets (by name); they still share the pass.
        """
        if x.is_inference():
            x = x.clone()
        chosen = {name: resolve_layer(self.model, layer) for name, layer in (layers or {}).items()}
        with torch.inference_mode(False), torch.enable_grad(), frozen_parameters(self.model), \
                graph_starts_at([self.module, *(module for _, module in chosen.values())]) as captured:
            with autocast(x.device, self.precision):
                logits = self.model(x).float()
            if callable(targets):
                targets = targets(logits.detach())
            targets = list(targets)
            named = [chosen.get(target.name, (self.layer, self.module)) for target in targets]
            activations = [captured[module] for _, module in named]
            live = [i for i, target in enumerate(targets) if not target.empty]
            gradients = [torch.zeros_like(activation) for activation in activations]
            for position, index in enumerate(live):
                (gradients[index],) = torch.autograd.grad(
                    targets[index](logits), activations[index], retain_graph=position < len(live) - 1)
        return LayerGradients([name for name, _ in named], [activation.detach() for activation in activations],
                              gradients, logits.detach(), targets)

    @classmethod
    @abstractmethod
    def combine(cls, activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        """(B, K, d, h, w) activation and gradient -> (B, d, h, w) map before the ReLU."""

    def __call__(self, x: torch.Tensor, targets: Targets, methods: Mapping[str, str] | None = None,
                 layers: Mapping[str, str] | None = None) -> CAMResult:
        """Maps for all targets from one forward pass, upsampled trilinearly onto the input grid of `x`.

        `methods` may name another method and `layers` another layer for some targets (by name): they share the
        pass, since every method combines an activation and its gradient."""
        if x.ndim != 5 or x.shape[0] != 1:
            raise ValueError(f"expected one case shaped (1, 4, z, y, x), got {tuple(x.shape)}")
        passed = self.layer_gradients(x, targets, layers)
        divisor = padding_divisor(self.model)
        combiners = {name: method_class(method).combine for name, method in (methods or {}).items()}
        maps = {}
        for target, activation, gradient in zip(passed.targets, passed.activations, passed.gradients):
            combine = combiners.get(target.name, self.combine)
            layer_map = F.relu(combine(activation.float(), gradient.float()))
            maps[target.name] = to_input_grid(layer_map[:, None], x.shape[2:], divisor)[0, 0].cpu().numpy()
        return CAMResult(self.method, {target.name: layer for target, layer in zip(passed.targets, passed.layers)},
                         maps, passed.logits, passed.targets,
                         [target.name for target in passed.targets if target.empty])


class GradCAM(BaseCAM):
    """Selvaraju et al. 2017: channel weights are the gradient's mean over the three spatial axes."""

    method = "gradcam"

    @staticmethod
    def channel_weights(gradient: torch.Tensor) -> torch.Tensor:
        return gradient.mean(dim=SPATIAL, keepdim=True)

    @classmethod
    def combine(cls, activation, gradient):
        return (cls.channel_weights(gradient) * activation).sum(dim=1)


class HiResCAM(BaseCAM):
    """Draelos & Carin 2020: the element-wise gradient × activation, summed over channels (no spatial mean)."""

    method = "hirescam"

    @classmethod
    def combine(cls, activation, gradient):
        return (gradient * activation).sum(dim=1)


class GradCAMPlusPlus(BaseCAM):
    """Chattopadhay et al. 2018: per-voxel weights g² / (2g² + ΣA·g³) of the positive gradients."""

    method = "gradcam++"

    @staticmethod
    def channel_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        squared = gradient**2
        denominator = 2 * squared + activation.sum(dim=SPATIAL, keepdim=True) * squared * gradient
        alpha = torch.where(denominator != 0, squared / torch.where(denominator != 0, denominator, 1.0), 0.0)
        return (alpha * F.relu(gradient)).sum(dim=SPATIAL, keepdim=True)

    @classmethod
    def combine(cls, activation, gradient):
        return (cls.channel_weights(activation, gradient) * activation).sum(dim=1)


class LayerCAM(BaseCAM):
    """Jiang et al. 2021: positive gradients weigh each voxel's activation (fine detail at shallow layers)."""

    method = "layercam"

    @classmethod
    def combine(cls, activation, gradient):
        return (F.relu(gradient) * activation).sum(dim=1)


METHODS: dict[str, type[BaseCAM]] = {cls.method: cls for cls in (GradCAM, HiResCAM, GradCAMPlusPlus, LayerCAM)}


def method_class(method: str) -> type[BaseCAM]:
    """A CAM class by method name (gradcam, hirescam, gradcam++, layercam)."""
    if method not in METHODS:
        raise InputError(f"unknown explanation method '{method}'", f"choose from {', '.join(METHODS)}")
    return METHODS[method]


def make_cam(method: str, model: nn.Module, layer: str, precision: str = "float32") -> BaseCAM:
    """A CAM by method name at `layer`; `precision` as resolved by inference.resolve_precision."""
    return method_class(method)(model, layer, precision)
