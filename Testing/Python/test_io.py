"""Case discovery, loading onto the reference grid, and one clear InputError for each kind of bad input."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from BraTSXAILib.errors import InputError
from BraTSXAILib.io import MODALITIES, Case, checked_case, discover_cases, load_case, modality_of
from BraTSXAILib.phantom import make_phantom, write_phantom

SHAPE, SPACING = (24, 32, 28), (2.0, 2.0, 2.0)
DATA = Path(os.environ.get("BRATSXAI_DATA", Path(__file__).resolve().parents[2].parent / "shared/data"))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Brats18_2013_2_1_t1.nii.gz", "t1"),
        ("Brats18_2013_2_1_t1ce.nii.gz", "t1ce"),
        ("Brats18_2013_2_1_t2.nii", "t2"),
        ("Brats18_2013_2_1_flair.nrrd", "flair"),
        ("Brats18_2013_2_1_seg.nii.gz", "seg"),
        ("BraTS-GLI-00001-000-t1n.nii.gz", "t1"),
        ("BraTS-GLI-00001-000-t1c.nii.gz", "t1ce"),
        ("BraTS-GLI-00001-000-t2w.nii.gz", "t2"),
        ("BraTS-GLI-00001-000-t2f.nii.gz", "flair"),
        ("BraTS-GLI-00001-000-seg.nii.gz", "seg"),
        ("T1CE.NII.GZ", "t1ce"),
        ("flair.nii.gz", "flair"),
        ("Brats18_2013_2_1_t1ce.txt", None),
        ("notes_brain.nii.gz", None),
        ("t1ce_mask.nii.gz", None),
    ],
)
def test_modality_of_reads_brats_2018_and_2023_names(name, expected):
    assert modality_of(name) == expected


def _write(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path))
    return path


def _phantom_folder(tmp_path: Path, naming: str = "2018", case_id: str = "Case") -> Path:
    return write_phantom(tmp_path, case_id, naming=naming, shape=SHAPE, spacing=SPACING)


def test_discovers_a_case_folder_a_folder_of_cases_and_explicit_files(tmp_path):
    first = _phantom_folder(tmp_path, "2018", "A")
    second = _phantom_folder(tmp_path, "2023", "B")
    (tmp_path / "empty").mkdir()

    both = discover_cases(tmp_path)
    assert [c.case_id for c in both] == ["A", "B"]
    assert all(set(c.paths) == set(MODALITIES) and c.label_path is not None for c in both)
    assert both[1].paths["flair"].name == "B-t2f.nii.gz"

    (one,) = discover_cases(first)
    assert one.case_id == "A" and one.paths["t1ce"] == first / "A_t1ce.nii.gz"

    files = [second / f"B-{s}.nii.gz" for s in ("t2f", "t1n", "t2w", "t1c")]
    (explicit,) = discover_cases(files)
    assert explicit.case_id == "B" and explicit.label_path is None
    assert explicit.paths == {"t1": files[1], "t1ce": files[3], "t2": files[2], "flair": files[0]}


def test_loaded_case_keeps_values_geometry_and_label(tmp_path):
    phantom = make_phantom(SHAPE, SPACING, seed=0)
    case = load_case(_phantom_folder(tmp_path))
    assert case.reference == "t1ce" and case.warnings == [] and case.case_id == "Case"
    for modality in MODALITIES:
        image = case.images[modality]
        assert image.GetPixelID() == sitk.sitkFloat32
        assert image.GetSpacing() == phantom.images[modality].GetSpacing()
        assert image.GetOrigin() == phantom.images[modality].GetOrigin()
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(phantom.images[modality]))
    assert case.label.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(case.label), sitk.GetArrayViewFromImage(phantom.label))


def _centroid_mm(image: sitk.Image, mask: np.ndarray) -> np.ndarray:
    """Physical centre (x, y, z) of the voxels in `mask` (z, y, x)."""
    index = np.argwhere(mask).mean(axis=0)[::-1]
    return np.array(image.TransformContinuousIndexToPhysicalPoint(index.tolist()))


def test_modalities_on_another_grid_are_resampled_in_physical_space(tmp_path):
    folder = _phantom_folder(tmp_path)
    flair_path = folder / "Case_flair.nii.gz"
    original = sitk.ReadImage(str(flair_path), sitk.sitkFloat32)
    coarse = sitk.Image([20, 22, 14], sitk.sitkFloat32)  # 2.5 × 3 × 4 mm, shifted origin, different field of view
    coarse.SetSpacing((2.5, 3.0, 4.0))
    coarse.SetOrigin((-26.0, -34.0, -27.0))
    _write(sitk.Resample(original, coarse, sitk.Transform(), sitk.sitkLinear), flair_path)

    case = load_case(folder)
    flair, reference = case.images["flair"], case.images["t1ce"]
    assert (flair.GetSize(), flair.GetSpacing(), flair.GetOrigin(), flair.GetDirection()) == (
        reference.GetSize(), reference.GetSpacing(), reference.GetOrigin(), reference.GetDirection())
    assert len(case.warnings) == 1 and "flair" in case.warnings[0] and "resampled" in case.warnings[0]
    bright_before = sitk.GetArrayViewFromImage(original) > 800  # edema is the brightest tissue on FLAIR
    bright_after = sitk.GetArrayViewFromImage(flair) > 800
    shift = _centroid_mm(flair, bright_after) - _centroid_mm(original, bright_before)
    assert np.linalg.norm(shift) < 2.0  # same physical place despite a 3–4 mm voxel grid


def test_reference_modality_can_be_chosen(tmp_path):
    folder = _phantom_folder(tmp_path)
    flair_path = folder / "Case_flair.nii.gz"
    image = sitk.ReadImage(str(flair_path))
    _write(sitk.Resample(image, [12, 16, 14], sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), (4.0, 4.0, 4.0),
                         image.GetDirection()), flair_path)
    case = load_case(folder, reference="flair")
    assert case.reference == "flair"
    assert all(case.images[m].GetSize() == (12, 16, 14) for m in MODALITIES)
    assert case.label.GetSize() == (12, 16, 14)
    assert len(case.warnings) == 4  # t1, t1ce, t2 and the label map were resampled


def _raises(call, *words) -> InputError:
    with pytest.raises(InputError) as caught:
        call()
    error = caught.value
    text = error.one_line()
    assert "\n" not in text and error.hint
    for word in words:
        assert word in text
    return error


def test_missing_and_duplicate_modalities_are_input_errors(tmp_path):
    folder = _phantom_folder(tmp_path)
    (folder / "Case_t2.nii.gz").unlink()
    error = _raises(lambda: discover_cases(folder), "t2")
    assert error.path == str(folder)

    folder = _phantom_folder(tmp_path / "dup")
    _write(sitk.ReadImage(str(folder / "Case_t1.nii.gz")), folder / "Case_t1.nrrd")
    _raises(lambda: discover_cases(folder), "more than one t1", "Case_t1.nrrd")

    _raises(lambda: discover_cases(tmp_path / "nowhere"), "does not exist")
    renamed = folder / "Case_T1post.nii.gz"
    (folder / "Case_t1ce.nii.gz").rename(renamed)
    explicit = [renamed] + [folder / f"Case_{m}.nii.gz" for m in ("t1", "t2", "flair")]
    assert _raises(lambda: discover_cases(explicit), "cannot tell the modality").path == str(renamed)
    (tmp_path / "nothing").mkdir()
    _raises(lambda: discover_cases(tmp_path / "nothing"), "no BraTS images")


def _with_broken(tmp_path: Path, modality: str, writer) -> Path:
    folder = _phantom_folder(tmp_path)
    path = folder / f"Case_{modality}.nii.gz"
    writer(path)
    return path


def test_truncated_file_is_an_input_error_naming_it(tmp_path):
    def cut_in_half(path):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    path = _with_broken(tmp_path, "t2", cut_in_half)
    error = _raises(lambda: load_case(path.parent), "cannot read the t2 image")
    assert error.path == str(path)


def test_uncompressed_file_cut_short_is_an_input_error(tmp_path):
    folder = _phantom_folder(tmp_path)
    raw = folder / "Case_t1.nii"
    raw.write_bytes(gzip.decompress((folder / "Case_t1.nii.gz").read_bytes())[:5000])
    (folder / "Case_t1.nii.gz").unlink()
    assert _raises(lambda: load_case(folder), "t1").path == str(raw)


@pytest.mark.parametrize(
    "array, words",
    [
        (np.ones((32, 28), np.float32), ("not a 3D volume",)),
        (np.ones((3, 24, 32, 28), np.float32), ("not a 3D volume",)),
        (np.zeros(SHAPE, np.float32), ("empty",)),
    ],
    ids=["2D", "4D", "all zero"],
)
def test_wrong_dimension_or_empty_volume_is_an_input_error(tmp_path, array, words):
    path = _with_broken(tmp_path, "flair", lambda p: _write(sitk.GetImageFromArray(array, isVector=False), p))
    assert _raises(lambda: load_case(path.parent), "flair", *words).path == str(path)


@pytest.mark.parametrize("extension", [".nii.gz", ".nrrd"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_is_an_input_error(tmp_path, bad, extension):
    """ITK's NIfTI reader turns NaN/Inf into 0 without a word; the loader must still refuse them."""
    folder = _phantom_folder(tmp_path)
    (folder / "Case_t1.nii.gz").unlink()
    array = sitk.GetArrayFromImage(make_phantom(SHAPE, SPACING).images["t1"])
    array[3, 4, 5] = bad
    path = _write(sitk.GetImageFromArray(array), folder / f"Case_t1{extension}")
    assert _raises(lambda: load_case(folder), "NaN or infinite").path == str(path)


def test_grids_without_physical_overlap_are_an_input_error(tmp_path):
    def shift_away(path):
        image = sitk.ReadImage(str(path))
        image.SetOrigin((500.0, 0.0, 0.0))
        _write(image, path)

    path = _with_broken(tmp_path, "t2", shift_away)
    assert _raises(lambda: load_case(path.parent), "does not overlap").path == str(path)


def test_image_whose_brain_lies_outside_the_reference_field_of_view_is_an_input_error(tmp_path):
    def move_content_away(path):
        image = sitk.ReadImage(str(path))
        wide = sitk.Image([3 * s for s in image.GetSize()], image.GetPixelID())  # overlaps, but content is beside
        wide.SetSpacing(image.GetSpacing())
        wide.SetOrigin(image.GetOrigin())
        _write(sitk.Paste(wide, image, image.GetSize(), [0, 0, 0], [2 * s for s in image.GetSize()]), path)

    path = _with_broken(tmp_path, "t2", move_content_away)
    assert _raises(lambda: load_case(path.parent), "no content inside").path == str(path)


def test_label_map_with_foreign_values_is_an_input_error(tmp_path):
    def relabel(path):
        label = sitk.ReadImage(str(path))
        _write(label * 3, path)  # 1, 2, 4 -> 3, 6, 12

    folder = _phantom_folder(tmp_path)
    relabel(folder / "Case_seg.nii.gz")
    _raises(lambda: load_case(folder), "label map", "6")


def test_right_anterior_superior_nifti_is_read_in_physical_lps_space(tmp_path):
    """A NIfTI whose affine is RAS (nibabel's convention) lands where its affine says, in SimpleITK's LPS."""
    folder = _phantom_folder(tmp_path)
    array = np.zeros((20, 24, 16), np.int16)  # nibabel order (i, j, k)
    array[15, 4, 10] = 1000
    affine = np.diag([1.5, 2.0, 3.0, 1.0])
    affine[:3, 3] = (-15.0, -24.0, -24.0)
    nib.save(nib.Nifti1Image(array, affine), folder / "Case_t2.nii.gz")
    case = load_case(folder)
    t2 = case.images["t2"]
    ras = affine @ np.array([15, 4, 10, 1.0])
    expected_lps = np.array([-ras[0], -ras[1], ras[2]])
    index = t2.TransformPhysicalPointToIndex(expected_lps.tolist())
    value_there = sitk.GetArrayViewFromImage(t2)[index[2], index[1], index[0]]
    assert value_there > 0
    assert np.linalg.norm(_centroid_mm(t2, sitk.GetArrayViewFromImage(t2) > 0) - expected_lps) < 2.0


def _real_case() -> Path:
    case = DATA / "brats/labelled/Brats18_TCIA10_639_1"
    if not case.exists():
        pytest.skip(f"real BraTS data not found under {DATA}")
    return case


def test_real_saturated_case_loads_with_its_label():
    case = load_case(_real_case())
    assert case.warnings == []
    assert case.images["t1ce"].GetSize() == (240, 240, 155)
    assert sitk.GetArrayViewFromImage(case.images["t1"]).max() == 32767
    assert set(np.unique(sitk.GetArrayViewFromImage(case.label)).tolist()) <= {0, 1, 2, 4}


def test_real_2023_named_case_without_label():
    folder = DATA / "brats/unlabelled/BraTS-GLI-00001-000"
    if not folder.exists():
        pytest.skip(f"real BraTS data not found under {DATA}")
    (source,) = discover_cases(folder)
    assert source.case_id == "BraTS-GLI-00001-000" and source.label_path is None
    assert source.paths["flair"].name.endswith("-t2f.nii.gz")


def test_a_4d_file_holding_one_volume_is_read_as_3d(tmp_path):
    folder = _phantom_folder(tmp_path)
    path = folder / "Case_t2.nii.gz"
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    single = sitk.GetImageFromArray(array[np.newaxis], isVector=False)  # (x, y, z, t=1)
    single.SetSpacing((2.0, 2.0, 2.0, 1.0))
    single.SetOrigin(sitk.ReadImage(str(path)).GetOrigin() + (0.0,))
    _write(single, path)
    case = load_case(folder)
    assert case.warnings == []
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(case.images["t2"]), array)


def test_label_map_with_fractional_values_is_an_input_error(tmp_path):
    folder = _phantom_folder(tmp_path)
    label = sitk.Cast(sitk.ReadImage(str(folder / "Case_seg.nii.gz")), sitk.sitkFloat32) * 0.5
    _write(label, folder / "Case_seg.nii.gz")
    _raises(lambda: load_case(folder), "non-integer")


def test_a_case_built_in_memory_is_checked_like_files():
    case = make_phantom((24, 28, 24), (2.0, 2.0, 2.0))
    ints = {m: sitk.Cast(image, sitk.sitkInt16) for m, image in case.images.items()}
    checked = checked_case(Case("mine", ints, "t1ce", case.label))
    assert all(image.GetPixelID() == sitk.sitkFloat32 for image in checked.images.values())
    np.testing.assert_array_equal(sitk.GetArrayFromImage(checked.images["t2"]),
                                  sitk.GetArrayFromImage(ints["t2"]).astype(np.float32))
    with pytest.raises(InputError, match="no flair image"):
        checked_case(Case("mine", {m: i for m, i in case.images.items() if m != "flair"}))
    shifted = sitk.Image(case.images["t2"])
    shifted.SetOrigin((5.0, 0.0, 0.0))
    with pytest.raises(InputError, match="t2 image is not on the t1ce grid"):
        checked_case(Case("mine", {**case.images, "t2": shifted}))
    empty = sitk.Image(case.images["t1"]) * 0
    with pytest.raises(InputError, match="t1 image is empty"):
        checked_case(Case("mine", {**case.images, "t1": empty}))
