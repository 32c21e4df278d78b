"""Converting a PyTorch network for OpenVINO: the one part of the OpenVINO backend that needs torch, so that a run
from a cached conversion never imports it."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .shapes import IN_CHANNELS


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
    graph = openvino.convert_model(_Padded(network).eval(), example_input=example,
                                   input=[openvino.PartialShape([1, IN_CHANNELS, -1, -1, -1])])
    openvino.save_model(graph, str(path), compress_to_fp16=False)
