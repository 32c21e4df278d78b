"""Cases preprocessed once into .npy files at the training spacing, so epochs never re-read or resample NIfTI.

One folder per (spacing, normalisation), e.g. `cache/2x2x2mm-zscore/`, holding per case `<id>.image.npy`
(float32 (4, z, y, x), channels T1, T1ce, T2, FLAIR), `<id>.label.npy` (uint8 BraTS labels, network space) and
`<id>.json`, written last: its presence means the case is complete, and its record of the source files' sizes
and modification times, and of `preprocess.PREPROCESSING_VERSION`, makes a changed source file or a changed
preprocessing be preprocessed again.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from BraTSXAILib.errors import InputError
from BraTSXAILib.io import CaseSource, load_case
from BraTSXAILib.outputs import atomic_write, write_json
from BraTSXAILib.preprocess import PREPROCESSING_VERSION, preprocess, preprocess_label

CACHE_FORMAT = "brats-xai-cache/1"


@dataclass(frozen=True)
class CachedCase:
    case_id: str
    folder: Path

    @property
    def image_path(self) -> Path:
        return self.folder / f"{self.case_id}.image.npy"

    @property
    def label_path(self) -> Path:
        return self.folder / f"{self.case_id}.label.npy"

    def image(self) -> np.ndarray:
        """Memory-mapped: worker processes share the page cache instead of copying whole volumes."""
        return np.load(self.image_path, mmap_mode="r")

    def label(self) -> np.ndarray:
        return np.load(self.label_path, mmap_mode="r")


def cache_folder(root: str | Path, spacing: Sequence[float] | None, normalisation: str) -> Path:
    tag = "native" if spacing is None else "x".join(f"{s:g}" for s in spacing) + "mm"
    return Path(root) / f"{tag}-{normalisation}"


def _record(source: CaseSource, spacing: Sequence[float] | None, normalisation: str) -> dict:
    files = {**source.paths, "seg": source.label_path}
    return {
        "format": CACHE_FORMAT,
        "preprocessing": PREPROCESSING_VERSION,
        "spacing": None if spacing is None else [float(s) for s in spacing],
        "normalisation": normalisation,
        "files": {name: [str(path), path.stat().st_size, path.stat().st_mtime_ns]
                  for name, path in sorted(files.items()) if path is not None},
    }


def _is_current(meta_path: Path, record: dict) -> bool:
    try:
        meta = json.loads(meta_path.read_text())
        return {key: meta.get(key) for key in record} == record
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def _save(array: np.ndarray, path: Path) -> None:
    with atomic_write(path) as temporary:
        np.save(temporary, array)


def cache_case(source: CaseSource, folder: Path, spacing: Sequence[float] | None, normalisation: str) -> CachedCase:
    """Preprocess one labelled case into `folder` unless an up-to-date copy is already there."""
    cached = CachedCase(source.case_id, folder)
    record = _record(source, spacing, normalisation)
    meta_path = folder / f"{source.case_id}.json"
    if _is_current(meta_path, record) and cached.image_path.exists() and cached.label_path.exists():
        return cached
    case = load_case(source)
    image, geometry = preprocess(case, spacing, normalisation)
    label = preprocess_label(case, geometry)
    _save(image.astype(np.float32, copy=False), cached.image_path)
    _save(label, cached.label_path)
    write_json({**record, "shape": list(label.shape), "network_spacing": list(geometry.network_spacing),
                "warnings": list(case.warnings)}, meta_path)
    return cached


def build_cache(
    sources: Sequence[CaseSource],
    folder: Path,
    spacing: Sequence[float] | None,
    normalisation: str,
    progress: Callable[[Sequence[CaseSource]], Sequence[CaseSource]] = lambda items: items,
) -> tuple[dict[str, CachedCase], dict[str, InputError]]:
    """Every case preprocessed (or found up to date) in `folder`, and the cases that cannot be read (a truncated
    or damaged file) with why; `progress` may wrap the loop (tqdm)."""
    cached, broken = {}, {}
    for source in progress(sources):
        try:
            cached[source.case_id] = cache_case(source, folder, spacing, normalisation)
        except InputError as error:
            broken[source.case_id] = error
    return cached, broken
