"""segment_case and batches: outputs on the input grid, labels from the written probabilities, metrics from a
known answer (an oracle predictor that returns the case's own truth), reruns, and nothing left after a failure."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from tiny_models import tiny_registry

from BraTSXAILib import pipeline, writer
from BraTSXAILib.batch import find_cases, segment_cases
from BraTSXAILib.errors import InputError
from BraTSXAILib.io import load_case
from BraTSXAILib.labels import labels_to_regions
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.pipeline import MANIFEST, SegmentOptions, is_finished, load_models, segment_case
from BraTSXAILib.preprocess import preprocess, preprocess_label

SHAPE = (28, 32, 28)
DATA = Path(os.environ.get("BRATSXAI_DATA") or Path(__file__).resolve().parents[2].parent / "shared/data")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return tiny_registry(tmp_path_factory.mktemp("models"), spacing=None)


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory):
    return write_phantom(tmp_path_factory.mktemp("cases"), "Phantom", shape=SHAPE, seed=3)


def _grid(image):
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def _oracle(monkeypatch, case_folder, spacing=None):
    """Replace the network by the case's own truth in network space: the answer every later step must keep."""
    case = load_case(case_folder)
    _, geometry = preprocess(case, spacing)
    truth = labels_to_regions(preprocess_label(case, geometry)).astype(np.float32)
    monkeypatch.setattr(pipeline, "predict", lambda model, array, *args, **kwargs: truth)


def test_outputs_lie_on_the_reference_grid_and_match_the_probabilities(registry, case_folder, tmp_path):
    models = load_models("all", "cpu", registry)
    manifest = segment_case(case_folder, tmp_path, models, SegmentOptions(threshold=0.5))
    reference = sitk.ReadImage(str(next(case_folder.glob("*_t1ce.nii.gz"))))
    kinds = {}
    for entry in manifest["outputs"]:
        image = sitk.ReadImage(str(tmp_path / entry["path"]))
        assert _grid(image) == _grid(reference), entry["path"]
        kinds.setdefault((entry["model"], entry["kind"]), []).append(image)
    for architecture in ("unet", "resunet", "attunet"):
        (labels,) = kinds[(architecture, "labels")]
        assert labels.GetPixelID() == sitk.sitkUInt8
        probabilities = np.stack([sitk.GetArrayFromImage(i) for i in kinds[(architecture, "probability")]])
        assert probabilities.dtype == np.float32 and probabilities.min() >= 0 and probabilities.max() <= 1
        regions = labels_to_regions(sitk.GetArrayFromImage(labels))
        expected_wt = probabilities[0] >= 0.5
        np.testing.assert_array_equal(regions[0], expected_wt)
        assert not (regions[2] & ~regions[1]).any() and not (regions[1] & ~regions[0]).any()
    assert set(manifest["models"]) == {"unet", "resunet", "attunet"}
    assert manifest["reference"]["size"] == list(reference.GetSize())
    assert json.loads((tmp_path / MANIFEST).read_text()) == manifest


@pytest.mark.parametrize("spacing", [None, (2.0, 2.0, 2.0)])
def test_known_answer_survives_the_round_trip(registry, case_folder, tmp_path, monkeypatch, spacing):
    _oracle(monkeypatch, case_folder, spacing)
    models = load_models("unet", "cpu", registry)
    models[0].info.spacing = spacing
    manifest = segment_case(case_folder, tmp_path, models, SegmentOptions(et_label=3))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(next(case_folder.glob("*_seg.nii.gz")))))
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "unet_labels.nii.gz")))
    assert set(np.unique(written)) <= {0, 1, 2, 3}
    scores = manifest["metrics"]["unet"]
    if spacing is None:  # crop and reorientation only: exact
        np.testing.assert_array_equal(written, np.where(truth == 4, 3, truth))
        assert scores["dice_WT"] == scores["dice_TC"] == scores["dice_ET"] == 1.0
        assert scores["hd95_WT"] == 0.0
    else:  # nearest to 2 mm, linear back: the whole tumour keeps its place (its 1-2 voxel core does not)
        assert scores["dice_WT"] > 0.9
        assert scores["hd95_WT"] <= 2.0
    assert set(manifest["timings"]) >= {"load", "preprocess", "inference unet", "write unet", "metrics unet"}


def test_every_region_survives_a_2mm_round_trip_of_an_adult_sized_tumour(registry, tmp_path, monkeypatch):
    """At BraTS-like sizes (core and enhancing rim several voxels thick) 2 mm and back keeps all three regions."""
    folder = write_phantom(tmp_path / "cases", "Large", shape=(64, 72, 64), seed=1)
    _oracle(monkeypatch, folder, (2.0, 2.0, 2.0))
    models = load_models("unet", "cpu", registry)
    models[0].info.spacing = (2.0, 2.0, 2.0)
    scores = segment_case(folder, tmp_path / "out", models, SegmentOptions())["metrics"]["unet"]
    assert scores["dice_WT"] > 0.9 and scores["dice_TC"] > 0.85 and scores["dice_ET"] > 0.75, scores
    assert max(scores["hd95_WT"], scores["hd95_TC"], scores["hd95_ET"]) <= 3.0


def test_rerun_is_skipped_only_when_complete_and_made_with_the_same_options(registry, case_folder, tmp_path):
    unet, options = load_models("unet", "cpu", registry), SegmentOptions()
    manifest = segment_case(case_folder, tmp_path, unet, options)
    assert manifest["options"]["threshold"] is None and manifest["options"]["models"] == [unet[0].info.id]
    assert is_finished(tmp_path, unet, options)
    assert not is_finished(tmp_path, load_models("attunet", "cpu", registry), options)
    for changed in (SegmentOptions(threshold=0.33), SegmentOptions(et_label=3), SegmentOptions(explain=("gradcam",)),
                    SegmentOptions(precision="float32")):
        assert not is_finished(tmp_path, unet, changed), changed
    (tmp_path / "unet_probability_ET.nii.gz").unlink()
    assert not is_finished(tmp_path, unet, options)


def test_failure_leaves_nothing_behind(registry, case_folder, tmp_path, monkeypatch):
    models = load_models("unet", "cpu", registry)
    segment_case(case_folder, tmp_path, models, SegmentOptions())  # an earlier complete result

    def broken(path, **figure):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "write_overview", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        segment_case(case_folder, tmp_path, models, SegmentOptions(overview=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_that_fails_in_the_background_is_one_input_error_and_nothing_is_left(registry, case_folder,
                                                                                    tmp_path, monkeypatch):
    """Volumes are written by background threads: a failure there still stops the case with one line naming the
    file, after the other files finished, and every file is taken back."""
    models = load_models("unet", "cpu", registry)
    real = writer.write_unit_steps

    def full_disk(steps, grid, path):
        if "probability_TC" in str(path):
            raise OSError(28, "No space left on device")
        return real(steps, grid, path)

    monkeypatch.setattr(writer, "write_unit_steps", full_disk)
    with pytest.raises(InputError, match="No space left") as error:
        segment_case(case_folder, tmp_path, models, SegmentOptions())
    assert Path(error.value.path).name == "unet_probability_TC.nii.gz"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_requested_explanation_without_output_is_a_warning(registry, case_folder, tmp_path):
    manifest = segment_case(case_folder, tmp_path, load_models("unet", "cpu", registry),
                            SegmentOptions(explain=("attention",)))
    assert any("attention explanations were requested" in warning for warning in manifest["warnings"])


def test_overview_png(registry, case_folder, tmp_path):
    manifest = segment_case(case_folder, tmp_path, load_models("resunet", "cpu", registry),
                            SegmentOptions(overview=True))
    assert {"path": "overview.png", "kind": "overview"} in manifest["outputs"]
    assert (tmp_path / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options_are_refused_before_anything_is_written(registry, case_folder, tmp_path):
    models = load_models("unet", "cpu", registry)
    for options in (SegmentOptions(threshold=1.0), SegmentOptions(et_label=5), SegmentOptions(explain=("lime",))):
        with pytest.raises(InputError):
            segment_case(case_folder, tmp_path / "out", models, options)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot be created"):
        segment_case(case_folder, blocker / "out", models)
    assert not (tmp_path / "out").exists()


def test_batch_reports_a_bad_case_and_goes_on(registry, tmp_path):
    for seed, name in enumerate(("A", "B", "C")):
        write_phantom(tmp_path / "cases", name, shape=SHAPE, seed=seed)
    next((tmp_path / "cases" / "B").glob("*_flair.nii.gz")).unlink()
    cases = find_cases([tmp_path / "cases"])
    assert [c.case_id for c in cases] == ["A", "B", "C"] and cases[1].error is not None
    models = load_models("unet", "cpu", registry)
    seen = []
    results = segment_cases(cases, tmp_path / "out", models, SegmentOptions(), progress=lambda f, s: seen.append(f))
    assert [r.status for r in results] == ["done", "failed", "done"]
    assert "lacks the flair image" in results[1].error.message
    assert (tmp_path / "out" / "A" / MANIFEST).is_file() and not (tmp_path / "out" / "B").exists()
    assert seen == sorted(seen) and seen[-1] == 1.0
    again = segment_cases(cases, tmp_path / "out", models, SegmentOptions())
    assert [r.status for r in again] == ["skipped", "failed", "skipped"]
    redo = segment_cases(cases[:1], tmp_path / "out" / "A", models, SegmentOptions(), redo=True)
    assert [r.status for r in redo] == ["done"]


def test_real_case_round_trip_on_the_input_grid(registry, tmp_path, monkeypatch):
    """A real BraTS case with the oracle predictor: the written labels must be its own truth, voxel for voxel."""
    labelled = DATA / "brats/labelled"
    if not labelled.is_dir():
        pytest.skip(f"no BraTS data at {labelled}")
    case = sorted(p for p in labelled.iterdir() if p.is_dir())[0]
    _oracle(monkeypatch, case)
    manifest = segment_case(case, tmp_path, load_models("unet", "cpu", registry), SegmentOptions())
    reference = sitk.ReadImage(str(next(case.glob("*_t1ce.nii.gz"))))
    for entry in manifest["outputs"]:
        assert _grid(sitk.ReadImage(str(tmp_path / entry["path"]))) == _grid(reference), entry["path"]
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(next(case.glob("*_seg.nii.gz")))))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "unet_labels.nii.gz"))), truth)
    assert manifest["metrics"]["unet"]["dice_ET"] == 1.0
