"""manifest.json (schema of docs/INTERFACES.md) -> node descriptions: names, colours, windows, terminology."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import slicer_module  # noqa: F401
from BraTSXAIHelpers.manifest import (
    DEFAULT_COLORMAP,
    HIDDEN_FRACTION,
    OVERLAY_OPACITY,
    ManifestError,
    plan_nodes,
    terminology_entry,
)
from BraTSXAILib.labels import label_classes

EXAMPLE = {  # the example of docs/INTERFACES.md, with every kind the module shows
    "format": "brats-xai-manifest/1",
    "case_id": "Brats18_2013_20_1",
    "reference": {"modality": "t1ce", "path": "in/t1ce.nii", "size": [240, 240, 155], "spacing": [1, 1, 1],
                  "origin": [0, 0, 0], "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
    "outputs": [
        {"path": "unet_labels.nii.gz", "kind": "labels", "model": "unet", "labels": label_classes(4)},
        {"path": "unet_probability_WT.nii.gz", "kind": "probability", "model": "unet", "class": "WT",
         "range": [0, 1], "colormap": "Inferno"},
        {"path": "unet_gradcam_ET.nii.gz", "kind": "gradcam", "model": "unet", "class": "ET", "method": "gradcam",
         "layer": "decoder.1", "range": [0, 1], "raw_range": [0, 3.2], "colormap": "Magma", "empty": True},
        {"path": "attunet_attention_gate0.nii.gz", "kind": "attention", "model": "attunet", "level": 0,
         "map": "gate", "view": "sigmoid", "range": [0, 1], "colormap": "Inferno"},
        {"path": "attunet_attention_softmax_gate0.nii.gz", "kind": "attention", "model": "attunet", "level": 0,
         "map": "gate", "view": "softmax", "range": [0, 1], "colormap": "Inferno"},
        {"path": "unet_uncertainty.nii.gz", "kind": "uncertainty", "model": "unet", "range": [0, 0.25]},
        {"path": "overview.png", "kind": "overview"},
    ],
    "metrics": {"unet": {"dice_WT": 0.91}},
    "warnings": ["ET Grad-CAM of unet: the region is empty"],
}


def write(tmp_path, manifest) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_example_manifest(tmp_path):
    plan = plan_nodes(write(tmp_path, EXAMPLE))
    assert (plan.case_id, plan.reference_modality) == ("Brats18_2013_20_1", "t1ce")
    [segmentation] = plan.segmentations
    assert segmentation.name == "Brats18_2013_20_1 UNet segmentation"
    assert segmentation.path == tmp_path / "unet_labels.nii.gz"
    assert [(s.value, s.name, s.color) for s in segmentation.segments] == [
        (1, "necrotic core", (1.0, 0.0, 0.0)), (2, "edema", (0.0, 1.0, 0.0)), (4, "enhancing tumour", (1.0, 1.0, 0.0))]
    names = [o.name for o in plan.overlays]
    assert names == ["Brats18_2013_20_1 UNet probability WT", "Brats18_2013_20_1 UNet Grad-CAM ET",
                     "Brats18_2013_20_1 Attention UNet attention gate 0",
                     "Brats18_2013_20_1 Attention UNet attention gate 0 softmax", "Brats18_2013_20_1 UNet uncertainty"]
    probability, gradcam, attention, softmax, uncertainty = plan.overlays
    assert [o.kind for o in plan.overlays] == ["probability", "gradcam", "attention", "attention", "uncertainty"]
    assert [o.is_explanation for o in plan.overlays] == [False, True, True, True, False]
    assert softmax.target == "gate 0 softmax"
    assert (gradcam.colormap, gradcam.blank, gradcam.target) == ("Magma", True, "ET")
    assert (attention.model, attention.target, attention.blank) == ("attunet", "gate 0", False)
    assert uncertainty.colormap == DEFAULT_COLORMAP
    assert probability.window == (0.0, 1.0) and probability.threshold == pytest.approx(HIDDEN_FRACTION)
    assert uncertainty.window == (0.0, 0.25) and uncertainty.threshold == pytest.approx(0.25 * HIDDEN_FRACTION)
    assert all(o.opacity == OVERLAY_OPACITY == 0.4 for o in plan.overlays)
    assert plan.skipped == ("overview.png",)
    assert plan.metrics == {"unet": {"dice_WT": 0.91}}
    assert plan.warnings == ("ET Grad-CAM of unet: the region is empty",)


def test_terminology_entries_are_standard_codes():
    necrosis, edema, enhancing = (terminology_entry(v) for v in (1, 2, 4))
    for entry in (necrosis, edema, enhancing):
        fields = entry.split("~")
        assert len(fields) == 7  # context~category~type~modifier~anatomic context~region~region modifier
        assert fields[1] == "SCT^49755003^Morphologically Altered Structure"
        assert fields[5] == "SCT^12738006^Brain"
    assert necrosis.split("~")[2] == "SCT^6574001^Necrosis"
    assert edema.split("~")[2] == "SCT^79654002^Edema"
    assert enhancing.split("~")[2] == "SCT^108369006^Neoplasm" == terminology_entry(3).split("~")[2]


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format="other/1"), "not a brats-xai-manifest/1"),
    (lambda m: m["outputs"][1].pop("kind"), "path and a kind"),
    (lambda m: m["outputs"][1].update(range=[1, 1]), "empty"),
    (lambda m: m["outputs"][1].update(range=["low", 1]), "not two numbers"),
    (lambda m: m["outputs"][0].update(labels=[]), "must list its labels"),
    (lambda m: m["outputs"][0]["labels"][0].update(value=7), "not a BraTS label"),
    (lambda m: m["outputs"][0]["labels"][0].update(color=[255, 0, 0]), "0..1"),
])
def test_contract_breaches_are_named(tmp_path, change, message):
    manifest = json.loads(json.dumps(EXAMPLE))
    change(manifest)
    with pytest.raises(ManifestError, match=message):
        plan_nodes(write(tmp_path, manifest))


def test_unreadable_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="cannot read"):
        plan_nodes(tmp_path / "manifest.json")


def test_the_primary_ensemble_comes_first(tmp_path):
    outputs = [{"path": f"{model}_labels.nii.gz", "kind": "labels", "model": model, "labels": label_classes(4),
                **({"primary": True} if model == "ensemble" else {})} for model in ("unet", "attunet", "ensemble")]
    outputs += [{"path": f"{model}_probability_WT.nii.gz", "kind": "probability", "model": model, "class": "WT",
                 **({"primary": True} if model == "ensemble" else {})} for model in ("unet", "ensemble")]
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "brats-xai-manifest/1", "case_id": "C",
                                                        "outputs": outputs}))
    plan = plan_nodes(tmp_path / "manifest.json")
    assert [spec.model for spec in plan.segmentations] == ["ensemble", "unet", "attunet"]
    assert [spec.primary for spec in plan.segmentations] == [True, False, False]
    assert plan.segmentations[0].name == "C Ensemble segmentation"
    assert [spec.model for spec in plan.overlays] == ["ensemble", "unet"]
