"""A real run imported into a real MRML scene: segments, grids, display settings, folder, agreement table."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("slicer_core", reason="Slicer's core libraries (slicer-core) are not installed")
import slicer  # noqa: E402
import vtk  # noqa: E402

from BraTSXAIHelpers import manifest  # noqa: E402
from BraTSXAIScene import volumes  # noqa: E402

NETWORKS = ["unet", "resunet", "attunet"]
BRATS_SEGMENTS = {"necrotic core": (1.0, 0.0, 0.0), "edema": (0.0, 1.0, 0.0), "enhancing tumour": (1.0, 1.0, 0.0)}
SNOMED = {"necrotic core": "SCT^6574001^Necrosis", "edema": "SCT^79654002^Edema",
          "enhancing tumour": "SCT^108369006^Neoplasm"}


def test_the_ensemble_comes_first_and_is_the_only_visible_segmentation(imported):
    result, _ = imported
    assert list(result.segmentations) == ["ensemble", *NETWORKS]
    visible = [m for m, node in result.segmentations.items() if node.GetDisplayNode().GetVisibility()]
    assert visible == ["ensemble"]
    assert result.segmentations["ensemble"].GetName() == "BraTSXAI-Phantom Ensemble segmentation"


def test_segments_have_brats_names_colours_and_snomed_terminology(imported):
    result, _ = imported
    for node in result.segmentations.values():
        segmentation = node.GetSegmentation()
        assert segmentation.GetNumberOfSegments() == 3
        for i in range(3):
            segment = segmentation.GetNthSegment(i)
            name = segment.GetName()
            assert segment.GetColor() == pytest.approx(BRATS_SEGMENTS[name])
            entry = vtk.reference("")
            assert segment.GetTag(segment.GetTerminologyEntryTagName(), entry)
            value = str(entry)
            assert SNOMED[name] in value and "SCT^12738006^Brain" in value


def test_segments_hold_the_voxels_of_the_label_map(imported, finished_run):
    from BraTSXAIHelpers import geometry

    result, _ = imported
    spec = result.plan.segmentations[1]  # UNet's label map
    labels = geometry.read_volume(spec.path)[0]
    node = result.segmentations[spec.model]
    segmentation = node.GetSegmentation()
    for value, name in ((1, "necrotic core"), (2, "edema"), (4, "enhancing tumour")):
        segmentId = segmentation.GetSegmentIdBySegmentName(name)
        voxels = slicer.util.arrayFromSegmentBinaryLabelmap(node, segmentId, result.reference)
        assert int(voxels.astype(bool).sum()) == int((labels == value).sum()), name


def test_every_output_volume_lies_on_the_t1ce_grid(imported, phantom):
    result, _ = imported
    reference = phantom["t1ce"]
    assert result.reference is reference
    for _, node in result.overlays:
        np.testing.assert_allclose(volumes.ijkToRas(node), volumes.ijkToRas(reference), atol=1e-6)
        assert volumes.arrayShape(node) == volumes.arrayShape(reference)
        assert node.GetAttribute(volumes.OUTPUT_ATTRIBUTE)


def test_heat_maps_carry_colour_map_window_and_hidden_low_values(imported):
    result, _ = imported
    kinds = {spec.kind for spec, _ in result.overlays}
    assert kinds == {"probability", "gradcam", "attention", "uncertainty"}
    for spec, node in result.overlays:
        display = node.GetDisplayNode()
        expected = "ColdToHotRainbow" if spec.kind == "uncertainty" else "Inferno"
        assert display.GetColorNode().GetID() == f"vtkMRMLColorTableNodeFile{expected}.txt"
        assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == pytest.approx(spec.window)
        assert display.GetApplyThreshold() == 1 and display.GetLowerThreshold() == pytest.approx(spec.threshold)
    for model in NETWORKS:
        for region in ("WT", "TC", "ET"):
            assert result.overlay(model, "gradcam", region) is not None


def test_maps_stored_in_255th_steps_are_float_volumes_in_slicer(imported):
    """The files are uint8 with scl_slope 1/255: the module's nodes and Slicer's own volume reader see [0, 1]."""
    import slicer

    result, _ = imported
    for spec, node in result.overlays:
        assert node.GetImageData().GetScalarTypeAsString() in ("float", "double"), spec.path
        low, high = node.GetImageData().GetScalarRange()
        assert 0.0 <= low and high <= 1.0 and high > 0.0, spec.path
    spec, node = next((s, n) for s, n in result.overlays if s.kind == "probability")
    read = slicer.vtkMRMLScalarVolumeNode()
    slicer.mrmlScene.AddNode(read)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    slicer.mrmlScene.AddNode(storage)
    try:
        storage.SetFileName(str(spec.path))
        assert storage.ReadData(read) == 1
        assert read.GetImageData().GetScalarTypeAsString() == "float"
        assert read.GetImageData().GetScalarRange() == pytest.approx(node.GetImageData().GetScalarRange(), abs=1e-6)
    finally:
        slicer.mrmlScene.RemoveNode(storage)
        slicer.mrmlScene.RemoveNode(read)


def test_all_nodes_of_the_run_are_in_one_folder_under_the_inputs_study(imported, phantom):
    result, before = imported
    shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
    assert shNode.GetItemName(result.folderItemId) == "BraTSXAI BraTSXAI-Phantom"
    t1ceParent = shNode.GetItemParent(shNode.GetItemByDataNode(phantom["t1ce"]))
    assert shNode.GetItemParent(result.folderItemId) == t1ceParent
    for node in result.nodes():
        assert shNode.GetItemParent(shNode.GetItemByDataNode(node)) == result.folderItemId
    children = vtk.vtkIdList()
    shNode.GetItemChildren(result.folderItemId, children)
    assert children.GetNumberOfIds() == len(result.nodes()) == 4 + 32 + 2  # segmentations, overlays, tables
    added = sorted(set(before) ^ set(_census()))
    assert not set(before) - set(_census()), "the import removed or replaced existing nodes"
    assert {cls for cls, _ in added} >= {"vtkMRMLSegmentationNode", "vtkMRMLScalarVolumeNode", "vtkMRMLTableNode"}


def _census():
    scene = slicer.mrmlScene
    return sorted((scene.GetNthNode(i).GetClassName(), scene.GetNthNode(i).GetID())
                  for i in range(scene.GetNumberOfNodes()))


def test_agreement_table_pairs_networks_and_takes_truth_dice_from_the_manifest(imported):
    result, _ = imported
    table = result.agreementTable
    assert table.GetNumberOfRows() == 3 + 4 and table.GetNumberOfColumns() == 4
    comparisons = [table.GetCellText(row, 0) for row in range(table.GetNumberOfRows())]
    assert comparisons[:3] == ["UNet vs Residual UNet", "UNet vs Attention UNet", "Residual UNet vs Attention UNet"]
    assert set(comparisons[3:]) == {f"{manifest.model_label(m)} vs ground truth" for m in ["ensemble", *NETWORKS]}
    for row, model in ((comparisons.index("UNet vs ground truth"), "unet"),):
        dice = [float(table.GetCellText(row, c)) for c in (1, 2, 3)]
        expected = [result.plan.metrics[model][f"dice_{r}"] for r in ("WT", "TC", "ET")]
        assert dice == pytest.approx(expected, abs=1e-6)


def test_uncertainty_overlays_and_the_trust_table_come_from_the_manifest(imported, finished_run):
    import json

    result, _ = imported
    written = json.loads(open(finished_run.process.outcome.manifest).read())
    for region in ("WT", "TC", "ET"):
        node = result.overlay("ensemble", "uncertainty", region)
        assert node is not None and node.GetName() == f"BraTSXAI-Phantom Ensemble uncertainty {region}"
    table = result.trustTable
    assert table is not None and table in result.nodes()
    assert table.GetNumberOfRows() == 1 + 3 * 4  # expected Dice, then 4 sequences of each of 3 networks
    assert table.GetCellText(0, 0) == "expected Dice (Ensemble)"
    assert float(table.GetCellText(0, 3)) == pytest.approx(written["quality"]["ET"]["expected_dice"])
    shares = written["modality_importance"]["unet"]["WT"]
    assert table.GetCellText(1, 0) == "UNet: t1 share"
    assert float(table.GetCellText(1, 1)) == pytest.approx(shares["t1"])
