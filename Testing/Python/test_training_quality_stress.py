"""The expected-Dice stress study: each input failure does what it says, and the study reads what `segment` wrote."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from tiny_models import tiny_registry

from BraTSXAILib.io import MODALITIES, Case, load_case
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.pipeline import SegmentOptions, load_models
from training import quality_stress
from training.quality_stress import CONDITIONS, bias_field, measure, noise, summarise, thick_slices

SHAPE = (20, 12, 10)  # z, y, x


def _case(values: dict[str, np.ndarray]) -> Case:
    images = {}
    for sequence, voxels in values.items():
        image = sitk.GetImageFromArray(voxels.astype(np.float32))
        image.SetSpacing((1.0, 1.0, 1.0))
        images[sequence] = image
    return Case("stress", images)


def _arrays(case: Case) -> dict[str, np.ndarray]:
    return {sequence: sitk.GetArrayFromImage(image) for sequence, image in case.images.items()}


def _brain_case() -> Case:
    rng = np.random.default_rng(3)
    brain = np.zeros(SHAPE, dtype=bool)
    brain[2:18, 2:10, 2:8] = True
    return _case({m: np.where(brain, 100.0 + 10 * i + rng.normal(0, 5, SHAPE), 0) for i, m in enumerate(MODALITIES)})


def test_thick_slices_average_five_slices_and_keep_a_linear_ramp():
    z = np.arange(SHAPE[0], dtype=np.float64)[:, None, None] * np.ones(SHAPE)
    stripes = (np.arange(SHAPE[0]) % 5 == 0)[:, None, None] * np.ones(SHAPE) * 5.0  # one bright slice in five
    thick = _arrays(thick_slices(_case({"t1": z, "t2": stripes})))
    np.testing.assert_allclose(thick["t1"][2:18], z[2:18], atol=1e-5)  # a slab's mean is its centre's value
    np.testing.assert_allclose(thick["t2"], 1.0, atol=1e-5)  # the stripe is spread over its 5 mm slab
    assert thick["t1"].shape == SHAPE


def test_the_bias_field_ramps_from_six_to_fourteen_tenths_and_noise_stays_in_the_brain():
    ones = _arrays(bias_field(_case({"t1": np.ones(SHAPE)})))["t1"]
    np.testing.assert_allclose(ones[:, :, 0], 0.6, atol=1e-6)
    np.testing.assert_allclose(ones[:, :, -1], 1.4, atol=1e-6)
    case = _brain_case()
    clean, noisy = _arrays(case), _arrays(noise(case))
    for sequence in MODALITIES:
        brain = clean[sequence] != 0
        assert (noisy[sequence][~brain] == 0).all()
        added = (noisy[sequence] - clean[sequence])[brain]
        assert added.std() == pytest.approx(clean[sequence][brain].std(), rel=0.1)
    assert case.images["t1"] is not noise(case).images["t1"]  # the given case is left as it was


def test_a_sequence_given_in_place_of_another_is_exactly_that_sequence():
    case = _brain_case()
    swapped = _arrays(CONDITIONS["T1 as T1ce"][1](case))
    np.testing.assert_array_equal(swapped["t1ce"], _arrays(case)["t1"])
    np.testing.assert_array_equal(swapped["t2"], _arrays(case)["t2"])
    np.testing.assert_array_equal(_arrays(CONDITIONS["T2 as FLAIR"][1](case))["flair"], _arrays(case)["t2"])
    exchanged = _arrays(CONDITIONS["T2 and FLAIR swapped"][1](case))
    np.testing.assert_array_equal(exchanged["flair"], _arrays(case)["t2"])
    np.testing.assert_array_equal(exchanged["t2"], _arrays(case)["flair"])


def test_the_summary_counts_warnings_against_the_true_dice():
    rows = [{"condition": "clean", "true": [0.9, 0.8, 0.7], "expected": [0.85, 0.8, 0.6], "input_warnings": 0},
            {"condition": "T1 as T1ce", "true": [0.9, 0.3, 0.1], "expected": [0.8, 0.4, 0.2], "input_warnings": 1},
            {"condition": "noise", "true": [0.6, 0.4, 0.2], "expected": [0.7, 0.6, 0.55], "input_warnings": 0}]
    summary = summarise(rows)
    assert summary["pooled"]["ET"] == {"spearman": 1.0, "mae": pytest.approx(0.183, abs=1e-3),  # same order
                                       "bad": 2, "bad_warned": 1, "good_warned": 0, "good": 1}
    assert summary["pooled"]["TC"]["bad_warned"] == 1 and summary["pooled"]["TC"]["good_warned"] == 0
    assert summary["conditions"]["T1 as T1ce"]["warned"] == [0, 1, 1]
    assert summary["conditions"]["T1 as T1ce"]["input_warnings"] == 1
    assert "bias field" not in summary["conditions"]


def test_a_measurement_is_what_segment_writes_for_the_case_in_memory(tmp_path):
    case = load_case(write_phantom(tmp_path / "in", shape=(40, 44, 40), spacing=(2.0, 2.0, 2.0)))
    models = load_models("all", "cpu", tiny_registry(tmp_path / "models", ("unet", "attunet")))
    options = SegmentOptions(device="cpu", backend="torch", explain=("uncertainty",))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    clean, swapped = (measure(CONDITIONS[name][1](case), models, options, scratch) for name in ("clean", "T1 as T1ce"))
    assert not list(scratch.iterdir())  # each run's outputs went into a folder of its own, removed after
    assert len(swapped["true"]) == len(swapped["expected"]) == 3
    assert all(0.0 <= value <= 1.0 for value in swapped["true"] + swapped["expected"])
    assert swapped["input_warnings"] == clean["input_warnings"] + 1  # the plausibility check sees that T1ce is T1


def test_the_command_writes_its_table_for_the_validation_cases(tmp_path):
    data = tmp_path / "data"
    for index in range(3):
        write_phantom(data, f"Brats18_Phantom_{index}", seed=index, shape=(40, 44, 40), spacing=(2.0, 2.0, 2.0))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["Brats18_Phantom_2"],
                                 "validation": ["Brats18_Phantom_0", "Brats18_Phantom_1"], "test": []}))
    registry = tiny_registry(tmp_path / "models", ("unet",))
    code = quality_stress.main(["--data", str(data), "--split-file", str(split), "--out", str(tmp_path / "out"),
                                "--conditions", "clean", "bias field", "--device", "cpu", "--registry", str(registry)])
    assert code == 0
    written = json.loads((tmp_path / "out" / "quality_stress.json").read_text())
    assert written["pairs"] == 4 and written["cases"] == ["Brats18_Phantom_0", "Brats18_Phantom_1"]
    markdown = (tmp_path / "out" / "quality_stress.md").read_text()
    assert "| clean: the case as it is |" in markdown and "| ET |" in markdown
