"""Everything needed to continue a run exactly, saved after every epoch; and the exported weights + sha256.

A checkpoint is a plain dict of tensors, numbers and strings, so it is read back with `weights_only=True` like the
weights files: model, optimiser, scheduler and gradient-scaler states, the epoch counters, and the random states
of torch, CUDA, NumPy and Python.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from BraTSXAILib.errors import InputError
from BraTSXAILib.outputs import atomic_write
from BraTSXAILib.weights import save_weights

from .config import TrainConfig

CHECKPOINT_FORMAT = "brats-xai-checkpoint/1"


def rng_state() -> dict:
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached"]))
    random.setstate(state["python"])


def save_checkpoint(path: str | Path, **state) -> None:
    """Write `state` (model, optimizer, scheduler, scaler, epoch, ... as given) plus the RNG states atomically."""
    payload = {"format": CHECKPOINT_FORMAT, **state, "rng": rng_state()}
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError("there is no checkpoint to resume from", "start the run without --resume", path) from None
    except Exception as error:  # torch raises several types for a damaged file
        raise InputError(f"the checkpoint cannot be read ({type(error).__name__})",
                         "delete it and start again without --resume", path) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError("the file is not a BraTSXAI training checkpoint", "give the --out folder of a run", path)
    return payload


def export_weights(model: torch.nn.Module, path: str | Path, config: TrainConfig, training: dict) -> str:
    """The weights file of INTERFACES.md and a `sha256sum`-style `<name>.sha256` beside it; returns the hash."""
    path = Path(path)
    digest = save_weights(model, path, config.architecture, config.spacing, config.normalisation,
                          config.patch_size, training)
    with atomic_write(path.with_suffix(".sha256")) as temporary:
        temporary.write_text(f"{digest}  {path.name}\n")
    return digest
