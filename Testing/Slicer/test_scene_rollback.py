"""All of a run or nothing: a failing import, a cancelled run or import, and the module's own outputs as inputs."""
from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("slicer_core", reason="Slicer's core libraries (slicer-core) are not installed")
import slicer  # noqa: E402

from BraTSXAIHelpers.command import RunOptions  # noqa: E402
from BraTSXAIScene import results, volumes  # noqa: E402
from BraTSXAIScene.logic import SegmentLogic  # noqa: E402


def copied_outputs(finished_run, tmp_path):
    folder = tmp_path / "output"
    shutil.copytree(finished_run.workDir / "output", folder)
    return folder, json.loads((folder / "manifest.json").read_text())


def shItems():
    shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
    return shNode.GetNumberOfItems()


def test_a_failure_late_in_the_import_leaves_the_scene_exactly_as_it_was(core, finished_run, monkeypatch):
    made = []

    def addOverlay(spec, array, matrix):  # the real node builder, failing on the last heat map
        if len(made) == len(results.manifest.plan_nodes(manifestPath).overlays) - 1:
            raise RuntimeError("disk full")
        made.append(realAddOverlay(spec, array, matrix))
        return made[-1]

    manifestPath = finished_run.workDir / "output" / "manifest.json"
    realAddOverlay = results.nodes.addOverlay
    monkeypatch.setattr(results.nodes, "addOverlay", addOverlay)
    before, items = core.node_census(), shItems()
    with pytest.raises(RuntimeError, match="disk full"):
        results.importResults(manifestPath, finished_run.volumes)
    assert len(made) == 31  # 4 segmentations and 31 of the 32 heat maps existed when it failed
    assert all(slicer.mrmlScene.GetNodeByID(node.GetID()) is None for node in made)
    assert core.node_census() == before and shItems() == items


def test_an_output_off_the_reference_grid_is_refused_before_any_node(core, finished_run, tmp_path):
    folder, data = copied_outputs(finished_run, tmp_path)
    import SimpleITK as sitk

    path = folder / data["outputs"][0]["path"]
    image = sitk.ReadImage(str(path))
    image.SetOrigin([o + 1.0 for o in image.GetOrigin()])
    sitk.WriteImage(image, str(path))
    before, items = core.node_census(), shItems()
    with pytest.raises(RuntimeError, match="does not lie on the t1ce grid"):
        results.importResults(folder / "manifest.json", finished_run.volumes)
    assert core.node_census() == before and shItems() == items


def test_cancel_kills_the_run_and_leaves_nothing_behind(core, tiny_models, phantom):
    logic = SegmentLogic()
    before = core.node_census()
    run = logic.start({m: phantom[m] for m in ("t1", "t1ce", "t2", "flair")}, RunOptions(model="all"))
    logic.cancel(run)
    outcome = run.process.wait()
    logic.discard(run)
    assert outcome.cancelled and not outcome.succeeded
    assert not run.workDir.exists()
    assert core.node_census() == before  # the temporary storage nodes that wrote the inputs are gone too


def test_cancel_during_the_import_removes_every_node_made_so_far(core, finished_run):
    asked = []

    def shouldStop():  # as the widget's: Cancel was pressed while the fifth node was made
        asked.append(len(asked))
        return len(asked) == 5

    before, items = core.node_census(), shItems()
    with pytest.raises(results.ImportCancelled, match="the scene is as it was"):
        SegmentLogic.importResults(finished_run, shouldStop=shouldStop)
    assert len(asked) == 5  # asked after every node, and it stopped at once
    assert core.node_census() == before and shItems() == items


def test_heat_maps_are_never_taken_or_offered_as_mri_inputs(imported, phantom):
    result, _ = imported
    gradcam = result.overlay("unet", "gradcam", "WT")
    assert gradcam.GetID() in volumes.moduleOutputNodeIds()
    assert not {phantom[m].GetID() for m in ("t1", "t1ce", "t2", "flair")} & set(volumes.moduleOutputNodeIds())
    chosen = volumes.inputsFromNames({"t1": None, "t1ce": None, "t2": None, "flair": None})
    assert chosen == {m: phantom[m] for m in ("t1", "t1ce", "t2", "flair")}
    problems = volumes.inputProblems({**{m: phantom[m] for m in ("t1", "t2", "flair")}, "t1ce": gradcam})
    assert any("BraTSXAI output" in p for p in problems)
