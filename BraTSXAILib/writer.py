"""Writing one case's outputs: each file atomically, its manifest entry kept, and everything taken back on failure.

`manifest.json` is written last, so a folder with a manifest is complete; an older manifest is removed before the
first new file is written.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .labels import REGIONS, label_classes, labels_to_regions
from .outputs import write_image, write_json, write_unit_map
from .overview import write_overview
from .preprocess import Geometry, Grid
from .uncertainty import COLORMAP as UNCERTAINTY_COLORMAP
from .uncertainty import entropy_bits, expected_dice

MANIFEST = "manifest.json"
OVERVIEW = "overview.png"
PROBABILITY_COLORMAP = "Inferno"


class OutputWriter:
    """Writes outputs into one folder, keeps their manifest entries, and can take them all back."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.entries: list[dict] = []
        self.written: list[Path] = []
        self.started = False

    def _start(self) -> None:
        if not self.started:
            (self.folder / MANIFEST).unlink(missing_ok=True)
            self.started = True

    @contextmanager
    def _writing(self, path: Path):
        self._start()
        try:
            yield
        except OSError as error:
            raise InputError(f"cannot write an output ({error.strerror or error})", "choose another --out",
                             path) from None
        self.written.append(path)

    def image(self, name: str, image: sitk.Image, fields: dict) -> None:
        path = self.folder / name
        with self._writing(path):
            write_image(image, path)
        self.entries.append({"path": name, **fields})

    def unit_map(self, name: str, values: np.ndarray, grid: Grid, fields: dict) -> None:
        """A map of values in [0, 1] on `grid`, in compact steps of 1/255 (`outputs.write_unit_map`)."""
        path = self.folder / name
        with self._writing(path):
            write_unit_map(values, grid, path)
        self.entries.append({"path": name, "range": [0, 1], **fields})

    def json(self, name: str, data: dict, fields: dict) -> None:
        path = self.folder / name
        with self._writing(path):
            write_json(data, path)
        self.entries.append({"path": name, **fields})

    def overview(self, **figure) -> None:
        path = self.folder / OVERVIEW
        with self._writing(path):
            write_overview(path, **figure)
        self.entries.append({"path": OVERVIEW, "kind": "overview"})

    def manifest(self, manifest: dict) -> Path:
        path = self.folder / MANIFEST
        with self._writing(path):
            write_json(manifest, path)
        return path

    def discard(self) -> None:
        for path in self.written:
            path.unlink(missing_ok=True)


def write_segmentation(writer: OutputWriter, name: str, on_reference: np.ndarray, labels: np.ndarray,
                       geometry: Geometry, et_label: int, primary: bool) -> None:
    """The label map and the probability maps (both on the reference grid) of one network or of the ensemble."""
    flag = {"primary": True} if primary else {}
    writer.image(f"{name}_labels.nii.gz", geometry.reference.image(labels),
                 {"kind": "labels", "model": name, **flag, "labels": label_classes(et_label)})
    for region, channel in zip(REGIONS, on_reference):
        writer.unit_map(f"{name}_probability_{region}.nii.gz", channel, geometry.reference,
                        {"kind": "probability", "model": name, **flag, "class": region,
                         "colormap": PROBABILITY_COLORMAP})


def write_uncertainty(writer: OutputWriter, name: str, belief: np.ndarray, labels: np.ndarray, geometry: Geometry,
                      calibration: dict, members: int) -> dict:
    """The uncertainty map of each region of the primary result, and its expected Dice per region."""
    regions = labels_to_regions(labels)
    for region, channel in zip(REGIONS, belief):
        writer.unit_map(f"{name}_uncertainty_{region}.nii.gz", entropy_bits(channel), geometry.reference,
                        {"kind": "uncertainty", "model": name, "class": region, "measure": "entropy_bits",
                         "members": members, "colormap": UNCERTAINTY_COLORMAP})
    return expected_dice(belief, regions, calibration)
