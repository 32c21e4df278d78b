"""Small untrained weights files and a registry listing them, so tests run the whole weights→outputs path."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from BraTSXAILib.models import ARCHITECTURES, build_model
from BraTSXAILib.weights import REGISTRY_FORMAT, save_weights

WIDTH = 8


def write_registry(folder: Path, entries: list[dict]) -> Path:
    path = Path(folder) / "registry.json"
    path.write_text(json.dumps({"format": REGISTRY_FORMAT, "models": entries}, indent=2))
    return path


def tiny_entry(folder: Path, architecture: str, spacing=None, seed: int = 0, name: str | None = None) -> dict:
    """Save an untrained width-8 network beside the registry and return its registry entry."""
    torch.manual_seed(seed)
    name = name or f"{architecture}-tiny-w{WIDTH}"
    sha = save_weights(build_model(architecture, WIDTH), Path(folder) / f"{name}.pt", architecture, spacing,
                       patch_size=(32, 32, 32), training={"epochs": 0})
    return {"id": name, "architecture": architecture, "width": WIDTH, "spacing": spacing, "file": f"{name}.pt",
            "sha256": sha, "default": True, "trained_on": "nothing (untrained test weights)",
            "validation": {"dice_WT": 0.0}}


def tiny_registry(folder: Path, architectures=ARCHITECTURES, spacing=None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_registry(folder, [tiny_entry(folder, a, spacing, seed=i) for i, a in enumerate(architectures)])
