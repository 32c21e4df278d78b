"""Preprocessing and its inverse: a planted tumour comes back to the same physical place on every kind of grid."""
from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from BraTSXAILib.errors import InputError
from BraTSXAILib.io import MODALITIES, Case, CaseSource, load_case
from BraTSXAILib.preprocess import ZSCORE_CLIP, brain_mask, preprocess, preprocess_label

DATA = Path(os.environ.get("BRATSXAI_DATA", Path(__file__).resolve().parents[2].parent / "shared/data"))
CENTRE = np.array([10.0, -20.0, 15.0])  # mm, LPS
BRAIN_AXES = np.array([38.0, 44.0, 34.0])  # semi-axes of the ellipsoidal brain, mm
BLOB = CENTRE + np.array([14.0, -12.0, 8.0])  # tumour centre: patient's left, anterior, superior of the centre
RADII = {4: 8.0, 1: 4.0}  # enhancing rim and necrotic core spheres (mm); edema is a larger sphere
EDEMA_RADIUS = 13.0


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    ax, ay, az = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


SWAP = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)  # index x runs along physical y, y along z, z along x
# name: (direction matrix (columns = index axes), spacing (x, y, z) mm, size (x, y, z))
GRIDS = {
    "lps": (np.eye(3), (2.0, 2.0, 2.0), (56, 60, 50)),
    "flipped": (np.diag([-1.0, -1.0, 1.0]), (2.0, 2.0, 2.0), (56, 60, 50)),
    "permuted": (SWAP, (2.0, 2.0, 2.0), (60, 50, 56)),
    "oblique": (rotation(20, -15, 30), (2.0, 2.0, 2.0), (60, 64, 56)),
    "anisotropic": (np.eye(3), (1.25, 1.6, 3.2), (90, 75, 32)),
    "oblique_flipped_anisotropic": (rotation(-10, 25, 5) @ np.diag([1.0, -1.0, -1.0]), (1.5, 2.5, 2.0), (76, 48, 60)),
}


def physical_points(size, spacing, origin, direction) -> np.ndarray:
    """Physical (x, y, z) mm of every voxel centre, array shaped (z, y, x, 3)."""
    z, y, x = np.indices(tuple(reversed(size)), dtype=float)
    index_mm = np.stack([x, y, z], axis=-1) * np.asarray(spacing)
    return np.asarray(origin) + index_mm @ np.asarray(direction).reshape(3, 3).T


def t1_truth(points: np.ndarray) -> np.ndarray:
    """T1 inside the brain: a linear function of position, so any correct resampling reproduces it."""
    offset = points - CENTRE
    return 600.0 + 3.0 * offset[..., 0] - 2.0 * offset[..., 1] + 1.5 * offset[..., 2]


def brain_radius(points: np.ndarray) -> np.ndarray:
    return np.sqrt((((points - CENTRE) / BRAIN_AXES) ** 2).sum(axis=-1))


def blob_case(name: str) -> Case:
    """The same physical head (brain, tumour with labels 1/2/4) sampled on the grid `name`."""
    direction, spacing, size = GRIDS[name]
    origin = CENTRE - direction @ (np.asarray(spacing) * (np.asarray(size) - 1) / 2)
    points = physical_points(size, spacing, origin, direction)
    brain = brain_radius(points) < 1.0
    distance = np.linalg.norm(points - BLOB, axis=-1)
    label = np.zeros(brain.shape, np.uint8)
    label[distance < EDEMA_RADIUS] = 2
    label[distance < RADII[4]] = 4
    label[distance < RADII[1]] = 1
    label[~brain] = 0
    t1 = t1_truth(points)
    arrays = {
        "t1": t1,
        "t1ce": 500.0 + 400.0 * (label == 4) - 200.0 * (label == 1),
        "t2": 400.0 + 450.0 * (label > 0) + 0.5 * t1,
        "flair": 450.0 + 400.0 * (label == 2) + 0.2 * t1,
    }

    def image(array, pixel):
        result = sitk.GetImageFromArray(np.where(brain, array, 0).astype(pixel))
        result.SetSpacing(spacing)
        result.SetOrigin(origin.tolist())
        result.SetDirection(direction.ravel().tolist())
        return result

    images = {m: image(arrays[m], np.float32) for m in MODALITIES}
    return Case(name, images, "t1ce", image(label, np.uint8), CaseSource(name, {}, None), [])


def same_grid_exactly(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize(), a.GetSpacing(), a.GetOrigin(), a.GetDirection()) == (
        b.GetSize(), b.GetSpacing(), b.GetOrigin(), b.GetDirection())


def centroid_mm(image: sitk.Image, mask: np.ndarray) -> np.ndarray:
    index = np.argwhere(mask).mean(axis=0)[::-1]
    return np.array(image.TransformContinuousIndexToPhysicalPoint(index.tolist()))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("name", GRIDS)
def test_label_round_trip_is_exact_without_resampling(name):
    case = blob_case(name)
    channels, geometry = preprocess(case)
    assert channels.shape == (4, *geometry.network_shape) and channels.dtype == np.float32
    labels = preprocess_label(case, geometry)
    assert labels.dtype == np.uint8 and labels.shape == geometry.network_shape
    back = geometry.to_reference(labels, "nearest")
    assert same_grid_exactly(back, case.label)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(case.label))


@pytest.mark.parametrize("name", GRIDS)
def test_network_space_runs_like_lps_training_data(name):
    """Whatever the input's orientation, network axes point closest to +x (left), +y (posterior), +z (superior)."""
    _, geometry = preprocess(blob_case(name))
    matrix = np.array(geometry.network.direction).reshape(3, 3)
    assert np.all(np.diag(matrix) > 0.7)
    if name in ("lps", "flipped", "permuted", "anisotropic"):
        np.testing.assert_allclose(matrix, np.eye(3), atol=1e-12)


def test_orientation_of_the_stored_array_does_not_change_what_the_network_sees():
    reference_channels, reference_geometry = preprocess(blob_case("lps"))
    for name in ("flipped", "permuted"):
        channels, geometry = preprocess(blob_case(name))
        np.testing.assert_array_equal(channels, reference_channels)
        np.testing.assert_allclose(geometry.network.origin, reference_geometry.network.origin, atol=1e-9)


@pytest.mark.parametrize("spacing", [None, (1.5, 1.5, 1.5), (3.0, 1.0, 2.0)], ids=["native", "iso1.5", "aniso"])
@pytest.mark.parametrize("name", GRIDS)
def test_planted_tumour_comes_back_to_its_physical_place(name, spacing):
    case = blob_case(name)
    _, geometry = preprocess(case, spacing=spacing)
    if spacing is not None:
        assert np.allclose(geometry.network_spacing, spacing)
    labels = preprocess_label(case, geometry)
    network_image = geometry.network.image(labels)
    truth_mm = centroid_mm(case.label, sitk.GetArrayViewFromImage(case.label) == 4)
    assert np.linalg.norm(truth_mm - BLOB) < 0.5  # the sphere itself is centred on BLOB
    assert np.linalg.norm(centroid_mm(network_image, labels == 4) - truth_mm) < 0.75

    back = geometry.to_reference(labels, "nearest")
    assert same_grid_exactly(back, case.label)
    back_array, truth = sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(case.label)
    assert np.linalg.norm(centroid_mm(back, back_array == 4) - truth_mm) < 0.75
    for value in (1, 2, 4):
        assert dice(back_array == value, truth == value) > (0.999 if spacing is None else 0.75)


@pytest.mark.parametrize("spacing", [None, (1.5, 1.5, 1.5), (3.0, 1.0, 2.0)], ids=["native", "iso1.5", "aniso"])
@pytest.mark.parametrize("name", ["oblique", "oblique_flipped_anisotropic", "anisotropic"])
def test_network_voxels_hold_the_intensity_of_their_physical_position(name, spacing):
    case = blob_case(name)
    _, geometry = preprocess(case, spacing=spacing)
    raw_t1 = geometry.from_reference(case.images["t1"], "linear")
    grid = geometry.network
    points = physical_points(grid.size, grid.spacing, grid.origin, grid.direction)
    deep = brain_radius(points) < 0.85  # away from the brain's edge, where interpolation mixes in background
    np.testing.assert_allclose(raw_t1[deep], t1_truth(points[deep]), rtol=0, atol=0.05)

    back = geometry.to_reference(raw_t1, "linear")
    reference_points = physical_points(back.GetSize(), back.GetSpacing(), back.GetOrigin(), back.GetDirection())
    deep = brain_radius(reference_points) < 0.8
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(back)[deep], t1_truth(reference_points[deep]), atol=0.05)


def test_crop_is_the_brain_box_with_margin_and_outputs_are_zero_outside():
    case = blob_case("anisotropic")  # spacing z 3.2 mm, y 1.6 mm, x 1.25 mm
    _, geometry = preprocess(case, margin_mm=5.0)
    mask = brain_mask(case)
    for axis, (start, stop) in enumerate(geometry.crop):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        margin = int(np.ceil(5.0 / case.label.GetSpacing()[2 - axis]))
        assert start == max(0, present[0] - margin) and stop == min(mask.shape[axis], present[-1] + 1 + margin)
    ones = geometry.to_reference(np.ones(geometry.network_shape, np.float32))
    expected = np.zeros(mask.shape, np.float32)
    expected[tuple(slice(a, b) for a, b in geometry.crop)] = 1
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ones), expected)


def _two_tissue_case(scale: float = 1.0, outlier: float | None = None, pixel=np.float32) -> Case:
    """A brain whose every modality is 100 in one half and 300 in the other (times `scale`)."""
    array = np.zeros((20, 24, 22), np.float64)
    array[4:16, 4:20, 4:11] = 100.0 * scale
    array[4:16, 4:20, 11:18] = 300.0 * scale
    if outlier is not None:
        array[4, 4, 4] = outlier
    image = sitk.GetImageFromArray(array.astype(pixel))
    image.SetSpacing((1.0, 1.0, 2.0))
    images = {m: sitk.Cast(image, sitk.sitkFloat32) for m in MODALITIES}
    return Case("two", images, "t1ce", None, CaseSource("two", {}, None), [])


def test_zscore_has_the_known_answer_and_is_zero_outside_the_brain():
    channels, geometry = preprocess(_two_tissue_case(), margin_mm=4.0)
    inside = channels != 0
    assert inside.sum() == 4 * 12 * 16 * 14
    np.testing.assert_allclose(np.unique(channels[inside]), [-1.0, 1.0], atol=1e-6)


def test_minmax_maps_the_brain_to_zero_one():
    channels, _ = preprocess(_two_tissue_case(), normalisation="minmax")
    assert set(np.unique(channels).tolist()) == {0.0, 1.0}
    assert (channels == 1.0).sum() == 4 * 12 * 16 * 7


def test_minmax_crop_is_the_studys_formula_over_the_whole_crop():
    """(x − min) / (max − min) over every voxel of the crop: the background 0 is the minimum, so the tissues of
    100 and 300 become 1/3 and 1; one voxel at 32,767 sets the scale for the rest; and when the brain is darker
    than the background, the background is not 0 but takes its place on the scale."""
    brain = 4 * 12 * 16 * 7  # voxels of each tissue in the four channels
    channels, _ = preprocess(_two_tissue_case(), normalisation="minmax-crop")
    values, counts = np.unique(channels, return_counts=True)
    np.testing.assert_allclose(values, [0.0, 1 / 3, 1.0], rtol=1e-6)
    assert counts[1:].tolist() == [brain, brain] and counts[0] > 0
    loud, _ = preprocess(_two_tissue_case(scale=100.0, outlier=32767, pixel=np.int16), normalisation="minmax-crop")
    values, counts = np.unique(loud, return_counts=True)
    np.testing.assert_allclose(values, [0.0, 10000 / 32767, 30000 / 32767, 1.0], rtol=1e-6)
    assert counts[-1] == 4  # the one saturated voxel of each modality
    dark, _ = preprocess(_two_tissue_case(scale=-0.5), normalisation="minmax-crop")  # tissues −50 and −150
    np.testing.assert_allclose(np.unique(dark), [0.0, 2 / 3, 1.0], rtol=1e-6)
    assert np.count_nonzero(dark == 1.0) == np.count_nonzero(channels == 0.0)  # the background


def test_saturated_int16_input_normalises_like_its_rescaled_self():
    """The TCIA10 cases reach 32,767 (int16 maximum): normalised in float32, clipped, never overflowing."""
    plain, _ = preprocess(_two_tissue_case())
    loud, _ = preprocess(_two_tissue_case(scale=100.0, outlier=32767, pixel=np.int16))
    assert np.isfinite(loud).all() and loud.max() <= ZSCORE_CLIP
    outlier = np.zeros(plain.shape, bool)
    outlier[:, 0, 0, 0] = True  # the crop starts at the brain's first voxel minus margin
    crop_start = np.argwhere(plain[0] != 0).min(axis=0)
    outlier[:, crop_start[0], crop_start[1], crop_start[2]] = True
    assert np.allclose(loud[:, ~outlier[0]], plain[:, ~outlier[0]], atol=0.1)
    minmax_plain, _ = preprocess(_two_tissue_case(), normalisation="minmax")
    minmax_loud, _ = preprocess(_two_tissue_case(scale=100.0, outlier=32767, pixel=np.int16), normalisation="minmax")
    np.testing.assert_allclose(minmax_loud[:, ~outlier[0]], minmax_plain[:, ~outlier[0]], atol=1e-6)


def test_bad_options_are_input_errors():
    case = blob_case("lps")
    with pytest.raises(InputError, match="normalisation"):
        preprocess(case, normalisation="histogram")
    with pytest.raises(InputError, match="spacing"):
        preprocess(case, spacing=(1.0, -1.0, 1.0))
    with pytest.raises(InputError, match="no label map"):
        preprocess_label(_two_tissue_case(), preprocess(_two_tissue_case())[1])


def test_right_anterior_superior_nifti_files_round_trip_exactly(tmp_path):
    """Files written by nibabel with a RAS affine load into LPS space and outputs land back on their grid."""
    case = blob_case("lps")
    folder = tmp_path / "ras"
    folder.mkdir()
    spacing = np.array(case.label.GetSpacing())
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    for modality, image in [*case.images.items(), ("seg", case.label)]:
        # nibabel's (i, j, k) with +i towards the patient's right and +j anterior: the LPS x and y axes reversed
        array = sitk.GetArrayFromImage(image)[:, ::-1, ::-1].transpose(2, 1, 0)
        affine = np.eye(4)
        affine[:3, :3] = np.diag(spacing)
        far_corner = image.TransformIndexToPhysicalPoint([s - 1 for s in image.GetSize()[:2]] + [0])
        affine[:3, 3] = lps_to_ras @ np.array(far_corner)
        nib.save(nib.Nifti1Image(array.astype(np.float32 if modality != "seg" else np.uint8), affine),
                 folder / f"ras_{modality}.nii.gz")
    loaded = load_case(folder)
    assert np.allclose(np.array(loaded.label.GetDirection()).reshape(3, 3), np.diag([-1.0, -1.0, 1.0]))
    channels, geometry = preprocess(loaded)
    expected, _ = preprocess(case)
    np.testing.assert_allclose(channels, expected, atol=1e-5)  # same head, same network input
    back = geometry.to_reference(preprocess_label(loaded, geometry), "nearest")
    assert same_grid_exactly(back, loaded.label)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(loaded.label))
    assert np.linalg.norm(centroid_mm(back, sitk.GetArrayViewFromImage(back) == 4) - BLOB) < 0.5


def test_real_case_preprocesses_and_inverts_exactly():
    folder = DATA / "brats/labelled/Brats18_TCIA10_639_1"
    if not folder.exists():
        pytest.skip(f"real BraTS data not found under {DATA}")
    case = load_case(folder)
    channels, geometry = preprocess(case)
    assert channels.shape[0] == 4 and np.isfinite(channels).all() and np.abs(channels).max() <= ZSCORE_CLIP
    assert all(s < full for s, full in zip(geometry.network_shape, (155, 240, 240)))
    back = geometry.to_reference(preprocess_label(case, geometry), "nearest")
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(case.label))


@pytest.mark.parametrize("direction", [(1, 0, 0, 0, 1, 0, 0, 0, 1), (-1, 0, 0, 0, -1, 0, 0, 0, 1),
                                       (0, 1, 0, 1, 0, 0, 0, 0, -1)])
@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (0.7, 1.3, 2.5)])
def test_separable_linear_resampling_equals_simpleitks_rim_included(direction, spacing):
    """Both ways between a 1 mm grid of odd size and a coarser or finer one covering the same extent (so the
    outermost target voxels lie beyond the source's outermost centres, where ITK extrapolates)."""
    from BraTSXAILib.preprocess import Grid, _network_grid, resample_linear

    fine = Grid((23, 30, 17), (1.0, 1.0, 1.0), (4.5, -7.0, 12.25), tuple(float(d) for d in direction))
    other = _network_grid(fine, spacing[::-1])
    rng = np.random.default_rng(3)
    for source, target in ((other, fine), (fine, other)):
        volume = rng.random(source.shape).astype(np.float32)
        expected = sitk.GetArrayFromImage(target.resample(source.image(volume), "linear"))
        got = resample_linear(volume, source, target)
        assert got.shape == target.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("name", ["oblique_flipped_anisotropic", "lps"])
def test_a_conversion_on_the_crop_equals_converting_the_whole_mapped_volume(name, tmp_path):
    from BraTSXAILib.outputs import unit_steps
    from BraTSXAILib.writer import OutputWriter

    _, geometry = preprocess(blob_case(name), spacing=(2.0, 2.0, 2.0))
    values = np.random.default_rng(1).random(geometry.network_shape).astype(np.float32)
    values[values < 0.3] = 0
    whole = unit_steps(geometry.to_reference_array(values, "linear"))
    on_crop = geometry.to_reference_array(values, "linear", convert=unit_steps)
    assert on_crop.dtype == np.uint8 and whole.any()
    np.testing.assert_array_equal(on_crop, whole)
    writer = OutputWriter(tmp_path)  # the background path writes the same file as the foreground one
    writer.network_map("background.nii.gz", values, geometry, {"kind": "gradcam"})
    writer.unit_map("foreground.nii.gz", geometry.to_reference_array(values, "linear"), geometry.reference,
                    {"kind": "gradcam"})
    writer.flush()
    read = [sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"{which}ground.nii.gz")))
            for which in ("back", "fore")]
    np.testing.assert_array_equal(*read)
    assert read[0].shape == geometry.reference.shape and [e["range"] for e in writer.entries] == [[0, 1], [0, 1]]
