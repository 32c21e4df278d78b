"""The self-test inside Slicer (Reload and Test): the phantom case segmented with tiny untrained networks.

Testing/Slicer runs the same checks, and more, on Slicer's core libraries in CI; this one also covers the Qt
application (parameter node, real views) for whoever has Slicer.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from BraTSXAIHelpers import agreement, manifest
from BraTSXAIHelpers.command import RunOptions
from BraTSXAIScene import display, sampledata, volumes


def tinyModels(folder: Path) -> dict:
    """A registry of three untrained width-8 networks, so the test needs no download; the child's environment."""
    from BraTSXAILib.models import ARCHITECTURES, build_model
    from BraTSXAILib.weights import REGISTRY_FORMAT, save_weights

    entries = []
    for architecture in ARCHITECTURES:
        path = folder / f"{architecture}-tiny.pt"
        sha256 = save_weights(build_model(architecture, 8), path, architecture)
        entries.append({"id": f"{architecture}-tiny", "architecture": architecture, "width": 8,
                        "sha256": sha256, "file": path.name, "default": True})
    registry = folder / "registry.json"
    registry.write_text(json.dumps({"format": REGISTRY_FORMAT, "models": entries}))
    return {"BRATSXAI_REGISTRY": str(registry), "BRATSXAI_MODELS": str(folder)}


class BraTSXAITest(ScriptedLoadableModuleTest):
    """Runs inside Slicer: the sample case, segmented with tiny untrained networks."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_inputsFromNames()
        self.setUp()
        self.test_cancelLeavesSceneAsItWas()
        self.setUp()
        self.test_segmentPhantom()

    @staticmethod
    def _logic():
        import BraTSXAI

        return BraTSXAI.BraTSXAILogic()

    def test_inputsFromNames(self):
        self.delayDisplay("Inputs are chosen by their names")
        names = ["case7_t1", "case7-t1c", "CASE7_T2", "case7_flair", "unrelated"]
        nodes = {name: slicer.util.addVolumeFromArray(np.zeros((4, 5, 6), np.float32), name=name) for name in names}
        logic = self._logic()
        parameterNode = logic.getParameterNode()
        logic.fillInputsFromNames(parameterNode)
        self.assertIs(parameterNode.t1, nodes["case7_t1"])
        self.assertIs(parameterNode.t1ce, nodes["case7-t1c"])
        self.assertIs(parameterNode.t2, nodes["CASE7_T2"])
        self.assertIs(parameterNode.flair, nodes["case7_flair"])
        self.assertEqual(logic.inputProblems(parameterNode), [])
        parameterNode.t2 = nodes["case7_t1"]
        self.assertTrue(any("same volume" in p for p in logic.inputProblems(parameterNode)))

    def test_cancelLeavesSceneAsItWas(self):
        self.delayDisplay("Cancel kills the run and adds nothing")
        nodes = sampledata.loadPhantomCase(shape=(40, 48, 40), spacing=(2.5, 2.5, 2.5), withTruth=False)
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        logic = self._logic()
        run = logic.start(nodes, RunOptions(model="all"))
        logic.cancel(run)
        outcome = run.process.wait()
        logic.discard(run)
        self.assertTrue(outcome.cancelled)
        self.assertFalse(run.workDir.exists())
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)

    def test_segmentPhantom(self):
        self.delayDisplay("Segmenting the sample case with three tiny networks")
        nodes = sampledata.loadPhantomCase(shape=(40, 48, 40), spacing=(2.5, 2.5, 2.5))
        logic = self._logic()
        with tempfile.TemporaryDirectory() as folder:
            environment = tinyModels(Path(folder))
            saved = {key: os.environ.get(key) for key in environment}
            os.environ.update(environment)  # the child process inherits the registry of tiny models
            try:
                result = logic.segment(nodes["t1"], nodes["t1ce"], nodes["t2"], nodes["flair"], model="all",
                                       device="cpu", groundTruth=nodes["seg"])
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

        reference = nodes["t1ce"]
        self.assertEqual(list(result.segmentations), ["ensemble", "unet", "resunet", "attunet"])
        for model, segmentationNode in result.segmentations.items():
            self.assertEqual(bool(segmentationNode.GetDisplayNode().GetVisibility()), model == "ensemble")
            segmentation = segmentationNode.GetSegmentation()
            names = sorted(segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments()))
            self.assertEqual(names, ["edema", "enhancing tumour", "necrotic core"])
        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        for node in result.nodes():
            self.assertEqual(shNode.GetItemParent(shNode.GetItemByDataNode(node)), result.folderItemId)
        for spec, node in result.overlays:
            self.assertTrue(np.allclose(volumes.ijkToRas(node), volumes.ijkToRas(reference)))
            self.assertEqual(node.GetDisplayNode().GetColorNode().GetName(), spec.colormap)
        for model in ("unet", "resunet", "attunet"):
            for region in agreement.REGIONS:
                self.assertIsNotNone(result.overlay(model, "gradcam", region), f"no Grad-CAM {region} for {model}")
        self.assertEqual(result.agreementTable.GetNumberOfRows(), 3 + 4)  # three pairs; four against the truth

        overlay = result.overlay("unet", "gradcam", "WT")
        display.showOverlay(overlay, reference, in3D=True)
        composite = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSliceCompositeNode")
        self.assertEqual(composite.GetForegroundVolumeID(), overlay.GetID())
        self.assertAlmostEqual(composite.GetForegroundOpacity(), manifest.OVERLAY_OPACITY)
        display.hideOverlay(overlay)
        self.assertIsNone(composite.GetForegroundVolumeID())
        self.delayDisplay("Test passed")
