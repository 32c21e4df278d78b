"""The three networks of the study and a factory that builds one by name."""
from __future__ import annotations

from torch import nn

from .. import choices

from .attunet import AttUNet3D
from .resunet import ResUNet3D
from .skeleton import IN_CHANNELS, OUT_CHANNELS, UNetSkeleton
from .unet import UNet3D

ARCHITECTURES: dict[str, type[UNetSkeleton]] = dict(zip(choices.ARCHITECTURES, (UNet3D, ResUNet3D, AttUNet3D)))
DISPLAY_NAMES = {"unet": "UNet", "resunet": "Residual UNet", "attunet": "Attention UNet"}


def build_model(architecture: str, width: int = 24) -> UNetSkeleton:
    """Build `unet`, `resunet` or `attunet` with base width `width` (a multiple of 8 keeps GroupNorm at 8 groups)."""
    try:
        network = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}") from None
    return network(width)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "ARCHITECTURES", "DISPLAY_NAMES", "IN_CHANNELS", "OUT_CHANNELS",
    "AttUNet3D", "ResUNet3D", "UNet3D", "build_model", "count_parameters",
]
