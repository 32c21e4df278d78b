"""Converting a PyTorch network for OpenVINO: the one part of the OpenVINO backend that needs torch, so that a run
from a cached conversion never imports it."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .models.blocks import spatial_mean
from .shapes import IN_CHANNELS


class ExportGroupNorm(nn.Module):
    """GroupNorm spelled out with `spatial_mean`, for export only. OpenVINO's own GroupNorm (and a plain
    reduction) sums a whole feature map coarsely: 7.8e-5 of the range off on a real activation, 1.4e-3 in the
    probabilities of a whole bundled network, against 3e-7 and 5e-6 spelled out this way (docs/cli.md)."""

    def __init__(self, norm: nn.GroupNorm):
        super().__init__()
        self.groups, self.eps, self.weight, self.bias = norm.num_groups, norm.eps, norm.weight, norm.bias

    def _group_mean(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        means = spatial_mean(x).reshape(batch, self.groups, -1).mean(-1, keepdim=True)
        return means.expand(batch, self.groups, channels // self.groups).reshape(batch, channels, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - self._group_mean(x)
        normalised = centred / torch.sqrt(self._group_mean(centred * centred) + self.eps)
        return normalised * self.weight.reshape(1, -1, 1, 1, 1) + self.bias.reshape(1, -1, 1, 1, 1)


def _exportable(module: nn.Module) -> nn.Module:
    """A copy of `module` with every GroupNorm replaced by ExportGroupNorm (same parameters)."""
    module = copy.deepcopy(module)
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.GroupNorm):
                setattr(parent, name, ExportGroupNorm(child))
    return module


class _Padded(nn.Module):
    """The network without its own padding, so that the exported graph keeps every spatial size dynamic."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.forward_padded(x)


def export(network: nn.Module, path: Path) -> None:
    """Save `network` as OpenVINO IR (`path` = model.xml, weights in float32 beside it), any spatial size."""
    import openvino

    example = torch.zeros(1, IN_CHANNELS, 16, 16, 16)
    graph = openvino.convert_model(_Padded(_exportable(network)).eval(), example_input=example,
                                   input=[openvino.PartialShape([1, IN_CHANNELS, -1, -1, -1])])
    openvino.save_model(graph, str(path), compress_to_fp16=False)
