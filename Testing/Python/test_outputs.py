"""Atomic writing: a finished file appears whole, with the usual permissions; a failed one leaves nothing.
Maps in [0, 1] keep their grid and read back within half a 1/255 step in every reader."""
import os
import stat

import numpy as np
import pytest

from BraTSXAILib.outputs import UNIT_STEPS, atomic_write, write_json, write_unit_map


def test_completed_write_is_renamed_with_umask_permissions(tmp_path):
    path = write_json({"a": 1}, tmp_path / "sub" / "result.json")
    assert path.read_text().strip().startswith("{")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "labels.nii.gz"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as temporary:
            assert temporary.name.endswith(".nii.gz") and temporary.parent == tmp_path
            temporary.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.nii.gz"]


def _oblique_grid():
    from BraTSXAILib.preprocess import Grid

    angle = 0.3
    direction = (np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle), 0.0, 0.0, 0.0, -1.0)
    return Grid((13, 11, 9), (0.9, 1.1, 2.5), (-12.5, 30.25, 7.0), tuple(float(d) for d in direction))


def test_unit_maps_keep_the_grid_and_read_back_in_one_255th_steps(tmp_path):
    import nibabel
    import SimpleITK as sitk

    grid = _oblique_grid()
    values = np.zeros(grid.shape, dtype=np.float32)
    values[2:7, 3:9, 4:10] = np.random.default_rng(0).random((5, 6, 6))
    values[3, 4, 5], values[4, 4, 5] = 0.5, 1.0
    path = write_unit_map(values, grid, tmp_path / "map.nii.gz")
    image = sitk.ReadImage(str(path))
    assert image.GetPixelID() == sitk.sitkFloat32  # the reader applied the slope
    assert image.GetSize() == grid.size  # NIfTI stores the rest as float32, as for every NIfTI file
    for read_back, expected in ((image.GetSpacing(), grid.spacing), (image.GetOrigin(), grid.origin),
                                (image.GetDirection(), grid.direction)):
        np.testing.assert_allclose(read_back, expected, atol=1e-5)
    read = sitk.GetArrayFromImage(image)
    assert np.abs(read - values).max() <= 0.5 / UNIT_STEPS + 1e-6
    assert read[4, 4, 5] == 1.0 and (read[values == 0] == 0).all()
    np.testing.assert_array_equal(read >= 0.5, values >= 0.5)  # thresholding at 0.5 survives storage
    stored = nibabel.load(path)
    assert stored.get_data_dtype() == np.uint8 and stored.dataobj.slope == pytest.approx(1 / 255)
    np.testing.assert_allclose(stored.get_fdata().T, read, atol=1e-6)


def test_an_empty_unit_map_is_all_zero(tmp_path):
    import SimpleITK as sitk

    grid = _oblique_grid()
    path = write_unit_map(np.zeros(grid.shape, dtype=np.float32), grid, tmp_path / "empty.nii.gz")
    assert not sitk.GetArrayFromImage(sitk.ReadImage(str(path))).any()
    assert [p.name for p in tmp_path.iterdir()] == ["empty.nii.gz"]  # no scratch file left
