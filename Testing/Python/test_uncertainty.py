"""Uncertainty, expected Dice and modality attribution: known answers, planted signals, the pipeline's outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from tiny_models import tiny_registry

from BraTSXAILib import pipeline
from BraTSXAILib.errors import InputError
from BraTSXAILib.io import MODALITIES
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
from BraTSXAILib.postprocess import LabelRule
from BraTSXAILib.uncertainty import FLIP_AXES, entropy_bits, expected_dice, flipped, soft_dice
from BraTSXAILib.xai.modality import modality_importance, no_evidence_warnings
from training.uncertainty_stats import auroc_of_histograms, calibration_fit, ece, error_histograms, filtered_dice

SHAPE = (28, 32, 28)


def test_entropy_soft_dice_and_flips_have_known_values():
    assert entropy_bits(np.array([0.5, 0.0, 1.0])) == pytest.approx([1.0, 0.0, 0.0], abs=1e-4)
    mask = np.array([True, True, False, False])
    assert soft_dice(np.array([1.0, 1.0, 0.0, 0.0]), mask) == 1.0
    assert soft_dice(np.array([0.5, 0.5, 0.0, 0.0]), mask) == pytest.approx(2 / 3)
    assert soft_dice(np.zeros(4), np.zeros(4, dtype=bool)) == 1.0
    array = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    for index in range(len(FLIP_AXES)):
        np.testing.assert_array_equal(flipped(flipped(array, index), index), array)
    np.testing.assert_array_equal(flipped(array, 0), array[..., ::-1])  # left-right first


def test_expected_dice_applies_the_calibration_and_clips():
    mean = np.zeros((3, 4), dtype=np.float32)
    mean[:, :2] = 0.5
    regions = np.zeros((3, 4), dtype=bool)
    regions[:, :2] = True
    raw = expected_dice(mean, regions)
    assert raw["WT"] == {"expected_dice": pytest.approx(2 / 3, abs=1e-4), "soft_dice": pytest.approx(2 / 3, abs=1e-4)}
    calibrated = expected_dice(mean, regions, {"WT": [0.1, 1.0], "TC": [0.9, 1.0]})
    assert calibrated["WT"]["expected_dice"] == pytest.approx(2 / 3 + 0.1, abs=1e-4)
    assert calibrated["TC"]["expected_dice"] == 1.0 and calibrated["ET"] == raw["ET"]


def test_auroc_ece_and_filtered_dice_have_known_answers():
    uncertainty = np.array([0.1, 0.2, 0.8, 0.9])
    assert auroc_of_histograms(error_histograms(uncertainty, np.array([0, 0, 1, 1], bool))) == 1.0
    assert auroc_of_histograms(error_histograms(uncertainty, np.array([1, 1, 0, 0], bool))) == 0.0
    assert auroc_of_histograms(error_histograms(np.full(4, 0.5), np.array([1, 0, 1, 0], bool))) == 0.5
    assert ece(np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(0.1)
    predicted, truth = np.array([1, 1, 1, 0], bool), np.array([1, 1, 0, 0], bool)
    assert filtered_dice(predicted, truth, np.zeros(4), 0.5) == (pytest.approx(0.8), 0.0)
    assert filtered_dice(predicted, truth, np.array([0, 1, 1, 0.0]), 0.5) == (1.0, 0.5)


def test_quality_calibration_recovers_a_known_line_and_keeps_identity_when_it_fits():
    soft = np.array([0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    fit = calibration_fit(soft, 0.1 + 0.8 * soft)
    assert fit["kind"] == "line" and fit["a"] == pytest.approx(0.1, abs=1e-3) and fit["b"] == pytest.approx(0.8)
    assert fit["loo_mae"] < 1e-6 < fit["identity_mae"]
    noisy = soft + np.array([0.02, -0.02, 0.02, -0.02, 0.02, -0.02])
    assert calibration_fit(soft, noisy)["kind"] == "identity"


def test_modality_attribution_names_the_only_sequence_that_carries_the_tumour():
    """A planted network that sees the tumour only in FLAIR: FLAIR carries all the evidence, for every region."""
    rng = np.random.default_rng(0)
    array = rng.normal(0, 0.1, (4, 12, 12, 12)).astype(np.float32)
    array[3, 3:9, 3:9, 3:9] += 3.0  # bright in FLAIR only

    def forward(x):
        logit = 4 * (x[3] - 1.0)
        return np.repeat(1 / (1 + np.exp(-logit))[None], 3, axis=0).astype(np.float32)

    shares = modality_importance(forward, array, forward(array), LabelRule(), (1, 1, 1))
    for region in ("WT", "TC", "ET"):
        assert shares[region] == {"t1": 0.0, "t1ce": 0.0, "t2": 0.0, "flair": 1.0}
    nothing = modality_importance(forward, array, np.zeros((3, 12, 12, 12), np.float32), LabelRule(), (1, 1, 1))
    assert all(sum(shares.values()) == 0.0 for shares in nothing.values())  # no predicted voxels: no evidence
    assert no_evidence_warnings(shares, "unet") == []
    said = no_evidence_warnings(nothing, "unet")
    assert len(said) == 3 and all("no sequence share" in line for line in said)


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory):
    return write_phantom(tmp_path_factory.mktemp("cases"), "Phantom", shape=SHAPE, seed=5)


def test_uncertainty_is_high_where_members_disagree_and_lies_on_the_input_grid(case_folder, tmp_path,
                                                                                 monkeypatch):
    """Two networks: both say tumour in the front half; only one says so in the back half."""
    models = load_models("all", "cpu", tiny_registry(tmp_path / "models", ("unet", "attunet")))

    def planted(model, array, *args, **kwargs):
        out = np.zeros((3, *array.shape[1:]), dtype=np.float32)
        half = array.shape[1] // 2
        out[:, :half] = 0.95
        out[:, half:] = 0.95 if model is models[0].network else 0.05
        return out

    monkeypatch.setattr(pipeline, "predict", planted)
    manifest = segment_case(case_folder, tmp_path / "out", models,
                            SegmentOptions(device="cpu", backend="torch", explain=("uncertainty", "modality"),
                                           flips=0))  # the planted predictor tells the networks apart
    entries = [e for e in manifest["outputs"] if e["kind"] == "uncertainty"]
    assert [(e["model"], e["class"]) for e in entries] == [("ensemble", r) for r in ("WT", "TC", "ET")]
    reference = sitk.ReadImage(str(next(case_folder.glob("*_t1ce.nii.gz"))))
    image = sitk.ReadImage(str(tmp_path / "out" / entries[0]["path"]))
    assert (image.GetSize(), image.GetOrigin(), image.GetSpacing()) == (
        reference.GetSize(), reference.GetOrigin(), reference.GetSpacing())
    probability = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "ensemble_probability_WT.nii.gz")))
    uncertainty = sitk.GetArrayFromImage(image)
    agree, disagree = probability > 0.9, (probability > 0.45) & (probability < 0.55)
    assert agree.any() and disagree.any()
    assert uncertainty[disagree].min() > 0.99 and uncertainty[agree].max() < 0.3
    assert set(manifest["quality"]) == {"WT", "TC", "ET"}
    assert manifest["options"]["flips"] == 0 and "modality_importance" in manifest
    for shares in manifest["modality_importance"]["unet"].values():
        assert set(shares) == set(MODALITIES)


def test_a_low_expected_dice_is_warned_about(case_folder, tmp_path, monkeypatch):
    """A thin slab just at the threshold inside a sea of p = 0.45: the belief spreads far beyond the region."""
    models = load_models("unet", "cpu", tiny_registry(tmp_path / "models", ("unet",)))

    def unsure(model, array, *args, **kwargs):
        out = np.full((3, *array.shape[1:]), 0.45, dtype=np.float32)
        out[:, :2] = 0.5
        return out

    monkeypatch.setattr(pipeline, "predict", unsure)
    manifest = segment_case(case_folder, tmp_path / "out", models,
                            SegmentOptions(device="cpu", explain=("uncertainty",), flips=1))
    assert manifest["primary"] == "unet" and manifest["quality"]["WT"]["expected_dice"] < 0.5
    assert any("check this region by hand" in w for w in manifest["warnings"])
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["quality"] == manifest["quality"]


def test_unknown_explanation_and_bad_flip_counts_are_refused_in_one_line():
    with pytest.raises(InputError) as refused:
        SegmentOptions(explain=("uncertainty", "saliency")).check()
    line = refused.value.one_line()
    assert "saliency" in line and "gradcam, attention, attention-softmax, uncertainty, modality" in line
    assert "\n" not in line
    with pytest.raises(InputError, match="99 flips"):
        SegmentOptions(flips=99).check()
