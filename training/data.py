"""Training patches and validation volumes from the cache, as torch Datasets.

Every random choice of a training sample (where its patch lies, which flips and intensity changes it gets) comes
from a generator seeded with (config seed, epoch, sample index). A sample is therefore the same whichever worker
process draws it, whichever rank holds it, and whether the run was interrupted and resumed: that is what makes
`--resume` continue exactly.

Sampling `study` cuts the study's fixed 170×170×100 crop instead: a box of the original 240×240×155 grid, found in
the cached (brain-cropped, reoriented) array from the case's geometry, zero-padded where it reaches past the
brain box (where every modality is 0 anyway). With `minmax-crop` normalisation the cut crop is min–max normalised
again, so its values are the study's (x − min) / (max − min) over that crop rather than over the brain box.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from BraTSXAILib.errors import InputError
from BraTSXAILib.io import MODALITIES, CaseSource, load_case
from BraTSXAILib.labels import labels_to_regions
from BraTSXAILib.preprocess import brain_mask, minmax_crop, plan_geometry

from .augment import random_flip, random_intensity, random_spatial
from .cache import CachedCase
from .config import STUDY_CROP, STUDY_GRID, TrainConfig


def patch_start(shape: Sequence[int], size: Sequence[int], centre: Sequence[int]) -> tuple[int, ...]:
    """Corner of a `size` patch around `centre`, kept inside the volume; centred (padded) where the volume is
    smaller than the patch."""
    starts = []
    for length, patch, middle in zip(shape, size, centre):
        if length <= patch:
            starts.append(-((patch - length) // 2))
        else:
            starts.append(int(min(max(middle - patch // 2, 0), length - patch)))
    return tuple(starts)


def crop(array: np.ndarray, start: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """The patch of the last three axes at `start` (may lie partly outside), zero-padded where it does."""
    spatial = array.shape[-3:]
    inside = tuple(slice(max(s, 0), min(s + n, length)) for s, n, length in zip(start, size, spatial))
    piece = np.asarray(array[(Ellipsis, *inside)])
    before = [cut.start - s for cut, s in zip(inside, start)]
    pads = [(b, n - b - (cut.stop - cut.start)) for b, n, cut in zip(before, size, inside)]
    if not any(p for pair in pads for p in pair):
        return np.array(piece)
    return np.pad(piece, [(0, 0)] * (array.ndim - 3) + pads)


def study_start(case: CachedCase) -> tuple[int, ...]:
    """Corner, in the cached network-space array, of the study's crop of the case's original grid.

    The cache keeps no geometry, so the case is read once more (about 0.4 s) and its crop box and reorientation
    planned as preprocessing planned them; the crop is then pure index arithmetic (native spacing only).
    """
    meta = json.loads((case.folder / f"{case.case_id}.json").read_text())
    files = {name: Path(entry[0]) for name, entry in meta["files"].items()}
    loaded = load_case(CaseSource(case.case_id, {m: files[m] for m in MODALITIES}, files.get("seg")))
    if tuple(loaded.reference_image.GetSize()[::-1]) != STUDY_GRID:
        raise InputError(f"the study's crop is defined on the {'×'.join(map(str, STUDY_GRID[::-1]))} BraTS grid",
                         "use another sampling for this data", files[loaded.reference])
    geometry = plan_geometry(loaded.reference_image, brain_mask(loaded))
    if geometry.network_shape != tuple(meta["shape"]) or meta.get("spacing") is not None:
        raise InputError("the cached case does not match its source at native spacing", "rebuild the cache",
                         case.folder)
    starts = []
    for axis in geometry.axes:  # network axis a shows reference axis axes[a], flipped if listed in flips
        (low, high), (kept_low, kept_high) = STUDY_CROP[axis], geometry.crop[axis]
        starts.append(kept_high - high if axis in geometry.flips else low - kept_low)
    return tuple(starts)


def study_minmax(image: np.ndarray) -> np.ndarray:
    """Each channel of the study's crop as (v − min) / (max − min). Min–max normalisation is unchanged by the
    positive affine scaling the cache already applied, so this equals the study's formula on the original voxels
    of the crop (the padding's 0 is the original 0, the minimum of BraTS images)."""
    return np.stack([minmax_crop(channel) for channel in image])


class PatchDataset(Dataset):
    """`patches_per_case` patches of every training case per epoch; call `set_epoch` before each epoch."""

    def __init__(self, cases: Sequence[CachedCase], config: TrainConfig):
        self.cases, self.config, self.epoch = list(cases), config, 0
        self._tumour_voxels: dict[str, dict[int, np.ndarray]] = {}
        self._study = {c.case_id: study_start(c) for c in self.cases} if config.sampling == "study" else {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cases) * self.config.patches_per_case

    def _tumour_voxels_of(self, case: CachedCase, label: np.ndarray) -> dict[int, np.ndarray]:
        if case.case_id not in self._tumour_voxels:
            flat = np.asarray(label).ravel()
            self._tumour_voxels[case.case_id] = {
                int(value): np.flatnonzero(flat == value) for value in np.unique(flat) if value != 0
            }
        return self._tumour_voxels[case.case_id]

    def _centre(self, case: CachedCase, label: np.ndarray, rng: np.random.Generator) -> tuple[int, ...]:
        """Tumour sampling picks a label class first, then a voxel of it, so small classes (ET, necrosis) are
        seen as often as edema; uniform sampling picks any patch position inside the volume."""
        shape = label.shape
        sampling = self.config.sampling
        if sampling == "tumour" and rng.random() < self.config.tumour_probability:
            voxels = self._tumour_voxels_of(case, label)
            if voxels:
                chosen = voxels[sorted(voxels)[rng.integers(len(voxels))]]
                return tuple(int(i) for i in np.unravel_index(chosen[rng.integers(len(chosen))], shape))
        if sampling == "centre":
            return tuple(length // 2 for length in shape)
        size = self.config.patch_size
        return tuple(
            int(rng.integers(0, length - patch + 1)) + patch // 2 if length > patch else length // 2
            for length, patch in zip(shape, size)
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        case = self.cases[index % len(self.cases)]
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        image, label = case.image(), case.label()
        if self._study:
            start = self._study[case.case_id]
        else:
            start = patch_start(label.shape, self.config.patch_size, self._centre(case, label, rng))
        patch = crop(image, start, self.config.patch_size).astype(np.float32, copy=False)
        if self._study and self.config.normalisation == "minmax-crop":
            patch = study_minmax(patch)
        label_patch = crop(label, start, self.config.patch_size)
        if self.config.rotation_degrees or self.config.scaling:  # the label map moves once, not each region
            patch, (label_patch,) = random_spatial(patch, label_patch[None], rng, self.config.rotation_degrees,
                                                   self.config.scaling)
        regions = labels_to_regions(label_patch)
        if self.config.flip:
            patch, regions = random_flip(patch, regions, rng)
        if self.config.intensity:
            patch = random_intensity(patch, rng)
        return (torch.from_numpy(np.ascontiguousarray(patch)),
                torch.from_numpy(np.ascontiguousarray(regions, dtype=np.float32)))


class VolumeDataset(Dataset):
    """Whole cached volumes with their WT/TC/ET regions, for validation (the network pads to a multiple of 16);
    with a `study` config, the study's crop of each, as the study validated."""

    def __init__(self, cases: Sequence[CachedCase], config: TrainConfig | None = None):
        self.cases = list(cases)
        self.size = config.patch_size if config is not None and config.sampling == "study" else None
        self._study = {c.case_id: study_start(c) for c in self.cases} if self.size else {}
        self._rescale = bool(self.size) and config.normalisation == "minmax-crop"

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        case = self.cases[index]
        image, label = case.image(), case.label()
        if self.size:
            image, label = (crop(a, self._study[case.case_id], self.size) for a in (image, label))
        image = study_minmax(np.asarray(image)) if self._rescale else np.array(image, dtype=np.float32)
        regions = labels_to_regions(np.asarray(label)).astype(np.float32)
        return torch.from_numpy(image), torch.from_numpy(regions)
