"""Patch geometry, tumour-biased sampling, augmentation and the preprocessed-case cache."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from BraTSXAILib.io import discover_cases, load_case
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.preprocess import preprocess, preprocess_label
from training.augment import random_flip, random_intensity
from training import cache
from training.cache import CachedCase, build_cache, cache_folder
from training.config import TrainConfig
from training.data import PatchDataset, VolumeDataset, crop, patch_start

SHAPE = (40, 48, 44)


def test_crop_inside_is_the_slice_and_outside_is_zero_padding():
    volume = np.arange(2 * 10 * 12 * 14, dtype=np.float32).reshape(2, 10, 12, 14) + 1
    np.testing.assert_array_equal(crop(volume, (2, 3, 4), (4, 5, 6)), volume[:, 2:6, 3:8, 4:10])
    padded = crop(volume, (-2, -1, 10), (14, 4, 6))
    assert padded.shape == (2, 14, 4, 6)
    np.testing.assert_array_equal(padded[:, 2:12, 1:4, 0:4], volume[:, :, 0:3, 10:14])
    assert np.count_nonzero(padded) == 2 * 10 * 3 * 4


def test_patch_start_keeps_the_centre_inside_and_centres_a_small_volume():
    for centre in [(0, 0, 0), (39, 47, 43), (20, 5, 40)]:
        start = patch_start(SHAPE, (16, 16, 16), centre)
        assert all(0 <= s <= c < s + 16 and s + 16 <= n for s, c, n in zip(start, centre, SHAPE))
    assert patch_start((10, 48, 44), (16, 16, 16), (5, 20, 20))[0] == -3


def write_cached_case(folder, case_id="planted"):
    """A volume whose image channel 1 marks a small ET blob (label 4) and a larger edema blob (label 2)."""
    label = np.zeros(SHAPE, np.uint8)
    label[5:8, 5:8, 5:8] = 4
    label[28:36, 36:44, 30:38] = 2
    image = np.random.default_rng(0).normal(size=(4, *SHAPE)).astype(np.float32)
    image[1] = label
    folder.mkdir(parents=True, exist_ok=True)
    case = CachedCase(case_id, folder)
    np.save(case.image_path, image)
    np.save(case.label_path, label)
    return case


def patches(case, epoch=1, **settings):
    dataset = PatchDataset([case], TrainConfig(patch_size=(16, 16, 16), patches_per_case=40, **settings))
    dataset.set_epoch(epoch)
    return [dataset[i] for i in range(len(dataset))]


def test_tumour_sampling_always_hits_tumour_and_balances_the_classes(tmp_path):
    case = write_cached_case(tmp_path)
    drawn = patches(case, sampling="tumour", tumour_probability=1.0)
    assert all(regions[0].any() for _, regions in drawn)
    with_et = sum(bool(regions[2].any()) for _, regions in drawn)
    assert 10 <= with_et <= 30  # ET is 27 voxels against 512 of edema, yet drawn about half of the time
    uniform = patches(case, sampling="uniform")
    assert sum(bool(regions[0].any()) for _, regions in uniform) < len(uniform)


def test_samples_depend_only_on_seed_epoch_and_index(tmp_path):
    case = write_cached_case(tmp_path)
    settings = dict(sampling="tumour", flip=True, intensity=True)
    first, again, later = patches(case, **settings), patches(case, **settings), patches(case, epoch=2, **settings)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, later))


def test_flips_move_image_and_regions_together_and_intensity_spares_the_background(tmp_path):
    case = write_cached_case(tmp_path)
    for image, regions in patches(case, sampling="uniform", flip=True):
        np.testing.assert_array_equal(image[1].numpy() > 0, regions[0].numpy() > 0)
    rng = np.random.default_rng(1)
    image = np.zeros((4, 8, 8, 8), np.float32)
    image[:, 2:6, 2:6, 2:6] = 1.0
    changed = random_intensity(image, rng)
    assert np.all(changed[:, 0] == 0) and np.all(np.abs(changed[:, 3, 3, 3] - 1) <= 0.2 + 1e-6)
    flipped, flipped_regions = random_flip(image, image[:3] > 0, np.random.default_rng(2))
    np.testing.assert_array_equal(flipped[:3] > 0, flipped_regions)


def test_validation_volumes_are_the_whole_cached_case(tmp_path):
    case = write_cached_case(tmp_path)
    image, regions = VolumeDataset([case])[0]
    assert image.shape == (4, *SHAPE) and regions.shape == (3, *SHAPE)
    assert int(regions[2].sum()) == 27 and int(regions[0].sum()) == 27 + 512


def test_cache_preprocesses_once_and_again_when_a_source_changes(tmp_path):
    folder = write_phantom(tmp_path / "data", "Cached", shape=(40, 40, 40), spacing=(1.5, 1.5, 1.5))
    (source,) = discover_cases(folder)
    target = cache_folder(tmp_path / "cache", (3.0, 3.0, 3.0), "zscore")
    assert target.name == "3x3x3mm-zscore"
    cached = build_cache([source], target, (3.0, 3.0, 3.0), "zscore")[0]["Cached"]
    case = load_case(source)
    image, geometry = preprocess(case, (3.0, 3.0, 3.0), "zscore")
    np.testing.assert_array_equal(cached.image(), image)
    np.testing.assert_array_equal(cached.label(), preprocess_label(case, geometry))

    written = cached.image_path.stat().st_mtime_ns
    build_cache([source], target, (3.0, 3.0, 3.0), "zscore")
    assert cached.image_path.stat().st_mtime_ns == written
    os.utime(source.paths["t2"], ns=(written + 10**9, written + 10**9))
    build_cache([source], target, (3.0, 3.0, 3.0), "zscore")
    assert cached.image_path.stat().st_mtime_ns != written


def test_cache_is_rebuilt_when_the_preprocessing_changes(tmp_path, monkeypatch):
    folder = write_phantom(tmp_path / "data", "Cached", shape=(40, 40, 40), spacing=(1.5, 1.5, 1.5))
    (source,) = discover_cases(folder)
    target = cache_folder(tmp_path / "cache", (3.0, 3.0, 3.0), "zscore")
    cached = build_cache([source], target, (3.0, 3.0, 3.0), "zscore")[0]["Cached"]
    written = cached.image_path.stat().st_mtime_ns
    monkeypatch.setattr(cache, "PREPROCESSING_VERSION", cache.PREPROCESSING_VERSION + 1)
    build_cache([source], target, (3.0, 3.0, 3.0), "zscore")
    assert cached.image_path.stat().st_mtime_ns != written


def test_an_unreadable_case_is_returned_with_its_error_and_the_others_cached(tmp_path):
    write_phantom(tmp_path / "data", "Good", shape=(40, 40, 40), spacing=(1.5, 1.5, 1.5))
    bad = write_phantom(tmp_path / "data", "Bad", shape=(40, 40, 40), spacing=(1.5, 1.5, 1.5))
    flair = next(bad.glob("*_flair.nii.gz"))
    flair.write_bytes(flair.read_bytes()[:300])
    sources = discover_cases(tmp_path / "data")
    cached, broken = build_cache(sources, tmp_path / "cache", (3.0, 3.0, 3.0), "zscore")
    assert list(cached) == ["Good"] and list(broken) == ["Bad"]
    assert "Bad_flair" in broken["Bad"].one_line() and not list((tmp_path / "cache").glob("Bad*"))


@pytest.mark.parametrize("spacing, name", [(None, "native-minmax"), ((2.0, 2.0, 2.5), "2x2x2.5mm-minmax")])
def test_cache_folder_names_say_spacing_and_normalisation(tmp_path, spacing, name):
    assert cache_folder(tmp_path, spacing, "minmax").name == name


def write_brats_grid_case(folder, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)):
    """A case on the 240×240×155 BraTS grid: a brain box taller than the study's crop in z and y and narrower in x,
    random labels inside it (so any misplaced voxel shows)."""
    import SimpleITK as sitk

    rng = np.random.default_rng(4)
    seg = np.zeros((155, 240, 240), np.uint8)
    seg[10:150, 30:230, 60:190] = rng.choice(np.array([0, 1, 2, 4], np.uint8), size=(140, 200, 130))
    folder.mkdir(parents=True)
    for name in ("t1", "t1ce", "t2", "flair", "seg"):
        array = seg
        if name != "seg":
            array = np.zeros(seg.shape, np.int16)
            array[10:150, 30:230, 60:190] = rng.integers(50, 1000, size=(140, 200, 130))
        image = sitk.GetImageFromArray(array)
        image.SetDirection(direction)
        sitk.WriteImage(image, str(folder / f"{folder.name}_{name}.nii.gz"))
    return seg


@pytest.mark.parametrize("direction, flipped", [((1, 0, 0, 0, 1, 0, 0, 0, 1), ()),
                                                ((-1, 0, 0, 0, -1, 0, 0, 0, 1), (1, 2))])
def test_study_crop_is_the_fixed_box_of_the_original_grid(tmp_path, direction, flipped):
    """Known answer: the notebook's data[40:210, 40:210, 20:120] of the NIfTI file, wherever the brain box lies
    and however the array was reoriented (flips of a RAS-stored file)."""
    from BraTSXAILib.labels import labels_to_regions

    seg = write_brats_grid_case(tmp_path / "data" / "Grid", direction)
    (source,) = discover_cases(tmp_path / "data")
    cached = build_cache([source], tmp_path / "cache", None, "minmax")[0]["Grid"]
    config = TrainConfig(sampling="study", patch_size=(100, 170, 170))
    expected = labels_to_regions(np.flip(seg[20:120, 40:210, 40:210], flipped))
    _, regions = PatchDataset([cached], config)[0]
    np.testing.assert_array_equal(regions.numpy(), expected)
    _, volume = VolumeDataset([cached], config)[0]
    np.testing.assert_array_equal(volume.numpy(), expected)


def test_study_crop_with_minmax_crop_is_the_studys_normalisation_of_that_crop(tmp_path):
    """Known answer: (x − min) / (max − min) over the notebook's crop of the original T1, although the cache
    normalised over the brain box and that box's brightest voxel (5000) lies outside the crop."""
    import SimpleITK as sitk

    write_brats_grid_case(tmp_path / "data" / "Grid")
    t1_path = tmp_path / "data" / "Grid" / "Grid_t1.nii.gz"
    t1 = sitk.GetArrayFromImage(sitk.ReadImage(str(t1_path)))
    t1[12, 100, 100] = 5000  # z 12 < 20: inside the brain box, outside the study's crop
    sitk.WriteImage(sitk.GetImageFromArray(t1), str(t1_path))
    (source,) = discover_cases(tmp_path / "data")
    cached = build_cache([source], tmp_path / "cache", None, "minmax-crop")[0]["Grid"]
    assert np.asarray(cached.image())[0].max() == 1.0  # the cache's scale is the 5000
    config = TrainConfig(sampling="study", patch_size=(100, 170, 170), normalisation="minmax-crop")
    raw = t1[20:120, 40:210, 40:210].astype(np.float64)
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    image, _ = PatchDataset([cached], config)[0]
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-6)
    volume, _ = VolumeDataset([cached], config)[0]
    np.testing.assert_allclose(volume[0].numpy(), expected, atol=1e-6)


def test_study_sampling_needs_native_spacing_and_the_study_crop_size():
    from BraTSXAILib.errors import InputError

    with pytest.raises(InputError, match="sampling"):
        TrainConfig(sampling="study", patch_size=(128, 128, 128)).check()
    with pytest.raises(InputError, match="sampling"):
        TrainConfig(sampling="study", patch_size=(100, 170, 170), spacing=(2.0, 2.0, 2.0)).check()


SHARED = Path(os.environ.get("BRATSXAI_DATA") or Path(__file__).resolve().parents[2].parent / "shared/data") / \
    "brats" / "labelled"


@pytest.mark.skipif(not SHARED.is_dir(), reason="real BraTS cases not available")
def test_the_study_crop_cuts_tumour_in_real_cases():
    """docs/fidelity.md: the crop leaves 4.6 % of all whole-tumour voxels of the 29 BraTS 2018 cases outside, 54 %
    in the worst case; hence validation and evaluation run on the whole brain box."""
    import SimpleITK as sitk

    outside, total, worst = 0, 0, 0.0
    for seg_path in sorted(SHARED.glob("*/*_seg.nii.gz")):
        tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(seg_path))) > 0
        lost = int(tumour.sum() - tumour[20:120, 40:210, 40:210].sum())
        outside, total, worst = outside + lost, total + int(tumour.sum()), max(worst, lost / tumour.sum())
    assert outside / total == pytest.approx(0.0462, abs=0.0005) and worst == pytest.approx(0.536, abs=0.001)


@pytest.mark.skipif(not SHARED.is_dir(), reason="real BraTS cases not available")
def test_the_studys_min_max_rests_on_one_voxel_in_real_cases():
    """docs/fidelity.md deviation 2: in the 116 volumes of the 29 cases the minimum is the background 0, inside the
    study's crop too; the crop's maximum differs from the volume's in 14; the brain's 99.5th percentile lies at
    0.37 to 1.0 of the maximum (median 0.65), so the contrast a network sees depends on the brightest voxel."""
    import SimpleITK as sitk

    lows, differ, shares = set(), 0, []
    for path in sorted(SHARED.glob("*/*_*.nii.gz")):
        if path.name.endswith("_seg.nii.gz"):
            continue
        image = sitk.ReadImage(str(path))  # kept alive: the view below borrows its buffer
        volume = sitk.GetArrayViewFromImage(image)
        cut = volume[20:120, 40:210, 40:210]
        lows |= {float(volume.min()), float(cut.min())}
        differ += int(cut.max() != volume.max())
        shares.append(np.percentile(volume[volume != 0], 99.5) / volume.max())
    assert (len(shares), lows, differ) == (116, {0.0}, 14)
    assert (min(shares), np.median(shares)) == (pytest.approx(0.374, abs=0.001), pytest.approx(0.647, abs=0.001))


def test_spatial_augmentation_keeps_image_and_regions_aligned():
    from training.augment import random_spatial, rotation_matrix

    quarter = rotation_matrix(np.deg2rad([90.0, 0.0, 0.0]))  # about the z axis: y -> x
    np.testing.assert_allclose(quarter @ np.array([0.0, 1.0, 0.0]), [0.0, 0.0, 1.0], atol=1e-12)
    regions = np.zeros((3, 24, 24, 24), dtype=bool)
    regions[:, 8:16, 6:18, 10:14] = True
    image = np.repeat(regions[:1].astype(np.float32), 4, axis=0)
    same_image, same_regions = random_spatial(image, regions, np.random.default_rng(0), 0.0, 0.0)
    np.testing.assert_allclose(same_image, image, atol=1e-6)
    assert (same_regions == regions).all()
    moved_image, moved_regions = random_spatial(image, regions, np.random.default_rng(1), 30.0, 0.2)
    assert moved_regions.dtype == bool and not (moved_regions == regions).all()
    inside = moved_regions[0]
    assert moved_image[0][inside].mean() > 0.9 and moved_image[0][~inside].mean() < 0.02
    assert 0.5 < inside.sum() / regions[0].sum() < 2.0  # a scale of 1 ± 0.2 keeps the volume within (0.8³, 1.2³)
