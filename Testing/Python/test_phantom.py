"""The synthetic case looks like a BraTS case: right labels, right contrasts per sequence, skull-stripped, fast."""
from __future__ import annotations


import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from BraTSXAILib.io import MODALITIES, discover_cases, load_case
from BraTSXAILib.phantom import make_phantom, write_phantom


@pytest.fixture(scope="module")
def phantom():
    return make_phantom()


def arrays(case):
    return {m: sitk.GetArrayFromImage(case.images[m]) for m in MODALITIES}, sitk.GetArrayFromImage(case.label)


def test_geometry_labels_and_skull_stripping(phantom):
    images, label = arrays(phantom)
    reference = phantom.images["t1ce"]
    assert reference.GetSize() == (64, 72, 64) and reference.GetSpacing() == (1.5, 1.5, 1.5)
    assert phantom.reference == "t1ce" and phantom.warnings == []
    assert set(np.unique(label).tolist()) == {0, 1, 2, 4}
    brain = images["t1"] > 0
    assert 0.25 < brain.mean() < 0.6  # a head-sized brain inside the field of view, background around it
    for modality, array in images.items():
        assert array.dtype == np.float32 and (array == np.round(array)).all()  # int16-like scanner values
        assert np.array_equal(array > 0, brain), modality  # one skull-stripped brain mask for all sequences
        assert 600 < array.max() < 1500 and array.min() == 0
    assert brain[label > 0].all()
    assert not brain[0].any() and not brain[:, :, 0].any()  # background all round


def test_tumour_is_nested_core_inside_rim_inside_edema(phantom):
    _, label = arrays(phantom)
    necrosis, rim, edema = label == 1, label == 4, label == 2
    core = necrosis | rim
    assert 0 < necrosis.sum() < rim.sum() * 3 and edema.sum() > core.sum() / 2
    # necrosis is enclosed by enhancing tumour: growing it by a voxel reaches rim, never edema or brain directly
    touching = ndimage.binary_dilation(necrosis) & ~necrosis
    assert (label[touching] == 4).mean() > 0.9
    # the core sits inside the edema: what surrounds the core is edema
    around_core = ndimage.binary_dilation(core, iterations=2) & ~core
    assert (label[around_core] == 2).mean() > 0.8


def region_means(case):
    images, label = arrays(case)
    brain = images["t1"] > 0
    normal = brain & (label == 0)
    csf = normal & (images["t2"] > images["t2"][normal].mean() + 2 * images["t2"][normal].std())
    tissue = normal & ~csf
    regions = {"tissue": tissue, "csf": csf, "necrosis": label == 1, "edema": label == 2, "rim": label == 4}
    return {m: {r: float(images[m][mask].mean()) for r, mask in regions.items()} for m in MODALITIES}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_sequence_has_brats_contrast(seed):
    means = region_means(make_phantom(seed=seed))
    t1, t1ce, t2, flair = (means[m] for m in MODALITIES)
    assert all(t1[r] < t1["tissue"] for r in ("necrosis", "edema", "rim"))  # T1: tumour hypointense
    assert t1ce["rim"] > max(v for r, v in t1ce.items() if r != "rim")  # T1ce: enhancing rim brightest
    assert t1ce["necrosis"] < t1ce["tissue"]  # T1ce: necrosis dark
    assert min(t2["edema"], t2["necrosis"], t2["csf"]) > t2["tissue"]  # T2: fluid bright
    assert flair["edema"] > max(flair["tissue"], flair["necrosis"])  # FLAIR: edema bright
    assert flair["csf"] < flair["tissue"]  # FLAIR: CSF suppressed


def test_noise_and_bias_make_intensities_vary_within_a_tissue(phantom):
    images, label = arrays(phantom)
    deep = ndimage.binary_erosion(images["t1"] > 0, iterations=4) & (label == 0)
    t1 = images["t1"][deep]
    assert np.std(t1) > 20  # not a flat cartoon


def test_seed_moves_and_resizes_the_tumour_and_is_reproducible():
    small = dict(shape=(40, 44, 40), spacing=(2.4, 2.4, 2.4))
    labels = [sitk.GetArrayFromImage(make_phantom(**small, seed=s).label) for s in range(4)]
    centres = [np.argwhere(lab > 0).mean(axis=0) for lab in labels]
    volumes = [int((lab > 0).sum()) for lab in labels]
    for i in range(4):
        for j in range(i + 1, 4):  # every two seeds differ in tumour position or size
            assert np.linalg.norm(centres[i] - centres[j]) > 0.5 or abs(volumes[i] - volumes[j]) > 0.2 * volumes[i]
    assert max(np.linalg.norm(a - b) for a in centres for b in centres) > 5.0  # spread over the brain
    assert max(volumes) > 1.5 * min(volumes)
    again = make_phantom(**small, seed=2)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(again.label), labels[2])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(again.images["flair"]),
                                  sitk.GetArrayFromImage(make_phantom(**small, seed=2).images["flair"]))


def test_shape_and_spacing_are_in_array_order():
    case = make_phantom(shape=(20, 28, 24), spacing=(3.0, 1.0, 2.0), seed=1)
    assert case.images["t1"].GetSize() == (24, 28, 20) and case.images["t1"].GetSpacing() == (2.0, 1.0, 3.0)
    assert (sitk.GetArrayFromImage(case.label) > 0).any()


@pytest.mark.parametrize("naming, suffix, enhancing", [("2018", "_flair", 4), ("2023", "-t2f", 3)])
def test_written_phantom_is_a_loadable_brats_case(tmp_path, naming, suffix, enhancing):
    folder = write_phantom(tmp_path, "Ph", naming=naming, seed=3, shape=(24, 28, 26), spacing=(2.0, 2.0, 2.0))
    assert folder == tmp_path / "Ph" and (folder / f"Ph{suffix}.nii.gz").exists()
    assert sitk.ReadImage(str(folder / f"Ph{suffix}.nii.gz")).GetPixelID() == sitk.sitkInt16
    (source,) = discover_cases(tmp_path)
    case = load_case(source)
    expected = make_phantom((24, 28, 26), (2.0, 2.0, 2.0), seed=3)
    for modality in MODALITIES:
        np.testing.assert_array_equal(sitk.GetArrayFromImage(case.images[modality]),
                                      sitk.GetArrayFromImage(expected.images[modality]))
    truth = sitk.GetArrayFromImage(expected.label)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.label), np.where(truth == 4, enhancing, truth))
    assert not list(folder.glob(".*"))  # no temporary files left behind


def test_unknown_naming_is_refused(tmp_path):
    with pytest.raises(ValueError, match="naming"):
        write_phantom(tmp_path, naming="2015")
