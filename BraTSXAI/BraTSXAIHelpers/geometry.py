"""Image geometry as Slicer sees it: the IJK-to-RAS matrix of a file read with SimpleITK.

SimpleITK and the files speak LPS; Slicer nodes speak RAS. A voxel's array index (k, j, i) is the same in both
(Slicer keeps the file's voxel order), so an output volume written on the reference grid can be put straight
into a node that has the reference node's IJK-to-RAS matrix, without resampling.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _ijk_to_ras(direction, spacing, origin) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(direction, dtype=float).reshape(3, 3) * np.array(spacing, dtype=float)  # column i × spacing i
    matrix[:3, 3] = origin
    return LPS_TO_RAS @ matrix


def ijk_to_ras(image: sitk.Image) -> np.ndarray:
    """4×4 matrix taking a voxel index (i, j, k, 1) to its RAS position in mm."""
    return _ijk_to_ras(image.GetDirection(), image.GetSpacing(), image.GetOrigin())


def read_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Voxel array in (k, j, i) order, as slicer.util.arrayFromVolume gives it, and the IJK-to-RAS matrix."""
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), ijk_to_ras(image)


def read_grid(path: str | Path) -> tuple[tuple[int, int, int], np.ndarray]:
    """Array shape (k, j, i) and IJK-to-RAS matrix from the file header alone, without reading the voxels."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    matrix = _ijk_to_ras(reader.GetDirection(), reader.GetSpacing(), reader.GetOrigin())
    return tuple(int(n) for n in reversed(reader.GetSize())), matrix


def same_grid(matrix_a: np.ndarray, shape_a, matrix_b: np.ndarray, shape_b, tolerance_mm: float = 1e-3) -> bool:
    """Same voxel count and every voxel at the same place (within `tolerance_mm`; NIfTI stores float32)."""
    if tuple(shape_a) != tuple(shape_b):
        return False
    corners = np.array([[i, j, k, 1.0] for i in (0, shape_a[2] - 1) for j in (0, shape_a[1] - 1)
                        for k in (0, shape_a[0] - 1)]).T
    return bool(np.abs(np.asarray(matrix_a) @ corners - np.asarray(matrix_b) @ corners).max() <= tolerance_mm)
