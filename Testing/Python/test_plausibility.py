"""Warnings for inputs unlike the training data: none on real BraTS cases, the right one for each planted fault."""
from pathlib import Path
import os

import numpy as np
import pytest
import SimpleITK as sitk

from BraTSXAILib.io import MODALITIES, discover_cases, load_case
from BraTSXAILib.phantom import ADULT_SHAPE, make_phantom
from BraTSXAILib.plausibility import input_warnings

DATA = Path(os.environ.get("BRATSXAI_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
REAL_SIZE = dict(shape=ADULT_SHAPE, spacing=(1.5, 1.5, 1.5))


def phantom_with(change):
    """A realistic-size phantom with `change(name, array)` applied to each modality's voxel array."""
    case = make_phantom(**REAL_SIZE)
    for name in MODALITIES:
        image = case.images[name]
        array = change(name, sitk.GetArrayFromImage(image))
        case.images[name] = sitk.GetImageFromArray(array)
        case.images[name].CopyInformation(image)
    return case


def test_typical_phantom_raises_no_warning():
    assert input_warnings(make_phantom(**REAL_SIZE)) == []


@pytest.mark.skipif(not (DATA / "brats").is_dir(), reason="real BraTS data not present")
def test_real_brats_cases_raise_no_warning():
    sources = discover_cases(DATA / "brats" / "labelled")
    for source in (sources[1], sources[-1]):  # a 2013 case with unequal masks, a saturated TCIA10 case
        assert input_warnings(load_case(source)) == [], source.case_id


def test_skull_left_on_is_noticed():
    rng = np.random.default_rng(0)

    def fill_background(name, array):
        background = array == 0
        array[background] = rng.uniform(20, 200, background.sum())
        return array

    warnings = input_warnings(phantom_with(fill_background))
    assert any("not skull-stripped" in w for w in warnings)
    assert any("mL" in w for w in warnings)


def test_small_brain_volume_is_noticed():
    (warning,) = input_warnings(make_phantom())  # the default phantom is a small 300 mL brain
    assert "outside the 900–2200 mL" in warning


@pytest.mark.parametrize("spacing, words", [((0.8, 0.8, 2.8), "anisotropic"), ((4.0, 4.0, 4.0), "coarser")])
def test_unusual_voxels_are_noticed(spacing, words):
    case = make_phantom(**REAL_SIZE)
    for image in case.images.values():
        image.SetSpacing(spacing)
    assert any(words in w for w in input_warnings(case))


def test_unregistered_modalities_are_noticed():
    def shift_t2(name, array):
        return np.roll(array, array.shape[2] // 2, axis=2) if name == "t2" else array

    assert any("co-registered" in w for w in input_warnings(phantom_with(shift_t2)))


def test_normalised_intensities_are_noticed():
    def centre_flair(name, array):
        if name == "flair":
            array[array != 0] -= array[array != 0].mean()
        return array

    assert any("flair has negative intensities" in w for w in input_warnings(phantom_with(centre_flair)))


def test_one_image_given_for_two_sequences_is_noticed():
    case = make_phantom(**REAL_SIZE)
    case.images["t1ce"] = sitk.Image(case.images["t1"])
    assert [w for w in input_warnings(case) if "same image" in w] == [
        "t1 and t1ce are the same image: give each sequence its own scan, or the regions that sequence shows "
        "(e.g. enhancement on T1ce) will be poor"]
    case.images["t1ce"] = sitk.Cast(case.images["t1"], sitk.sitkFloat32) * 1.7 + 5.0  # rescaled: still one image
    assert any("t1 and t1ce are the same image" in w for w in input_warnings(case))


def test_t2_and_flair_swapped_are_noticed():
    case = make_phantom(**REAL_SIZE)
    case.images["t2"], case.images["flair"] = case.images["flair"], case.images["t2"]
    assert [w for w in input_warnings(case) if "swapped" in w] == [
        "t2 and flair look swapped (CSF is dark on the image given as t2 and bright on the one given as flair): "
        "check which file is which"]


def test_t1_and_t1ce_swapped_are_noticed():
    def enhance(name, array):  # contrast: a bright vessel voxel in every 97 of the brain, on the T1ce only
        if name == "t1ce":
            brain = np.flatnonzero(array != 0)
            array.flat[brain[::97]] = 2.5 * array.max()
        return array

    case = phantom_with(enhance)
    assert not any("swapped" in w for w in input_warnings(case))
    case.images["t1"], case.images["t1ce"] = case.images["t1ce"], case.images["t1"]
    assert [w for w in input_warnings(case) if "swapped" in w] == [
        "t1 and t1ce look swapped (the image given as t1 has the bright vessels and enhancement of a contrast scan): "
        "check which file is which"]


@pytest.mark.skipif(not (DATA / "brats").is_dir(), reason="real BraTS data not present")
@pytest.mark.parametrize("first, second", [("t2", "flair"), ("t1", "t1ce")])
def test_a_real_case_with_two_sequences_swapped_is_noticed(first, second):
    case = load_case(discover_cases(DATA / "brats" / "labelled")[5])
    assert not any("swapped" in w for w in input_warnings(case))
    case.images[first], case.images[second] = case.images[second], case.images[first]
    assert [w for w in input_warnings(case) if "swapped" in w][0].startswith(f"{first} and {second} look swapped")
