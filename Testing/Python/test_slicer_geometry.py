"""IJK-to-RAS matrices from files: the position SimpleITK gives every voxel, in Slicer's RAS, exactly."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

import slicer_module  # noqa: F401
from BraTSXAIHelpers.geometry import ijk_to_ras, read_grid, read_volume, same_grid


def oblique_image() -> sitk.Image:
    image = sitk.GetImageFromArray(np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7))
    image.SetSpacing((0.9, 1.1, 2.5))
    image.SetOrigin((12.0, -40.0, 7.5))
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    image.SetDirection(tuple((rotation @ np.diag([1, -1, 1])).ravel()))  # oblique and flipped
    return image


def test_matrix_places_voxels_where_simpleitk_does():
    image = oblique_image()
    matrix = ijk_to_ras(image)
    for index in [(0, 0, 0), (6, 0, 0), (0, 5, 0), (0, 0, 4), (3, 2, 1), (6, 5, 4)]:
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        ras = matrix @ np.array([*index, 1.0])
        assert np.allclose(ras[:3], lps * [-1, -1, 1])


def test_read_volume_keeps_array_order_and_geometry(tmp_path):
    image = oblique_image()
    path = tmp_path / "map.nii.gz"
    sitk.WriteImage(image, str(path))
    array, matrix = read_volume(path)
    assert array.shape == (5, 6, 7)  # (k, j, i), as slicer.util.arrayFromVolume
    assert array[4, 5, 6] == image.GetPixel(6, 5, 4)
    assert same_grid(matrix, array.shape, ijk_to_ras(image), (5, 6, 7))  # NIfTI keeps it to float32 precision


def test_same_grid_notices_shift_spacing_and_size():
    image = oblique_image()
    matrix, shape = ijk_to_ras(image), (5, 6, 7)
    assert same_grid(matrix, shape, matrix + 1e-5, shape)
    shifted = matrix.copy()
    shifted[0, 3] += 0.01
    assert not same_grid(matrix, shape, shifted, shape)
    stretched = matrix.copy()
    stretched[:3, 2] *= 1.01
    assert not same_grid(matrix, shape, stretched, shape)
    assert not same_grid(matrix, shape, matrix, (5, 6, 8))


def test_grid_from_the_header_alone_matches_the_full_read(tmp_path):
    path = tmp_path / "map.nii.gz"
    sitk.WriteImage(oblique_image(), str(path))
    array, matrix = read_volume(path)
    shape, header_matrix = read_grid(path)
    assert shape == array.shape and np.array_equal(header_matrix, matrix)
