"""Label rules: per-region thresholds, nesting, BraTS post-processing in mm³, and one path for segment and
evaluation (the model card scores what users get, voxel for voxel)."""
import numpy as np
import pytest
import SimpleITK as sitk
from tiny_models import tiny_registry

from BraTSXAILib.errors import InputError
from BraTSXAILib.io import load_case
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
from BraTSXAILib.postprocess import LabelRule, labels_from_probabilities, small_components
from training.calibrate import calibrate, mean_dice, sample_of
from training.evaluate import case_rows, open_model


def column(*values):
    probabilities = np.zeros((3, 1, 1, len(values)), dtype=np.float32)
    for index, value in enumerate(values):
        probabilities[:, 0, 0, index] = value
    return probabilities


def test_labels_are_nested_and_thresholded_per_region():
    probabilities = column([0.9, 0.2, 0.1], [0.9, 0.8, 0.3], [0.9, 0.8, 0.7], [0.2, 0.8, 0.9], [0.6, 0.6, 0.6])
    assert labels_from_probabilities(probabilities, LabelRule(), (1, 1, 1)).ravel().tolist() == [2, 1, 4, 0, 4]
    assert labels_from_probabilities(probabilities, LabelRule(), (1, 1, 1), 3).ravel().tolist() == [2, 1, 3, 0, 3]
    strict_et = LabelRule({"WT": 0.5, "TC": 0.5, "ET": 0.65})
    assert labels_from_probabilities(probabilities, strict_et, (1, 1, 1)).ravel().tolist() == [2, 1, 4, 0, 1]
    one = LabelRule().with_threshold(0.65)
    assert labels_from_probabilities(probabilities, one, (1, 1, 1)).ravel().tolist() == [2, 1, 4, 0, 0]
    with pytest.raises(InputError, match="outside"):
        LabelRule().with_threshold(1.5)
    assert LabelRule.from_dict(strict_et.to_dict()) == strict_et and LabelRule.from_dict(None) == LabelRule()


def tumour_with_specks() -> np.ndarray:
    """A 6³ core of enhancing tumour, a 2³ enhancing speck inside edema, and a 1³ isolated edema speck."""
    probabilities = np.zeros((3, 20, 20, 30), dtype=np.float32)
    probabilities[0, 2:18, 2:18, 2:18] = 0.9  # whole tumour
    probabilities[1:, 5:11, 5:11, 5:11] = 0.9  # core, all enhancing
    probabilities[1:, 14:16, 14:16, 14:16] = 0.9  # a small enhancing speck
    probabilities[0, 10, 10, 25] = 0.9  # isolated
    return probabilities


def test_post_processing_demotes_small_enhancing_parts_and_drops_specks_by_volume_in_mm3():
    probabilities = tumour_with_specks()
    plain = labels_from_probabilities(probabilities, LabelRule(), (1, 1, 1))
    assert np.count_nonzero(plain == 4) == 216 + 8 and plain[10, 10, 25] == 2
    rule = LabelRule(min_et_mm3=20, min_wt_mm3=5)
    cleaned = labels_from_probabilities(probabilities, rule, (1, 1, 1))
    assert np.count_nonzero(cleaned == 4) == 216 and (cleaned[14:16, 14:16, 14:16] == 1).all()
    assert cleaned[10, 10, 25] == 0
    # the same rule on 2 mm voxels: the 8-voxel speck is 64 mm³ and stays, the isolated voxel is 8 mm³ and stays
    coarse = labels_from_probabilities(probabilities, rule, (2, 2, 2))
    assert (coarse[14:16, 14:16, 14:16] == 4).all() and coarse[10, 10, 25] == 2


def test_small_components_counts_diagonal_neighbours_as_one():
    mask = np.zeros((4, 4, 4), dtype=bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True
    assert not small_components(mask, 2).any() and small_components(mask, 3).sum() == 2


def test_calibration_finds_the_threshold_that_undoes_a_planted_over_segmentation():
    """Truth is the voxels with p ≥ 0.7: the calibrated rule must move every threshold there and gain Dice."""
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(3):
        probabilities = np.zeros((3, 24, 24, 24), dtype=np.float32)
        distance = np.linalg.norm(np.indices((24, 24, 24)) - 12.0, axis=0)
        for channel, radius in enumerate((10, 7, 4)):
            probabilities[channel] = np.clip(1.2 - 0.5 * distance / radius, 0, 1) + rng.normal(0, 0.01, distance.shape)
        truth_regions = probabilities >= 0.7
        truth = np.zeros(distance.shape, dtype=np.uint8)
        truth[truth_regions[0]], truth[truth_regions[1]], truth[truth_regions[2]] = 2, 1, 4
        samples.append(sample_of(np.clip(probabilities, 0, 1), truth, (1.0, 1.0, 1.0)))
    rule = calibrate(samples)
    assert all(abs(rule.thresholds[r] - 0.7) <= 0.05 for r in ("WT", "TC", "ET"))
    assert (mean_dice(samples, rule) > mean_dice(samples, LabelRule()) + 0.05).all()


def test_evaluation_scores_exactly_the_labels_segment_writes(tmp_path):
    """segment and training.evaluate on an anisotropic phantom: the same labels, hence the same scores."""
    registry = tiny_registry(tmp_path / "models", spacing=(2.0, 2.0, 2.0))
    write_phantom(tmp_path / "data", "Case", seed=4, shape=(36, 40, 44), spacing=(1.2, 1.0, 1.5))
    models = load_models("all", "cpu", registry)
    options = SegmentOptions(device="cpu", backend="torch")  # evaluation runs PyTorch
    manifest = segment_case(tmp_path / "data" / "Case", tmp_path / "out", models, options)
    candidates = [open_model(str(m.info.path), "cpu") for m in models]
    rows = case_rows(load_case(tmp_path / "data" / "Case"), candidates, "cpu", "auto", LabelRule())
    names = [m.info.architecture for m in models] + ["ensemble"]
    assert len(rows) == len(names) == 4
    for name, row in zip(names, rows):
        written = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / f"{name}_labels.nii.gz")))
        assert np.count_nonzero(written == 4) == row["volume_ET"], name
        for key, value in manifest["metrics"][name].items():
            assert row[key] == value, (name, key)
