"""Training settings: one JSON file per run, checked key by key.

The study's own settings are in `configs/paper_*.json`; docs/fidelity.md says where its text and its notebook
disagree (batch size 64 vs 1, early stopping vs none) and which one those configs follow. The defaults here are
the study's loss, optimiser, scheduler and accumulation with a generic 128³ centre patch; what the study does not
state (early-stopping patience, augmentation, precision) and what the product adds (patch sampling, which
epoch's weights to keep) are explicit keys.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import PRECISIONS
from BraTSXAILib.models import ARCHITECTURES
from BraTSXAILib.outputs import read_json
from BraTSXAILib.preprocess import NORMALISATIONS

from .log import SELECTIONS

SAMPLINGS = ("tumour", "uniform", "centre", "study")
# The study's crop: voxel index ranges (start, stop) per array axis (z, y, x) of the 240×240×155 BraTS grid,
# i.e. x 40–209, y 40–209, z 20–119 of the NIfTI file (its notebook slices data[40:210, 40:210, 20:120]).
STUDY_CROP = ((20, 120), (40, 210), (40, 210))
STUDY_GRID = (155, 240, 240)
STUDY_PATCH = tuple(stop - start for start, stop in STUDY_CROP)  # (100, 170, 170)


@dataclass(frozen=True)
class TrainConfig:
    """Every choice a run makes; `name` defaults to the config file's stem."""

    name: str = "run"
    architecture: str = "unet"
    width: int = 24
    spacing: tuple[float, float, float] | None = None  # (z, y, x) mm; None keeps the data's own (1 mm for BraTS)
    normalisation: str = "minmax"
    patch_size: tuple[int, int, int] = (128, 128, 128)
    sampling: str = "centre"  # tumour: centred on a tumour voxel with probability `tumour_probability`;
    # study: the study's fixed 170×170×100 crop of the original grid (needs spacing null and patch_size STUDY_PATCH)
    tumour_probability: float = 0.67
    patches_per_case: int = 1  # training patches drawn from each training case per epoch
    flip: bool = False
    intensity: bool = False  # random per-channel scale ±10 % and shift ±0.1 inside the brain
    rotation_degrees: float = 0.0  # random rotation about each axis by up to ± this many degrees (0: off)
    scaling: float = 0.0  # random isotropic scaling by 1 ± this (0: off)
    batch_size: int = 1
    accumulation: int = 4
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    weight_decay: float = 0.0
    plateau_patience: int = 2
    plateau_factor: float = 0.1
    early_stopping_patience: int = 5
    selection: str = "loss"  # keep the weights of the epoch with the lowest validation loss, or highest mean Dice
    epochs: int = 100
    precision: str = "float32"
    channels_last: bool = False
    workers: int = 0
    seed: int = 0
    split: tuple[float, float, float] = (0.7, 0.2, 0.1)

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    def with_epochs(self, epochs: int) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), "epochs": epochs})

    @classmethod
    def from_dict(cls, raw: dict, where: Path | None = None) -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InputError(f"unknown config key(s) {', '.join(unknown)}", f"valid keys: {', '.join(known)}", where)
        values = {key: (tuple(value) if isinstance(value, list) else value) for key, value in raw.items()}
        config = cls(**values)
        config.check(where)
        return config

    def check(self, where: Path | None = None) -> None:
        """Raise InputError naming the first invalid value, so a run never starts on a typo."""
        checks = [
            (lambda: self.architecture in ARCHITECTURES, "architecture", f"one of {', '.join(ARCHITECTURES)}"),
            (lambda: _positive_int(self.width) and self.width % 8 == 0, "width", "a positive multiple of 8"),
            (lambda: self.spacing is None or _positive_numbers(self.spacing, 3), "spacing",
             "null or three positive mm"),
            (lambda: self.normalisation in NORMALISATIONS, "normalisation", f"one of {', '.join(NORMALISATIONS)}"),
            (lambda: _positive_numbers(self.patch_size, 3) and all(_positive_int(p) for p in self.patch_size),
             "patch_size", "three positive integers (z, y, x)"),
            (lambda: self.sampling in SAMPLINGS, "sampling", f"one of {', '.join(SAMPLINGS)}"),
            (lambda: self.sampling != "study" or (self.spacing is None and tuple(self.patch_size) == STUDY_PATCH),
             "sampling", f"'study' only with spacing null and patch_size {list(STUDY_PATCH)} (the study's crop)"),
            (lambda: 0.0 <= self.tumour_probability <= 1.0, "tumour_probability", "a probability in [0, 1]"),
            (lambda: _positive_int(self.patches_per_case), "patches_per_case", "a positive integer"),
            (lambda: 0 <= self.rotation_degrees <= 180 and 0 <= self.scaling < 1, "rotation_degrees/scaling",
             "degrees in [0, 180] and a scaling share in [0, 1)"),
            (lambda: isinstance(self.flip, bool) and isinstance(self.intensity, bool), "flip/intensity",
             "true or false"),
            (lambda: _positive_int(self.batch_size), "batch_size", "a positive integer"),
            (lambda: _positive_int(self.accumulation), "accumulation", "a positive integer"),
            (lambda: _positive_numbers([self.lr, self.eps], 2), "lr/eps", "positive numbers"),
            (lambda: len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "two numbers in [0, 1)"),
            (lambda: self.weight_decay >= 0, "weight_decay", "a number ≥ 0"),
            (lambda: _non_negative_int(self.plateau_patience), "plateau_patience", "an integer ≥ 0"),
            (lambda: 0 < self.plateau_factor < 1, "plateau_factor", "a number in (0, 1)"),
            (lambda: _positive_int(self.early_stopping_patience), "early_stopping_patience", "a positive integer"),
            (lambda: _positive_int(self.epochs), "epochs", "a positive integer"),
            (lambda: self.selection in SELECTIONS, "selection", f"one of {', '.join(SELECTIONS)}"),
            (lambda: self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}"),
            (lambda: isinstance(self.channels_last, bool), "channels_last", "true or false"),
            (lambda: _non_negative_int(self.workers), "workers", "an integer ≥ 0"),
            (lambda: isinstance(self.seed, int), "seed", "an integer"),
            (lambda: _split_ok(self.split), "split", "three shares (train, validation, test) ≥ 0 summing to 1"),
        ]
        for ok, key, expected in checks:
            if not _holds(ok):
                raise InputError(f"config value of {key!r} is invalid", f"expected {expected}", where)


def _holds(check) -> bool:
    """A check that meets a value of the wrong type (a string for a number) fails instead of raising."""
    try:
        return bool(check())
    except (TypeError, ValueError):
        return False


def _non_negative_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_numbers(values, count: int) -> bool:
    return (
        isinstance(values, (tuple, list)) and len(values) == count
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)
    )


def _split_ok(split) -> bool:
    return (
        isinstance(split, (tuple, list)) and len(split) == 3
        and all(isinstance(s, (int, float)) and s >= 0 for s in split)
        and abs(sum(split) - 1.0) < 1e-6 and split[0] > 0 and split[1] > 0
    )


def load_config(path: str | Path) -> TrainConfig:
    """Read a config JSON; the run's name is the file's stem unless the file sets one."""
    path = Path(path)
    raw = read_json(path, "config file", "see training/configs/ for examples")
    if not isinstance(raw, dict):
        raise InputError("the config file must hold one JSON object", "see training/configs/ for examples", path)
    return TrainConfig.from_dict({"name": path.stem, **raw}, path)

