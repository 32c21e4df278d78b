"""From a loaded case to the network's input array, and back: every step has an exact inverse.

Forward, on the reference grid: crop to the brain's bounding box (plus a margin), reorient the crop by axis
permutation and flips so that array axes run like BraTS training data (LPS: x→left, y→posterior, z→superior),
resample in physical space to the model's spacing (only when one is given), normalise each modality.
`Geometry` records all of it; `Geometry.to_reference` maps any network-space volume back onto the reference grid
(same size, spacing, origin, direction) with zeros outside the crop. Cropping and reorienting are pure index
operations, so without resampling the round trip of a label map is exact.
Padding to a multiple of 16 is not done here: the networks pad and crop back themselves (models/skeleton.py).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .io import MODALITIES, Case, same_grid
from .labels import bounding_box

NORMALISATIONS = ("zscore", "minmax", "minmax-crop")  # docs/data.md, "Preprocessing"
PREPROCESSING_VERSION = 1  # raise whenever preprocess() changes its output, so training caches are rebuilt
ZSCORE_CLIP = 8.0  # z-scores beyond ±8 are single saturated voxels (e.g. 32,767), not anatomy
MINMAX_PERCENTILES = (0.5, 99.5)  # robust "min" and "max": one saturated voxel must not squash the contrast
SPACING_TOLERANCE = 1e-3  # mm; a requested spacing this close to the input's is not resampled
_INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}


@dataclass(frozen=True)
class Grid:
    """A voxel grid in physical space, in SimpleITK's (x, y, z) order."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> Grid:
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()),
                   tuple(image.GetDirection()))

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape (z, y, x)."""
        return tuple(reversed(self.size))

    def image(self, array: np.ndarray) -> sitk.Image:
        """An image on this grid holding `array` (z, y, x)."""
        if tuple(array.shape) != self.shape:
            raise ValueError(f"array of shape {array.shape} does not fit the grid's shape {self.shape}")
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def holds(self, image: sitk.Image) -> bool:
        """Whether `image` lies on this grid (within io.GRID_TOLERANCE)."""
        return same_grid(image, self)

    def resample(self, image: sitk.Image, interpolation: str, extrapolate: bool = True) -> sitk.Image:
        """`image` resampled onto this grid in physical space, same pixel type.

        With `extrapolate`, grid voxels just beyond the image's outermost voxel centres take the nearest value
        instead of 0, so two grids covering the same extent do not lose a rim of half a voxel.
        """
        return sitk.Resample(image, list(self.size), sitk.Transform(), _interpolator(interpolation), self.origin,
                             self.spacing, self.direction, 0.0, image.GetPixelID(), extrapolate)


@dataclass(frozen=True)
class Geometry:
    """Everything needed to map network-space arrays back onto the reference grid exactly.

    reference: the reference modality's grid (outputs land here).
    crop: (start, stop) voxel indices per array axis (z, y, x) of the reference array kept for the network.
    axes, flips: reorientation of the cropped array (numpy order): `np.transpose(np.flip(crop, flips), axes)`.
    oriented: grid of the cropped, reoriented array. network: grid the network sees (= oriented if not resampled).
    """

    reference: Grid
    crop: tuple[tuple[int, int], ...]
    axes: tuple[int, ...]
    flips: tuple[int, ...]
    oriented: Grid
    network: Grid
    normalisation: str = "zscore"

    @property
    def resampled(self) -> bool:
        return self.network != self.oriented

    @property
    def network_shape(self) -> tuple[int, ...]:
        """Shape (z, y, x) of the network-space arrays."""
        return self.network.shape

    @property
    def network_spacing(self) -> tuple[float, ...]:
        """Voxel spacing of network space in array order (z, y, x), mm."""
        return tuple(reversed(self.network.spacing))

    def _crop_slices(self) -> tuple[slice, ...]:
        return tuple(slice(start, stop) for start, stop in self.crop)

    def _orient(self, array: np.ndarray) -> np.ndarray:
        if self.flips:
            array = np.flip(array, self.flips)
        return np.ascontiguousarray(np.transpose(array, self.axes))

    def _unorient(self, array: np.ndarray) -> np.ndarray:
        """A view: the caller copies it into place."""
        array = np.transpose(array, np.argsort(self.axes))
        return np.flip(array, self.flips) if self.flips else array

    def from_reference(self, image: sitk.Image, interpolation: str = "linear") -> np.ndarray:
        """An image (e.g. a ground truth) -> array (z, y, x) in network space; "nearest" for label maps.

        An image that is not on the reference grid is first resampled onto it in physical space.
        """
        _interpolator(interpolation)
        if not self.reference.holds(image):
            image = self.reference.resample(image, interpolation, extrapolate=False)
        return self.crop_to_network(sitk.GetArrayViewFromImage(image), interpolation)

    def crop_to_network(self, array: np.ndarray, interpolation: str = "linear") -> np.ndarray:
        """An array (z, y, x) on the reference grid -> network space: crop, reorient, resample if planned."""
        oriented = self._orient(array[self._crop_slices()])
        if not self.resampled:
            return oriented
        if interpolation == "linear" and oriented.dtype == np.float32:
            return resample_linear(oriented, self.oriented, self.network)
        return sitk.GetArrayFromImage(self.network.resample(self.oriented.image(oriented), interpolation))

    def to_reference(self, volume: np.ndarray, interpolation: str = "linear") -> sitk.Image:
        """A volume (z, y, x) in network space -> image on the reference grid, zeros outside the crop.

        Use "nearest" for label maps. The pixel type follows the array's dtype.
        """
        return self.reference.image(self.to_reference_array(volume, interpolation))

    def to_reference_array(self, volume: np.ndarray, interpolation: str = "linear",
                           out: np.ndarray | None = None,
                           convert: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """`to_reference` as an array (z, y, x), written into `out` when given (which must be zero outside the
        crop). Only the crop's voxels are touched: a fresh `np.zeros` stays unallocated memory elsewhere.
        `convert` (e.g. a quantisation) is applied to the crop's values only, before they are placed; the result
        has its dtype."""
        volume = np.asarray(volume)
        if volume.ndim != 3 or tuple(volume.shape) != self.network_shape:
            raise ValueError(f"volume of shape {volume.shape} is not in network space {self.network_shape}")
        if volume.dtype == bool:  # types SimpleITK has no pixel type for
            volume = volume.astype(np.uint8)
        elif volume.dtype == np.float16:
            volume = volume.astype(np.float32)
        _interpolator(interpolation)
        if self.resampled and interpolation == "linear":
            volume = resample_linear(volume.astype(np.float32, copy=False), self.network, self.oriented)
        elif self.resampled:
            volume = sitk.GetArrayFromImage(self.oriented.resample(self.network.image(volume), interpolation))
        if convert is not None:
            volume = convert(volume)
        full = np.zeros(self.reference.shape, dtype=volume.dtype) if out is None else out
        full[self._crop_slices()] = self._unorient(volume)
        return full


def _source_indices(source: Grid, target: Grid) -> list[np.ndarray]:
    """Continuous source index of every target voxel centre, per array axis (z, y, x), for grids of one direction."""
    offset = np.array(source.direction, dtype=float).reshape(3, 3).T @ (np.array(target.origin) - source.origin)
    return [(offset[axis] + np.arange(target.size[axis]) * target.spacing[axis]) / source.spacing[axis]
            for axis in (2, 1, 0)]


def resample_linear(volume: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """`volume` (z, y, x) float32 on `source` -> `target` (same direction), as `Grid.resample(..., "linear")` gives:
    trilinear, edge voxels repeated up to half a voxel beyond the outermost centres, nearest voxel beyond that.

    Linear interpolation between two grids of one direction is separable: one pass per axis, each reading two
    source planes per target plane, 2–3× faster than ITK's resampler for the maps the pipeline writes (14 per
    Attention UNet). `Testing/Python/test_preprocess.py` checks it against SimpleITK."""
    if source.direction != target.direction:
        raise ValueError("separable resampling needs two grids of one direction")
    positions = _source_indices(source, target)
    result = volume
    for axis, position in enumerate(positions):
        size = volume.shape[axis]
        clamped = np.clip(position, 0, size - 1)
        low = np.minimum(np.floor(clamped).astype(np.intp), max(size - 2, 0))
        high = np.minimum(low + 1, size - 1)
        weight = (clamped - low).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(3)])
        below = np.take(result, low, axis=axis)
        step = np.take(result, high, axis=axis)  # below + weight × (above − below), in place
        step -= below
        step *= weight
        step += below
        result = step
    outside = [(position < -0.5) | (position >= size - 0.5) for position, size in zip(positions, volume.shape)]
    if any(mask.any() for mask in outside):  # ITK's nearest-neighbour extrapolation, on the rim it covers
        nearest = [np.clip(np.floor(position + 0.5), 0, size - 1).astype(np.intp)
                   for position, size in zip(positions, volume.shape)]
        for axis, mask in enumerate(outside):
            if mask.any():
                picked = [index if a != axis else index[mask] for a, index in enumerate(nearest)]
                rim = [slice(None) if a != axis else np.flatnonzero(mask) for a in range(3)]
                result[tuple(rim)] = volume[np.ix_(*picked)]
    return np.ascontiguousarray(result, dtype=np.float32)


def _interpolator(name: str) -> int:
    if name not in _INTERPOLATORS:
        raise ValueError(f"interpolation must be one of {', '.join(_INTERPOLATORS)}, got {name!r}")
    return _INTERPOLATORS[name]


def brain_mask(case: Case) -> np.ndarray:
    """Voxels (z, y, x) on the reference grid where any modality is non-zero: the skull-stripped brain."""
    arrays = [sitk.GetArrayViewFromImage(case.images[m]) for m in MODALITIES]
    mask = arrays[0] != 0
    for array in arrays[1:]:
        mask |= array != 0
    return mask


def brain_box(mask: np.ndarray, spacing_zyx: Sequence[float], margin_mm: float) -> tuple[tuple[int, int], ...]:
    """Bounding box (start, stop) per array axis of the (non-empty) mask, widened by `margin_mm`, inside the array."""
    margins = [int(np.ceil(margin_mm / spacing - 1e-9)) for spacing in spacing_zyx]
    return tuple((axis.start, axis.stop) for axis in bounding_box(mask, margins))


def _orientation(direction: Sequence[float]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Permutation and flips (numpy order) that make the array axes run closest to LPS x, y, z.

    Returns (axes, flips) such that `np.transpose(np.flip(a, flips), axes)` is the reoriented array.
    """
    matrix = np.array(direction, dtype=float).reshape(3, 3)  # column j: physical direction of index axis j
    best = max(itertools.permutations(range(3)), key=lambda p: sum(abs(matrix[p[j], j]) for j in range(3)))
    physical_of_index = best  # index axis j runs along physical axis best[j]
    index_of_physical = [physical_of_index.index(p) for p in range(3)]
    flips = tuple(sorted(2 - j for j in range(3) if matrix[physical_of_index[j], j] < 0))
    # network array axis a <-> network index axis 2-a <-> physical axis 2-a <-> source index axis -> array axis
    axes = tuple(2 - index_of_physical[2 - a] for a in range(3))
    return axes, flips


def _oriented_grid(cropped: Grid, axes: Sequence[int], flips: Sequence[int]) -> Grid:
    """Grid of the reoriented array: same voxels in space, axes permuted/flipped."""
    matrix = np.array(cropped.direction, dtype=float).reshape(3, 3)
    spacing = np.array(cropped.spacing)
    size = np.array(cropped.size)
    flipped_index_axes = [2 - a for a in flips]
    corner = np.array([size[j] - 1 if j in flipped_index_axes else 0 for j in range(3)], dtype=float)
    origin = np.array(cropped.origin) + matrix @ (corner * spacing)
    # network index axis i comes from source index axis 2 - axes[2 - i]
    source = [2 - axes[2 - i] for i in range(3)]
    signs = np.array([-1.0 if j in flipped_index_axes else 1.0 for j in range(3)])
    new_matrix = np.stack([signs[j] * matrix[:, j] for j in source], axis=1)
    return Grid(tuple(int(size[j]) for j in source), tuple(float(spacing[j]) for j in source),
                tuple(origin.tolist()), tuple(new_matrix.ravel().tolist()))


def _network_grid(oriented: Grid, spacing_zyx: Sequence[float] | None) -> Grid:
    """The grid at the model's spacing covering the same physical extent as `oriented` (itself if no change)."""
    if spacing_zyx is None:
        return oriented
    new_spacing = np.array(list(spacing_zyx)[::-1], dtype=float)
    if new_spacing.shape != (3,) or not np.all(new_spacing > 0):
        raise InputError(f"invalid spacing {list(spacing_zyx)}", "give three positive numbers (z, y, x) in mm")
    old_spacing = np.array(oriented.spacing)
    if np.allclose(new_spacing, old_spacing, rtol=0, atol=SPACING_TOLERANCE):
        return oriented
    extent = np.array(oriented.size) * old_spacing
    size = np.maximum(1, np.round(extent / new_spacing)).astype(int)
    matrix = np.array(oriented.direction, dtype=float).reshape(3, 3)
    start = np.array(oriented.origin) - matrix @ (0.5 * old_spacing)  # outer corner of the first voxel
    origin = start + matrix @ (0.5 * new_spacing)
    return Grid(tuple(int(s) for s in size), tuple(new_spacing.tolist()), tuple(origin.tolist()), oriented.direction)


def minmax_crop(array: np.ndarray) -> np.ndarray:
    """The study's (x − min) / (max − min) over every voxel, as float32 (a constant array becomes 0)."""
    out = np.asarray(array, dtype=np.float32).copy()
    low, high = float(out.min()), float(out.max())
    out -= np.float32(low)
    out /= np.float32(high - low if high > low else 1.0)
    return out


def normalise(array: np.ndarray, mask: np.ndarray, method: str = "zscore") -> np.ndarray:
    """One modality -> float32. `zscore` and `minmax` use statistics of the brain voxels (`mask`) and set the rest
    to 0; `minmax-crop` is the study's (x − min) / (max − min) over every voxel of the crop, background included,
    so one bright voxel sets the scale."""
    if method not in NORMALISATIONS:
        raise InputError(f"unknown normalisation '{method}'", f"choose one of {', '.join(NORMALISATIONS)}")
    if method == "minmax-crop":
        return minmax_crop(array)
    out = np.asarray(array, dtype=np.float32).copy()
    values = out[mask]
    if values.size == 0:
        return np.zeros_like(out)
    if method == "zscore":
        centre, scale = values.mean(dtype=np.float64), values.std(dtype=np.float64)
        low, high = -ZSCORE_CLIP, ZSCORE_CLIP
    else:
        centre, top = np.percentile(values, MINMAX_PERCENTILES)
        scale, low, high = top - centre, 0.0, 1.0
    out -= np.float32(centre)
    out /= np.float32(scale if scale > 0 else 1.0)
    np.clip(out, low, high, out=out)
    out[~mask] = 0.0
    return out


def plan_geometry(reference: sitk.Image, mask: np.ndarray, spacing: Sequence[float] | None = None,
                  margin_mm: float = 5.0, normalisation: str = "zscore") -> Geometry:
    """Crop box, reorientation and network grid for a brain `mask` on the `reference` image's grid."""
    if not mask.any():
        raise InputError("every modality is empty (all voxels 0)", "check the input images")
    crop = brain_box(mask, reference.GetSpacing()[::-1], margin_mm)
    start_index = [int(crop[2 - i][0]) for i in range(3)]  # (x, y, z)
    cropped = Grid(tuple(int(crop[2 - i][1] - crop[2 - i][0]) for i in range(3)), tuple(reference.GetSpacing()),
                   tuple(reference.TransformIndexToPhysicalPoint(start_index)), tuple(reference.GetDirection()))
    axes, flips = _orientation(reference.GetDirection())
    oriented = _oriented_grid(cropped, axes, flips)
    return Geometry(Grid.of(reference), crop, axes, flips, oriented, _network_grid(oriented, spacing), normalisation)


def preprocess(case: Case, spacing: Sequence[float] | None = None, normalisation: str = "zscore",
               margin_mm: float = 5.0) -> tuple[np.ndarray, Geometry]:
    """Case -> (float32 array (4, z, y, x) with channels T1, T1ce, T2, FLAIR in network space, Geometry).

    `spacing` is the model's voxel spacing in array order (z, y, x) mm, or None to keep the input's.
    """
    if normalisation not in NORMALISATIONS:
        raise InputError(f"unknown normalisation '{normalisation}'", f"choose one of {', '.join(NORMALISATIONS)}")
    brain = brain_mask(case)
    geometry = plan_geometry(case.reference_image, brain, spacing, margin_mm, normalisation)
    mask = geometry.crop_to_network(brain.view(np.uint8), "nearest").astype(bool)
    channels = np.empty((len(MODALITIES), *geometry.network_shape), dtype=np.float32)
    for channel, modality in zip(channels, MODALITIES):
        channel[...] = normalise(geometry.from_reference(case.images[modality], "linear"), mask, normalisation)
    return channels, geometry


def preprocess_label(case: Case, geometry: Geometry) -> np.ndarray:
    """The case's ground truth in network space: uint8 (z, y, x) BraTS labels (nearest neighbour)."""
    if case.label is None:
        raise InputError(f"case '{case.case_id}' has no label map", "give a <id>_seg file beside the images",
                         case.source.label_path if case.source else None)
    return geometry.from_reference(case.label, "nearest").astype(np.uint8)
