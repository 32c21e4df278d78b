"""Explanations through the pipeline and the CLI: one Grad-CAM volume per class and network, the attention
volumes, CBAM channel weights, all on the reference grid and listed in the manifest; the faithfulness command."""
from __future__ import annotations

import csv
import json

import pytest
import SimpleITK as sitk
from tiny_models import tiny_registry

from BraTSXAILib.cli import main
from BraTSXAILib.errors import InputError
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
from BraTSXAILib.weights import CACHE_ENV, REGISTRY_ENV
from BraTSXAILib.choices import DEFAULT_LAYER

SHAPE = (26, 30, 26)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return tiny_registry(tmp_path_factory.mktemp("models"), ["unet", "attunet"], spacing=None)


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory):
    return write_phantom(tmp_path_factory.mktemp("cases"), "Phantom", shape=SHAPE, seed=5)


def _grid(image):
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def test_segment_writes_every_explanation_on_the_reference_grid(registry, case_folder, tmp_path):
    models = load_models("all", "cpu", registry)
    manifest = segment_case(case_folder, tmp_path, models,
                            SegmentOptions(explain=("gradcam", "attention"), overview=True, precision="float32"))
    outputs = manifest["outputs"]
    gradcams = [e for e in outputs if e["kind"] == "gradcam"]
    assert sorted((e["model"], e["class"]) for e in gradcams) == [
        (m, c) for m in ("attunet", "unet") for c in ("ET", "TC", "WT")]
    attention = [e for e in outputs if e["kind"] == "attention"]
    assert sorted((e["map"], e["level"]) for e in attention) == [
        (kind, level) for kind in ("cbam_spatial", "gate") for level in range(4)]
    assert {e["model"] for e in attention} == {"attunet"}
    reference = sitk.ReadImage(str(case_folder / "Phantom_t1ce.nii.gz"))
    for entry in gradcams + attention:
        image = sitk.ReadImage(str(tmp_path / entry["path"]))
        assert _grid(image) == _grid(reference)
        assert image.GetPixelID() == sitk.sitkFloat32
        values = sitk.GetArrayViewFromImage(image)
        assert 0.0 <= values.min() and values.max() <= 1.0
        assert entry["range"] == [0.0, 1.0] and entry["colormap"] == "Inferno"
    for entry in gradcams:
        assert entry["method"] == "gradcam" and entry["layer"] == DEFAULT_LAYER
        low, high = entry["raw_range"]
        peak = float(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / entry["path"]))).max())
        assert peak == pytest.approx(0.0 if entry["empty"] else 1.0, abs=1e-6)
        assert 0.0 <= low <= high
    weights_entry = next(e for e in outputs if e["kind"] == "channel_weights")
    weights = json.loads((tmp_path / weights_entry["path"]).read_text())["levels"]
    assert [len(weights[f"cbam{level}"]) for level in range(4)] == [8, 16, 32, 64]
    assert {"inference and explain attunet", "inference and explain unet"} <= set(manifest["timings"])
    assert not {"inference unet", "explain unet"} & set(manifest["timings"])  # one forward pass, not two
    assert {"path": "overview.png", "kind": "overview"} in outputs


@pytest.mark.parametrize("sliding_window", [None, True])
def test_segmenting_from_the_gradcam_pass_gives_the_same_segmentation(registry, case_folder, tmp_path,
                                                                       sliding_window):
    models = load_models("unet", "cpu", registry)
    options = {"sliding_window": sliding_window, "precision": "float32"}  # bf16 inference keeps its own pass too
    plain = segment_case(case_folder, tmp_path / "plain", models, SegmentOptions(**options))
    explained = segment_case(case_folder, tmp_path / "explained", models,
                             SegmentOptions(explain=("gradcam",), **options))
    shared = "inference and explain unet" in explained["timings"]
    assert shared == (sliding_window is None)  # a sliding-window segmentation keeps its own pass
    for entry in plain["outputs"]:
        first = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "plain" / entry["path"])))
        second = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "explained" / entry["path"])))
        if entry["kind"] == "labels":
            assert (first == second).all()
        else:
            assert abs(first - second).max() <= 1 / 255 + 1e-6, entry["path"]  # at most one stored step


def test_cli_segment_explain_and_faithfulness(registry, case_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    out = tmp_path / "segmented"
    assert main(["segment", str(case_folder), "--out", str(out), "--model", "unet", "--explain", "gradcam",
                 "--json-progress"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(line.get("stage", "").startswith("Grad-CAM") for line in lines)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(e["kind"] == "gradcam" for e in manifest["outputs"]) == 3

    table = tmp_path / "faithfulness.csv"
    assert main(["faithfulness", str(case_folder), "--out", str(table), "--model", "unet", "--classes", "WT",
                 "--steps", "10", "--no-randomisation"]) == 0
    rows = list(csv.DictReader(table.open()))
    assert [(r["model"], r["class"], r["layer"]) for r in rows] == [("unet", "WT", DEFAULT_LAYER)]
    assert int(rows[0]["voxels_truth"]) > 0
    for column in ("deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random"):
        assert 0.0 <= float(rows[0][column]) <= 1.0
    assert rows[0]["rank_correlation_head"] == ""  # left out on request, not a made-up number


def test_faithfulness_refuses_too_few_steps(registry, case_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    assert main(["faithfulness", str(case_folder), "--out", str(tmp_path / "f.csv"), "--steps", "3"]) == 2
    assert "steps" in capsys.readouterr().err
    assert not (tmp_path / "f.csv").exists()


def test_softmax_attention_view_is_an_option(registry, case_folder, tmp_path):
    models = load_models("attunet", "cpu", registry)
    manifest = segment_case(case_folder, tmp_path, models, SegmentOptions(explain=("attention-softmax",)))
    views = [e for e in manifest["outputs"] if e["kind"] == "attention"]
    assert len(views) == 8 and all(e["view"] == "softmax" for e in views)
    assert [e["path"] for e in views if e["default"]] == ["attunet_attention_softmax_gate0.nii.gz"]
    peak = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "attunet_attention_softmax_gate0.nii.gz"))).max()
    assert peak == pytest.approx(1.0)
    assert not any("requested" in warning for warning in manifest["warnings"])


def test_layer_and_method_options_reach_the_maps_and_a_bad_layer_writes_nothing(registry, case_folder, tmp_path):
    models = load_models("unet", "cpu", registry)
    options = SegmentOptions(explain=("gradcam",), layer="decoder.2", method="hirescam", precision="float32")
    manifest = segment_case(case_folder, tmp_path / "chosen", models, options)
    gradcams = [e for e in manifest["outputs"] if e["kind"] == "gradcam"]
    assert len(gradcams) == 3 and {(e["layer"], e["method"]) for e in gradcams} == {("decoder.2", "hirescam")}
    assert manifest["options"]["layer"] == "decoder.2" and manifest["options"]["method"] == "hirescam"
    with pytest.raises(InputError, match="no layer 'decoder.9'"):
        segment_case(case_folder, tmp_path / "bad", models, SegmentOptions(explain=("gradcam",), layer="decoder.9"))
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())
    with pytest.raises(InputError, match="unknown Grad-CAM method"):
        SegmentOptions(method="saliency").check()


def test_measured_defaults_choose_each_region_and_none_is_said_plainly(case_folder, tmp_path):
    """Registry defaults per region: WT at decoder.2 with HiResCAM, TC at the default, ET has no faithful map."""
    registry_path = tiny_registry(tmp_path / "models", ["unet"], spacing=None)
    registry = json.loads(registry_path.read_text())
    registry["models"][0]["explain"] = {"WT": {"layer": "decoder.2", "method": "hirescam"},
                                        "ET": {"none": "maps fall outside the tumour"}}
    registry_path.write_text(json.dumps(registry))
    models = load_models("unet", "cpu", registry_path)
    manifest = segment_case(case_folder, tmp_path / "out", models,
                            SegmentOptions(explain=("gradcam",), precision="float32"))
    gradcams = {e["class"]: (e["layer"], e["method"]) for e in manifest["outputs"] if e["kind"] == "gradcam"}
    assert gradcams == {"WT": ("decoder.2", "hirescam"), "TC": (DEFAULT_LAYER, "gradcam")}
    assert any("no faithful ET Grad-CAM map: maps fall outside the tumour" in w for w in manifest["warnings"])
    asked = segment_case(case_folder, tmp_path / "asked", models,
                         SegmentOptions(explain=("gradcam",), precision="float32", layer="decoder.3"))
    assert {e["class"] for e in asked["outputs"] if e["kind"] == "gradcam"} == {"WT", "TC", "ET"}


def test_no_faithful_map_anywhere_still_segments_from_its_own_pass(case_folder, tmp_path):
    registry_path = tiny_registry(tmp_path / "models", ["unet"], spacing=None)
    registry = json.loads(registry_path.read_text())
    registry["models"][0]["explain"] = {region: {"none": "nothing holds"} for region in ("WT", "TC", "ET")}
    registry_path.write_text(json.dumps(registry))
    models = load_models("unet", "cpu", registry_path)
    manifest = segment_case(case_folder, tmp_path / "out", models,
                            SegmentOptions(explain=("gradcam",), precision="float32"))
    plain = segment_case(case_folder, tmp_path / "plain", models, SegmentOptions(precision="float32"))
    assert not [e for e in manifest["outputs"] if e["kind"] == "gradcam"]
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "unet_labels.nii.gz")))
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "plain" / "unet_labels.nii.gz")))
    assert (written == expected).all() and manifest["metrics"] == plain["metrics"]
