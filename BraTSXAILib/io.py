"""Finding and loading BraTS cases: four MRI modalities (and maybe a label map) on one reference grid.

Images stay SimpleITK images so their physical geometry (spacing, origin, direction) is never lost. Modalities
that do not share the reference grid are resampled onto it in physical space, never resized by voxel count.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from .choices import MODALITIES
from .errors import InputError

LABEL = "seg"
EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

# Name endings that identify a file's modality: BraTS 2018–2021 (`_t1ce`) and BraTS 2023+ (`-t1c`).
_SUFFIXES = {
    "t1": ("t1", "t1n"),
    "t1ce": ("t1ce", "t1c", "t1gd"),
    "t2": ("t2", "t2w"),
    "flair": ("flair", "t2f"),
    LABEL: ("seg", "label", "labels"),
}
_SUFFIX_TO_MODALITY = {suffix: modality for modality, suffixes in _SUFFIXES.items() for suffix in suffixes}
_NAME = re.compile(r"^(?:(?P<case>.*?)[_\-.])?(?P<suffix>[a-z0-9]+)$")

GRID_TOLERANCE = 1e-4  # relative tolerance (of the spacing) under which two grids count as the same


@dataclass
class CaseSource:
    """What discovery found for one case; nothing has been read yet."""

    case_id: str
    paths: dict[str, Path]
    label_path: Path | None = None


@dataclass
class Case:
    """One case in memory: every modality on the reference modality's grid, as float32 images."""

    case_id: str
    images: dict[str, sitk.Image]
    reference: str = "t1ce"
    label: sitk.Image | None = None
    source: CaseSource | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def reference_image(self) -> sitk.Image:
        return self.images[self.reference]


def _strip_extension(name: str) -> str | None:
    lower = name.lower()
    for extension in EXTENSIONS:
        if lower.endswith(extension):
            return name[: -len(extension)]
    return None


def modality_of(path: str | Path) -> str | None:
    """The modality ("t1", "t1ce", "t2", "flair") or "seg" that a file's name announces, or None."""
    stem = _strip_extension(Path(path).name)
    if stem is None:
        return None
    match = _NAME.match(stem.lower())
    return _SUFFIX_TO_MODALITY.get(match.group("suffix")) if match else None


def _case_id_of(path: Path) -> str:
    """The name a file carries before its modality suffix (`Brats18_2013_2_1_t1.nii.gz` -> `Brats18_2013_2_1`)."""
    stem = _strip_extension(path.name) or path.name
    match = _NAME.match(stem.lower())
    case = match.group("case") if match else None
    return stem[: len(case)] if case else path.parent.name


def _group_files(files: Sequence[Path], case_id: str, where: Path | None) -> CaseSource:
    """Assign each file to its modality; every modality exactly once, the label at most once."""
    found: dict[str, list[Path]] = {}
    for file in files:
        modality = modality_of(file)
        if modality is not None:
            found.setdefault(modality, []).append(file)
    for modality, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise InputError(
                f"more than one {modality} image ({names})",
                "keep exactly one file per modality in each case",
                where or paths[0].parent,
            )
    missing = [m for m in MODALITIES if m not in found]
    if missing:
        raise InputError(
            f"case '{case_id}' lacks the {', '.join(missing)} image",
            f"give all four modalities T1, T1ce, T2, FLAIR, named like <id>_{missing[0]}.nii.gz "
            "(BraTS 2018-21: _t1 _t1ce _t2 _flair) or <id>-t1n.nii.gz (2023+: -t1n -t1c -t2w -t2f)",
            where or (files[0].parent if files else None),
        )
    label = found.get(LABEL, [None])[0]
    return CaseSource(case_id, {m: found[m][0] for m in MODALITIES}, label)


def _image_files(folder: Path) -> list[Path]:
    """Image files in a folder, hidden ones (e.g. half-written temporaries) left out."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and _strip_extension(p.name)
    )


def discover_cases(paths: Path | str | Sequence[Path | str]) -> list[CaseSource]:
    """Cases in a case folder, in a folder of case folders, or given as explicit files (modality from the name)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise InputError("no input given", "give a case folder, a folder of case folders, or the four image files")
    for path in paths:
        if not path.exists():
            raise InputError("input does not exist", "check the path", path)
    if all(p.is_file() for p in paths):
        for path in paths:
            if modality_of(path) is None:
                raise InputError(
                    "cannot tell the modality from the file name",
                    "end names with _t1 _t1ce _t2 _flair (_seg) or -t1n -t1c -t2w -t2f (-seg), "
                    "e.g. case_t1ce.nii.gz",
                    path,
                )
        ids = {_case_id_of(p) for p in paths}
        case_id = ids.pop() if len(ids) == 1 else paths[0].parent.name
        return [_group_files(paths, case_id, None)]
    if len(paths) > 1:
        return [case for path in paths for case in discover_cases(path)]
    folder = paths[0]
    files = [f for f in _image_files(folder) if modality_of(f) is not None]
    if files:
        return [_group_files(files, folder.name, folder)]
    cases = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        found = [f for f in _image_files(sub) if modality_of(f) is not None]
        if found:
            cases.append(_group_files(found, sub.name, sub))
    if not cases:
        raise InputError(
            "no BraTS images found",
            "a case folder holds <id>_t1/_t1ce/_t2/_flair(.nii.gz|.nrrd) or <id>-t1n/-t1c/-t2w/-t2f files",
            folder,
        )
    return cases


def _unreadable(path: Path, what: str, reason: str = "the file is damaged, truncated or not a NIfTI/NRRD image"):
    return InputError(f"cannot read the {what}: {reason}", "re-export or re-download the file", path)


def _gzip_size(path: Path, expected: int) -> int:
    """Uncompressed size of a .gz file: the trailer's size field, or a full decompression when that disagrees."""
    with open(path, "rb") as handle:
        handle.seek(-4, os.SEEK_END)
        trailer = int.from_bytes(handle.read(4), "little")
    if trailer == expected % 2**32:
        return expected
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                total += len(chunk)
    except (EOFError, OSError, zlib.error):
        return -1
    return total


def _check_nifti(path: Path, what: str) -> None:
    """Refuse what ITK's NIfTI reader hides: a truncated file (read as zeros) and NaN/Inf voxels (read as 0)."""
    try:
        nifti = nib.load(str(path))  # reads the header; voxels only on request
        header = nifti.header
        offset = max(int(header.get_data_offset()), int(header["sizeof_hdr"]) + 4)  # some writers leave offset 0
        expected = offset + int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
        actual = _gzip_size(path, expected) if path.name.lower().endswith(".gz") else path.stat().st_size
        if actual < expected:
            raise _unreadable(path, what, f"the file is truncated ({max(actual, 0)} of {expected} bytes)")
        finite = not np.issubdtype(header.get_data_dtype(), np.floating) or np.isfinite(nifti.dataobj).all()
    except InputError:
        raise
    except Exception:  # nibabel raises many types for a damaged file; all mean the same to the user
        raise _unreadable(path, what) from None
    if not finite:
        raise InputError(f"the {what} contains NaN or infinite values", "fix or re-export the image", path)


def read_image(path: str | Path, what: str = "image") -> sitk.Image:
    """Read one 3D scalar image, or raise an InputError that names the file and says how to fix it."""
    path = Path(path)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        _check_nifti(path, what)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise _unreadable(path, what) from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"the {what} has {image.GetNumberOfComponentsPerPixel()} components per voxel (colour or vector image)",
            "give a scalar grey-level MRI volume",
            path,
        )
    size = image.GetSize()
    if image.GetDimension() == 4 and size[3] == 1:
        image = image[:, :, :, 0]
    elif image.GetDimension() != 3 or min(size) < 2:
        raise InputError(
            f"the {what} is not a 3D volume (size {'×'.join(map(str, size))})",
            "give one 3D volume per modality (split 4D series, do not give single slices)",
            path,
        )
    return image


def _check_values(image: sitk.Image, path: Path | None, what: str) -> None:
    array = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InputError(f"the {what} contains NaN or infinite values", "fix or re-export the image", path)
    if not array.any():
        raise InputError(f"the {what} is empty (every voxel is 0)", "check that the right file was given", path)


def _grid_parts(grid) -> tuple:
    if isinstance(grid, sitk.Image):
        return grid.GetSize(), grid.GetSpacing(), grid.GetOrigin(), grid.GetDirection()
    return tuple(grid.size), tuple(grid.spacing), tuple(grid.origin), tuple(grid.direction)


def same_grid(a, b) -> bool:
    """Whether two images (or grids with size/spacing/origin/direction) share one voxel grid, within tolerance."""
    size_a, spacing_a, origin_a, direction_a = _grid_parts(a)
    size_b, spacing_b, origin_b, direction_b = _grid_parts(b)
    if tuple(size_a) != tuple(size_b):
        return False
    scale = min(spacing_a) * GRID_TOLERANCE
    return (
        np.allclose(spacing_a, spacing_b, rtol=GRID_TOLERANCE, atol=0)
        and np.allclose(origin_a, origin_b, rtol=0, atol=scale)
        and np.allclose(direction_a, direction_b, rtol=0, atol=GRID_TOLERANCE)
    )


def physical_box(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned physical bounding box (low, high corners, in mm) of the image's voxel extent."""
    size = np.array(image.GetSize())
    corners = [
        image.TransformContinuousIndexToPhysicalPoint([(c[i] * size[i]) - 0.5 for i in range(3)])
        for c in np.ndindex(2, 2, 2)
    ]
    corners = np.array(corners)
    return corners.min(axis=0), corners.max(axis=0)


def _check_overlap(image: sitk.Image, reference: sitk.Image, path: Path | None, what: str) -> None:
    low_a, high_a = physical_box(image)
    low_b, high_b = physical_box(reference)
    if np.any(np.minimum(high_a, high_b) <= np.maximum(low_a, low_b)):
        raise InputError(
            f"the {what} does not overlap the reference image in physical space",
            "the modalities must be of the same patient and session (check origin/orientation in the headers)",
            path,
        )


def _onto_reference(image: sitk.Image, reference: sitk.Image, path: Path | None, what: str) -> sitk.Image:
    """Resample an MRI onto the reference grid in physical space (linear); InputError if they do not overlap."""
    _check_overlap(image, reference, path, what)
    resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, image.GetPixelID())
    if not sitk.GetArrayViewFromImage(resampled).any():
        raise InputError(
            f"the {what} has no content inside the reference image's field of view",
            "the modalities must be of the same patient and session (check origin/orientation in the headers)",
            path,
        )
    return resampled


def _grid_text(image: sitk.Image) -> str:
    size = "×".join(map(str, image.GetSize()))
    spacing = "×".join(f"{s:g}" for s in image.GetSpacing())
    return f"{size} voxels of {spacing} mm"


def load_case(source: CaseSource | Path | str, reference: str = "t1ce") -> Case:
    """Read a case and bring every modality (float32) and the label (uint8) onto the reference modality's grid."""
    if reference not in MODALITIES:
        raise InputError(f"unknown reference modality '{reference}'", f"choose one of {', '.join(MODALITIES)}")
    if not isinstance(source, CaseSource):
        cases = discover_cases(source)
        if len(cases) != 1:
            raise InputError(f"{len(cases)} cases found where one was expected", "give a single case", source)
        source = cases[0]
    warnings: list[str] = []
    raw = {}
    for modality in MODALITIES:
        image = read_image(source.paths[modality], f"{modality} image")
        _check_values(image, source.paths[modality], f"{modality} image")
        raw[modality] = sitk.Cast(image, sitk.sitkFloat32)
    grid = raw[reference]
    images = {}
    for modality, image in raw.items():
        if same_grid(image, grid):
            image.CopyInformation(grid)  # remove sub-tolerance header noise so every image has the exact grid
            images[modality] = image
            continue
        images[modality] = _onto_reference(image, grid, source.paths[modality], f"{modality} image")
        warnings.append(
            f"{modality} ({_grid_text(image)}) was resampled (linear, physical space) onto the {reference} grid "
            f"({_grid_text(grid)})"
        )
    label = None
    if source.label_path is not None:
        label = _load_label(source.label_path, grid, warnings)
    return Case(source.case_id, images, reference, label, source, warnings)


def checked_case(case: Case) -> Case:
    """A case built in memory held to what `load_case` guarantees: the four sequences present, non-empty and
    finite, on the reference modality's grid (float32 then), a label map of BraTS values on it."""
    if case.reference not in MODALITIES:
        raise InputError(f"unknown reference modality '{case.reference}'", f"choose one of {', '.join(MODALITIES)}")
    missing = [m for m in MODALITIES if not isinstance(case.images.get(m), sitk.Image)]
    if missing:
        raise InputError(f"the case holds no {', '.join(missing)} image", f"give all of {', '.join(MODALITIES)}")
    grid = case.images[case.reference]
    images = {}
    for modality in MODALITIES:
        image = case.images[modality]
        _check_values(image, None, f"{modality} image")
        if not same_grid(image, grid):
            raise InputError(f"the {modality} image is not on the {case.reference} grid ({_grid_text(image)} against "
                             f"{_grid_text(grid)})", "resample it onto that grid, or load the files with load_case")
        images[modality] = sitk.Cast(image, sitk.sitkFloat32)
    if case.label is not None and not same_grid(case.label, grid):
        raise InputError(f"the label map is not on the {case.reference} grid", "resample it (nearest neighbour)")
    return Case(case.case_id, images, case.reference, case.label, case.source, list(case.warnings))


def _load_label(path: Path, grid: sitk.Image, warnings: list[str]) -> sitk.Image:
    image = read_image(path, "label map")
    array = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise InputError("the label map holds non-integer values", "give a BraTS label map (0, 1, 2, 4)", path)
    if array.min() < 0 or array.max() > 4:  # every integer in 0..4 is a BraTS label, so the range says it all
        values = set(np.unique(array).tolist()) - {0, 1, 2, 3, 4}
        raise InputError(
            f"the label map holds values {sorted(values)[:5]} outside the BraTS labels 0, 1, 2, 3, 4",
            "give a BraTS segmentation (1 necrotic core, 2 edema, 4 or 3 enhancing tumour)",
            path,
        )
    image = sitk.Cast(image, sitk.sitkUInt8)
    if same_grid(image, grid):
        image.CopyInformation(grid)
        return image
    _check_overlap(image, grid, path, "label map")
    warnings.append(f"the label map ({_grid_text(image)}) was resampled (nearest neighbour) onto the reference grid")
    return sitk.Resample(image, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
