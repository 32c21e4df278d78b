"""Writing one case's outputs: each file atomically, its manifest entry kept, and everything taken back on failure.

`manifest.json` is written last, so a folder with a manifest is complete; an older manifest is removed before the
first new file is written. Volumes are written by two background threads (SimpleITK's writer and zlib release the
GIL), so that compressing one map overlaps the next one's computation; a map is quantised to uint8 before it is
queued, so a queue of maps costs 9 MB each at BraTS size. Maps made on the network's grid (explanations) are queued
as they are, 1–2 MB each, and mapped onto the reference grid in the background too, two at a time. `flush` waits
for them, and `manifest` flushes first.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .labels import REGIONS, label_classes, labels_to_regions
from .outputs import unit_steps, write_image, write_json, write_unit_steps
from .overview import write_overview
from .preprocess import Geometry, Grid
from .uncertainty import COLORMAP as UNCERTAINTY_COLORMAP
from .uncertainty import entropy_bits, expected_dice

MANIFEST = "manifest.json"
OVERVIEW = "overview.png"
PROBABILITY_COLORMAP = "Inferno"
WRITE_THREADS = 2
CHANNEL_WEIGHTS_KIND = "channel_weights"  # the AttUNet's CBAM channel weights (JSON)


def explanation_name(entry: dict) -> str:
    """The `--explain` name a manifest entry answers: its kind, or `attention-softmax` for that view."""
    return "attention-softmax" if entry.get("kind") == "attention" and entry.get("view") == "softmax" else entry["kind"]


def _cannot_write(error: OSError, path: Path) -> InputError:
    return InputError(f"cannot write an output ({error.strerror or error})", "choose another --out", path)


class OutputWriter:
    """Writes outputs into one folder, keeps their manifest entries, and can take them all back."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.entries: list[dict] = []
        self.written: list[Path] = []
        self.started = False
        self.pending: list[tuple[Path, Future]] = []
        self.pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="brats-xai-writer")

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
            raise _cannot_write(error, path) from None
        self.written.append(path)

    def _queue(self, name: str, write, fields: dict) -> None:
        """`write(path)` in a background thread; the entry is recorded now, so the manifest keeps the order."""
        path = self.folder / name
        self._start()
        self.written.append(path)
        self.pending.append((path, self.pool.submit(write, path)))
        self.entries.append({"path": name, **fields})

    def flush(self) -> None:
        """Wait for every queued file; the first one that failed raises (an OSError as the InputError it means)."""
        pending, self.pending = self.pending, []
        wait([future for _, future in pending])
        for path, future in pending:
            error = future.exception()
            if isinstance(error, OSError):
                raise _cannot_write(error, path) from None
            if error is not None:
                raise error

    def image(self, name: str, image: sitk.Image, fields: dict) -> None:
        self._queue(name, lambda path: write_image(image, path), fields)

    def unit_map(self, name: str, values: np.ndarray, grid: Grid, fields: dict) -> None:
        """A map of values in [0, 1] on `grid`, in compact steps of 1/255 (`outputs.write_unit_steps`)."""
        steps = unit_steps(values)
        self._queue(name, lambda path: write_unit_steps(steps, grid, path), {"range": [0, 1], **fields})

    def network_map(self, name: str, values: np.ndarray, geometry: Geometry, fields: dict) -> None:
        """A map of values in [0, 1] on the network's grid: mapped onto the reference grid (linear), quantised on
        the brain crop only and written as `unit_map` writes it, all in the background. `values` must not change
        after the call."""
        def write(path: Path) -> Path:
            steps = geometry.to_reference_array(values, "linear", convert=unit_steps)
            return write_unit_steps(steps, geometry.reference, path)

        self._queue(name, write, {"range": [0, 1], **fields})

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
        self.flush()
        path = self.folder / MANIFEST
        with self._writing(path):
            write_json(manifest, path)
        self.pool.shutdown()
        return path

    def discard(self) -> None:
        wait([future for _, future in self.pending])
        self.pending = []
        self.pool.shutdown()
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
