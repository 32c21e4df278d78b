"""BraTSXAI: segment a brain tumour in four MRI sequences and show where the networks looked, inside 3D Slicer.

The module holds no model or image processing. It writes the four input volumes to a temporary folder, runs
`brats-xai segment ... --json-progress` in a background process (BraTSXAIHelpers.runner) and turns the outputs
listed in `manifest.json` into nodes (BraTSXAIHelpers.manifest). Everything Slicer-free lives in
BraTSXAIHelpers and is tested without Slicer; docs/slicer.md describes the module for users.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from BraTSXAIHelpers import agreement, dependencies, geometry, inputs, manifest, paths, progress
from BraTSXAIHelpers.command import (
    DEFAULT_EXPLANATIONS,
    DEVICE_CHOICES,
    MODEL_CHOICES,
    SegmentOptions,
    argv_text,
    python_executable,
    segment_command,
)
from BraTSXAIHelpers.runner import BackgroundRun

MODULE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = paths.project_root(MODULE_DIR)
if str(PROJECT_ROOT) not in sys.path:  # source tree: BraTSXAILib sits beside the module folder, not in it
    sys.path.insert(0, str(PROJECT_ROOT))

OUTPUT_ATTRIBUTE = "BraTSXAI.output"  # marks nodes the module created, so they are never taken as inputs
POLL_INTERVAL_MS = 200
FALLBACK_COLOR_NODE_ID = "vtkMRMLColorTableNodeFileInferno.txt"


#
# BraTSXAI
#


class BraTSXAI(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "BraTSXAI"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["BraTSXAI developers"]
        self.parent.helpText = """
Segments a glioma in T1, T1ce, T2 and FLAIR MRI with three 3D UNets (UNet, Residual UNet, Attention UNet) and
shows where each network looked: Grad-CAM heat maps for whole tumour, tumour core and enhancing tumour, and the
attention gates of the Attention UNet. Pick the four volumes (filled from their names), press Segment, and toggle
the heat maps over the MRI. Research software, not for clinical use.
"""
        self.parent.acknowledgementText = """
Built on 3D Slicer, PyTorch, MONAI and SimpleITK. Trained on the BraTS challenge data.
"""
        # The base class looks for the icon beside the module file, which holds only in an installed extension.
        self.parent.icon = qt.QIcon(str(paths.resource_path(MODULE_DIR, "Icons/BraTSXAI.png")))


#
# BraTSXAIParameterNode
#


@parameterNodeWrapper
class BraTSXAIParameterNode:
    """The module's choices, saved with the scene; widget names in BraTSXAI.ui bind to these by name."""

    t1: vtkMRMLScalarVolumeNode
    t1ce: vtkMRMLScalarVolumeNode
    t2: vtkMRMLScalarVolumeNode
    flair: vtkMRMLScalarVolumeNode
    groundTruth: vtkMRMLScalarVolumeNode
    model: Annotated[str, Choice(list(MODEL_CHOICES))] = "All three"
    gradcam: bool = True
    attention: bool = True
    attentionSoftmax: bool = False
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "Automatic"


#
# Results of a run
#


@dataclass
class PendingRun:
    """A segmentation in progress: the child process and where its files go."""

    process: BackgroundRun
    workDir: Path
    volumes: dict  # modality -> input volume node; outputs lie on the reference modality's grid
    groundTruth: Optional[vtkMRMLScalarVolumeNode] = None


@dataclass
class SegmentationResult:
    """The nodes one run created, all in one subject-hierarchy folder under the inputs' study."""

    folderItemId: int
    reference: vtkMRMLScalarVolumeNode  # the input volume every output lies on (T1ce)
    segmentations: dict  # model -> vtkMRMLSegmentationNode
    overlays: list  # (manifest.OverlaySpec, vtkMRMLScalarVolumeNode)
    agreementTable: Optional[object]  # vtkMRMLTableNode, or None with a single network and no ground truth
    plan: manifest.NodePlan
    agreementRows: list = field(default_factory=list)

    def nodes(self) -> list:
        nodes = list(self.segmentations.values()) + [node for _, node in self.overlays]
        return nodes + ([self.agreementTable] if self.agreementTable is not None else [])

    def overlay(self, model: str, kind: str, target: str):
        """The heat-map node of one model, kind and target (e.g. "unet", "gradcam", "ET"), or None."""
        return next((n for s, n in self.overlays if (s.model, s.kind, s.target) == (model, kind, target)), None)


#
# BraTSXAIWidget
#


class BraTSXAIWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._run = None  # PendingRun while the background process works
        self._result = None  # SegmentationResult of the last run
        self._overlayCheckBoxes = []
        self._pollTimer = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(str(paths.resource_path(MODULE_DIR, "UI/BraTSXAI.ui")))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = BraTSXAILogic()
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(POLL_INTERVAL_MS)
        self._pollTimer.connect("timeout()", self.onPoll)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)

        self.ui.segmentButton.connect("clicked(bool)", self.onSegmentButton)
        self.ui.autoAssignButton.connect("clicked(bool)", self.onAutoAssign)
        self.ui.show3DCheckBox.connect("toggled(bool)", self.onShow3DToggled)
        self.ui.progressBar.setRange(0, 100)

        self.initializeParameterNode()

    def cleanup(self):
        """Called when the application closes: never leave a segmentation running behind Slicer's back."""
        if self._run is not None:
            self._run.process.cancel()
            self.logic.discard(self._run)
            self._run = None
        if self._pollTimer is not None:
            self._pollTimer.stop()
        self.removeObservers()
        self.setParameterNode(None)

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        if self._run is not None:  # its inputs are about to disappear
            self._run.process.cancel()
        self.setParameterNode(None)
        self._clearResultWidgets()

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onNodeAdded(self, caller, event):
        # Deferred: a volume being loaded gets its name and image only after it is added to the scene.
        qt.QTimer.singleShot(0, self.onAutoAssign)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        self.logic.fillInputsFromNames(self._parameterNode)

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanSegment)
        self._parameterNode = inputParameterNode
        if self._parameterNode is not None:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanSegment)
            self._checkCanSegment()

    def onAutoAssign(self):
        if self._parameterNode is not None and self._run is None:
            self.logic.fillInputsFromNames(self._parameterNode)

    def _checkCanSegment(self, caller=None, event=None):
        if self._run is not None or self._parameterNode is None:
            return
        problems = self.logic.inputProblems(self._parameterNode)
        self.ui.segmentButton.enabled = not problems
        self.ui.segmentButton.toolTip = "\n".join(problems) if problems else "Segment the tumour (runs in the background)."

    # --- running ---

    def onSegmentButton(self):
        if self._run is not None:
            self._run.process.cancel()
            self.ui.segmentButton.enabled = False
            self.ui.statusLabel.text = "Cancelling…"
            return
        try:
            if not self.logic.ensureDependencies(askConfirmation=True):
                self.ui.statusLabel.text = "Not started: the required Python packages are not installed."
                return
            parameters = self._parameterNode
            options = SegmentOptions.from_labels(parameters.model, parameters.gradcam, parameters.attention,
                                                 parameters.device, parameters.attentionSoftmax)
            self.ui.logTextEdit.clear()
            self._run = self.logic.start(self.logic.inputVolumes(parameters), options, parameters.groundTruth)
        except Exception as error:  # the GUI boundary: say what went wrong, keep the trace in the log
            logging.exception("BraTSXAI: the segmentation could not start")
            slicer.util.errorDisplay(f"Could not start the segmentation: {error}")
            return
        self._appendLog(argv_text(self._run.process.command))
        self._setRunning(True)
        self._pollTimer.start()

    def onPoll(self):
        run = self._run
        if run is None:
            return
        for event in run.process.poll():
            self._showEvent(event)
        if not run.process.finished:
            return
        self._pollTimer.stop()
        self._run = None
        outcome = run.process.outcome
        try:
            if outcome.succeeded:
                self.ui.statusLabel.text = "Creating nodes…"
                slicer.app.processEvents()
                self._showResult(self.logic.importResults(run))
            else:
                self.ui.statusLabel.text = outcome.describe()
                if not outcome.cancelled:
                    slicer.util.errorDisplay(f"Segmentation failed: {outcome.describe()}")
        except Exception as error:  # the GUI boundary: say what went wrong, keep the trace in the log
            logging.exception("BraTSXAI: importing the results failed")
            self.ui.statusLabel.text = f"Importing the results failed: {error}"
            slicer.util.errorDisplay(f"Importing the results failed: {error}")
        finally:
            self.logic.discard(run)
            self._setRunning(False)

    def _showEvent(self, event):
        if isinstance(event, progress.Progress):
            self.ui.progressBar.value = progress.percent(event.fraction)
            self.ui.statusLabel.text = event.stage
            self._appendLog(f"[{progress.percent(event.fraction):3d}%] {event.stage}")
        elif isinstance(event, progress.Failure):
            self._appendLog(f"error: {event.text()}")
        elif isinstance(event, progress.Done):
            self._appendLog(f"outputs listed in {event.manifest}")
        else:
            self._appendLog(event.text)

    def _appendLog(self, text):
        self.ui.logTextEdit.appendPlainText(text)

    def _setRunning(self, running):
        self.ui.segmentButton.text = "Cancel" if running else "Segment"
        self.ui.inputsCollapsibleButton.enabled = not running
        self.ui.optionsCollapsibleButton.enabled = not running
        if running:
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = "Starting…"
            self.ui.segmentButton.enabled = True
            self.ui.segmentButton.toolTip = "Stop the segmentation; the scene stays as it was."
        else:
            self._checkCanSegment()

    # --- results ---

    def _clearResultWidgets(self):
        for checkBox in self._overlayCheckBoxes:
            checkBox.deleteLater()
        self._overlayCheckBoxes = []
        self.ui.agreementTableView.setMRMLTableNode(None)
        self._result = None

    def _showResult(self, result):
        self._clearResultWidgets()
        self._result = result
        listLayout = self.ui.overlayListWidget.layout()
        for spec, node in result.overlays:
            checkBox = qt.QCheckBox(node.GetName() + (" (blank: nothing found)" if spec.blank else ""))
            checkBox.toolTip = f"Show {node.GetName()} over the T1ce in the slice views."
            checkBox.connect("toggled(bool)", lambda checked, n=node, c=checkBox: self.onOverlayToggled(n, c, checked))
            listLayout.addWidget(checkBox)
            self._overlayCheckBoxes.append(checkBox)
        self.ui.agreementTableView.setMRMLTableNode(result.agreementTable)
        first = next((i for i, (spec, _) in enumerate(result.overlays) if spec.is_explanation), 0)
        if self._overlayCheckBoxes:  # show an explanation straight away; the user switches from there
            self._overlayCheckBoxes[first].checked = True
        warnings = "; ".join(result.plan.warnings)
        self.ui.statusLabel.text = f"Done: {len(result.nodes())} nodes for {result.plan.case_id}." + (
            f" Warnings: {warnings}" if warnings else "")
        self.ui.resultsCollapsibleButton.collapsed = False

    def onOverlayToggled(self, node, checkBox, checked):
        if checked:
            for other in self._overlayCheckBoxes:  # slice views hold one foreground volume at a time
                if other is not checkBox and other.checked:
                    other.blockSignals(True)
                    other.checked = False
                    other.blockSignals(False)
            for _, overlayNode in self._result.overlays:
                if overlayNode is not node:
                    self.logic.setVolumeRendering(overlayNode, False)
            self.logic.showOverlay(node, self._result.reference, in3D=self.ui.show3DCheckBox.checked)
        else:
            self.logic.hideOverlay(node)

    def onShow3DToggled(self, checked):
        if self._result is None:
            return
        for checkBox, (_, node) in zip(self._overlayCheckBoxes, self._result.overlays):
            self.logic.setVolumeRendering(node, checked and checkBox.checked)


#
# BraTSXAILogic
#


class BraTSXAILogic(ScriptedLoadableModuleLogic):
    """Everything the module does, usable from the Python console without the widget.

    Example (blocking)::

        import BraTSXAI
        logic = BraTSXAI.BraTSXAILogic()
        result = logic.segment(t1Node, t1ceNode, t2Node, flairNode, model="all", device="auto")
        result.segmentations["unet"], result.overlay("unet", "gradcam", "ET")
    """

    def getParameterNode(self):
        return BraTSXAIParameterNode(super().getParameterNode())

    # --- inputs ---

    @staticmethod
    def inputVolumes(parameterNode) -> dict:
        return {modality: getattr(parameterNode, modality) for modality in inputs.MODALITIES}

    @staticmethod
    def fillInputsFromNames(parameterNode) -> None:
        """Fill empty T1/T1ce/T2/FLAIR choices from the names of the loaded volumes (keeps the user's choices)."""
        volumes = [node for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
                   if node.GetClassName() == "vtkMRMLScalarVolumeNode" and not node.GetAttribute(OUTPUT_ATTRIBUTE)]
        byId = {node.GetID(): node for node in volumes}
        current = {m: (node.GetID() if node else None) for m, node in BraTSXAILogic.inputVolumes(parameterNode).items()}
        chosen = inputs.assign_by_name([(node.GetID(), node.GetName()) for node in volumes], current)
        with slicer.util.NodeModify(parameterNode):
            for modality, nodeId in chosen.items():
                if current[modality] is None and nodeId is not None:
                    setattr(parameterNode, modality, byId[nodeId])

    @staticmethod
    def inputProblems(parameterNode) -> list:
        """Why the inputs cannot be segmented as they are (empty when they can)."""
        volumes = BraTSXAILogic.inputVolumes(parameterNode)
        problems = inputs.input_problems({m: (n.GetID() if n else None) for m, n in volumes.items()})
        reference = volumes["t1ce"]
        for modality, node in volumes.items():
            if node is not None and reference is not None and node.GetTransformNodeID() != reference.GetTransformNodeID():
                problems.append(f"{inputs.MODALITY_LABELS[modality]} is under a different transform than T1ce; "
                                "harden the transforms first.")
        truth = parameterNode.groundTruth
        if truth is not None and truth.GetID() in {n.GetID() for n in volumes.values() if n is not None}:
            problems.append("The ground truth is one of the MRI inputs; pick a label map.")
        elif truth is not None and reference is not None and not _onSameGrid(truth, reference):
            problems.append("The ground truth does not lie on the T1ce grid (same size, spacing, origin, axes).")
        return problems

    # --- dependencies ---

    @staticmethod
    def ensureDependencies(askConfirmation=True) -> bool:
        """Install what the library needs (PyTorch through the PyTorch extension, the rest with pip).

        Returns False when the user declined. Offers a restart when pip replaced a package Slicer had loaded.
        """
        missing = dependencies.missing_modules()
        if not missing:
            return True
        before = dependencies.imported_distribution_versions()
        if "torch" in missing:
            try:
                import PyTorchUtils
            except ModuleNotFoundError:
                raise RuntimeError("BraTSXAI needs the PyTorch extension: install it with the Extensions Manager, "
                                   "restart Slicer, and try again.") from None
            torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
                askConfirmation=askConfirmation, torchVersionRequirement=dependencies.TORCH_VERSION)
            if torch is None:
                return False
        others = dependencies.pip_requirements(missing)
        if others:
            question = (f"BraTSXAI needs these Python packages: {', '.join(others)}. "
                        "Download and install them now (a few minutes)?")
            if askConfirmation and not slicer.util.confirmOkCancelDisplay(question):
                return False
            slicer.util.pip_install(" ".join(others))
        changed = dependencies.restart_needed(before, dependencies.imported_distribution_versions())
        if changed and slicer.util.confirmYesNoDisplay(
                f"The installation updated {', '.join(changed)}, which Slicer had already loaded. "
                "Restart Slicer now so that every module uses the new version?"):
            slicer.util.restart()
        return True

    # --- running ---

    def start(self, volumes: Mapping, options: SegmentOptions, groundTruth=None) -> PendingRun:
        """Write the four volumes to a temporary case folder and start `brats-xai segment` on it (returns at once).

        `groundTruth` (a BraTS label map on the T1ce grid, optional) is kept for the agreement table.
        """
        problems = inputs.input_problems({m: (n.GetID() if n else None) for m, n in volumes.items()})
        if problems:
            raise ValueError(" ".join(problems))
        reference = volumes["t1ce"]
        caseId = inputs.case_id_from_name(reference.GetName())
        workDir = Path(tempfile.mkdtemp(prefix="BraTSXAI-", dir=slicer.app.temporaryPath))
        try:
            caseDir = workDir / "input" / caseId
            caseDir.mkdir(parents=True)
            for modality in inputs.MODALITIES:
                self._writeVolume(volumes[modality], caseDir / inputs.input_file_name(caseId, modality))
            command = segment_command(python_executable(), caseDir, workDir / "output", options)
            logging.info("BraTSXAI: %s", argv_text(command))
            process = BackgroundRun(command, cwd=PROJECT_ROOT)
        except BaseException:
            shutil.rmtree(workDir, ignore_errors=True)
            raise
        return PendingRun(process, workDir, dict(volumes), groundTruth)

    @staticmethod
    def _writeVolume(volumeNode, path: Path) -> None:
        """Write a volume with a temporary storage node, so the user's node keeps its own file and settings."""
        storageNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        try:
            storageNode.SetFileName(str(path))
            storageNode.UseCompressionOff()
            if not storageNode.WriteData(volumeNode):
                raise RuntimeError(f"could not write {volumeNode.GetName()} to {path}")
        finally:
            slicer.mrmlScene.RemoveNode(storageNode)

    @staticmethod
    def discard(run: PendingRun) -> None:
        """Delete a run's temporary files (nodes hold their own copies of the data)."""
        shutil.rmtree(run.workDir, ignore_errors=True)

    def segment(self, t1, t1ce, t2, flair, model: str = "all", explain=DEFAULT_EXPLANATIONS, device: str = "auto",
                groundTruth=None, onEvent: Optional[Callable] = None) -> SegmentationResult:
        """Segment and explain one case, blocking until done; for the Python console and tests.

        `model` is a `brats-xai --model` selector: unet, resunet, attunet, all, a registry id or a weights path.
        `explain` holds "gradcam", "attention" and/or "attention-softmax"; `device` is auto, cpu or cuda.
        Raises RuntimeError on failure.
        """
        if not self.ensureDependencies(askConfirmation=True):
            raise RuntimeError("the required Python packages are not installed")
        options = SegmentOptions(model=model, explain=tuple(explain), device=device)
        run = self.start({"t1": t1, "t1ce": t1ce, "t2": t2, "flair": flair}, options, groundTruth)
        try:
            outcome = run.process.wait(onEvent or _logEvent)
            if not outcome.succeeded:
                raise RuntimeError(f"segmentation failed: {outcome.describe()}")
            return self.importResults(run)
        finally:
            run.process.cancel()  # stops the child if waiting was interrupted (nothing to do once it has ended)
            self.discard(run)

    # --- results ---

    def importResults(self, run: PendingRun) -> SegmentationResult:
        """Create the nodes the manifest describes, in a new folder under the reference volume's study.

        Every output's grid is checked (from the file headers) before the first node is made, and if making a node
        fails the nodes made so far are removed again: the scene gets all of a run or nothing.
        """
        manifestPath = Path(run.process.outcome.manifest)
        if not manifestPath.is_absolute():
            manifestPath = PROJECT_ROOT / manifestPath  # the child's working directory
        plan = manifest.plan_nodes(manifestPath)
        reference = run.volumes[plan.reference_modality]
        referenceMatrix = _ijkToRas(reference)
        referenceShape = slicer.util.arrayFromVolume(reference).shape
        for spec in (*plan.segmentations, *plan.overlays):
            shape, matrix = geometry.read_grid(spec.path)
            if not geometry.same_grid(matrix, shape, referenceMatrix, referenceShape):
                raise RuntimeError(f"{spec.path.name} does not lie on the {plan.reference_modality} grid, "
                                   "so it cannot be shown without resampling")
        truth = None
        if run.groundTruth is not None and _onSameGrid(run.groundTruth, reference):
            truth = np.rint(slicer.util.arrayFromVolume(run.groundTruth)).astype(np.int16)
        elif run.groundTruth is not None:
            logging.warning("BraTSXAI: %s is not on the reference grid; no Dice against it", run.groundTruth.GetName())
        if plan.skipped:
            logging.info("BraTSXAI: outputs not shown as nodes: %s", ", ".join(plan.skipped))

        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        study = shNode.GetItemParent(shNode.GetItemByDataNode(reference))
        folder = shNode.CreateFolderItem(study, f"BraTSXAI {plan.case_id}")

        def place(node, kind):
            node.SetAttribute(OUTPUT_ATTRIBUTE, kind)
            if node.IsA("vtkMRMLTransformableNode"):  # volumes and segmentations follow the input's transform
                node.SetAndObserveTransformNodeID(reference.GetTransformNodeID())
            shNode.SetItemParent(shNode.GetItemByDataNode(node), folder)
            return node

        try:
            labelMaps, segmentations, overlays = {}, {}, []
            for spec in plan.segmentations:
                labelMaps[spec.model] = geometry.read_volume(spec.path)[0]
                segmentations[spec.model] = place(
                    self._addSegmentation(spec, labelMaps[spec.model], referenceMatrix, reference), "labels")
            for spec in plan.overlays:
                overlays.append((spec, place(self._addOverlay(spec, geometry.read_volume(spec.path)[0],
                                                              referenceMatrix), spec.kind)))
            rows = agreement.agreement_rows(labelMaps, truth) if len(labelMaps) > 1 or truth is not None else []
            table = place(self._addAgreementTable(plan.case_id, rows), "agreement") if rows else None
        except BaseException:
            shNode.RemoveItem(folder)  # and every node placed in it
            raise
        slicer.util.setSliceViewerLayers(background=reference)
        return SegmentationResult(folder, reference, segmentations, overlays, table, plan, rows)

    @staticmethod
    def _addSegmentation(spec, labels, referenceMatrix, reference):
        """One segmentation node with a segment per BraTS label, standard names, colours and terminology.

        Labels the network did not predict still get an (empty) segment, so WT/TC/ET stay derivable and editable.
        """
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", spec.name)
        labelmapNode = slicer.util.addVolumeFromArray(labels.astype(np.uint8), referenceMatrix, spec.name,
                                                      "vtkMRMLLabelMapVolumeNode")
        colorNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLColorTableNode", f"{spec.name} colours")
        try:
            colorNode.SetTypeToUser()
            colorNode.SetNumberOfColors(max(s.value for s in spec.segments) + 1)
            for segment in spec.segments:  # segment names and colours come from the labelmap's colour table
                colorNode.SetColor(segment.value, segment.name, *segment.color, 1.0)
            labelmapNode.GetDisplayNode().SetAndObserveColorNodeID(colorNode.GetID())
            present = [s for s in spec.segments if np.any(labels == s.value)]
            if len(present) == 1:  # a single label is named after the labelmap node instead of the colour table
                labelmapNode.SetName(present[0].name)
            segmentationNode.CreateDefaultDisplayNodes()
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(reference)
            if present and not slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(
                    labelmapNode, segmentationNode):
                raise RuntimeError(f"could not import the label map of {spec.name}")
        except BaseException:
            slicer.mrmlScene.RemoveNode(segmentationNode)
            raise
        finally:
            slicer.mrmlScene.RemoveNode(labelmapNode)
            slicer.mrmlScene.RemoveNode(colorNode)
        segmentation = segmentationNode.GetSegmentation()
        for segmentSpec in spec.segments:
            segmentId = segmentation.GetSegmentIdBySegmentName(segmentSpec.name)
            if not segmentId:
                segmentId = segmentation.AddEmptySegment("", segmentSpec.name, segmentSpec.color)
            segment = segmentation.GetSegment(segmentId)
            segment.SetName(segmentSpec.name)
            segment.SetColor(*segmentSpec.color)
            segment.SetTag(segment.GetTerminologyEntryTagName(), segmentSpec.terminology)
        return segmentationNode

    @staticmethod
    def _addOverlay(spec, array, referenceMatrix):
        """A heat-map volume: colour map, window over the manifest's range, lowest values transparent."""
        node = slicer.util.addVolumeFromArray(array.astype(np.float32), referenceMatrix, spec.name)
        colorNode = slicer.util.getFirstNodeByClassByName("vtkMRMLColorNode", spec.colormap)
        if colorNode is None:
            logging.warning("BraTSXAI: colour map %s not found, using Inferno", spec.colormap)
            colorNode = slicer.mrmlScene.GetNodeByID(FALLBACK_COLOR_NODE_ID)
        if colorNode is None:
            slicer.mrmlScene.RemoveNode(node)
            raise RuntimeError(f"neither colour map {spec.colormap} nor Inferno is loaded in this Slicer")
        display = node.GetDisplayNode()
        with slicer.util.NodeModify(display):
            display.SetAndObserveColorNodeID(colorNode.GetID())
            display.SetAutoWindowLevel(0)
            display.SetWindowLevelMinMax(*spec.window)
            display.SetAutoThreshold(0)
            display.SetApplyThreshold(1)
            display.SetThreshold(spec.threshold, max(spec.window[1], float(array.max())))
        return node

    @staticmethod
    def _addAgreementTable(caseId, rows):
        table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", f"{caseId} agreement (Dice)")
        names = vtk.vtkStringArray()
        names.SetName("Comparison")
        columns = []
        for region in agreement.REGIONS:
            column = vtk.vtkDoubleArray()
            column.SetName(f"Dice {region}")
            columns.append(column)
        for row in rows:
            names.InsertNextValue(row.comparison)
            for column, value in zip(columns, row.dice):
                column.InsertNextValue(value)
        for column in [names] + columns:
            table.AddColumn(column)
        return table

    # --- display ---

    def showOverlay(self, overlayNode, backgroundNode, in3D=False) -> None:
        """Show a heat map over the MRI in every slice view (and as volume rendering if asked)."""
        slicer.util.setSliceViewerLayers(background=backgroundNode if backgroundNode is not None else "keep-current",
                                         foreground=overlayNode, foregroundOpacity=manifest.OVERLAY_OPACITY)
        self.setVolumeRendering(overlayNode, in3D)

    def hideOverlay(self, overlayNode) -> None:
        slicer.util.setSliceViewerLayers(foreground=None)
        self.setVolumeRendering(overlayNode, False)

    @staticmethod
    def setVolumeRendering(volumeNode, visible: bool) -> None:
        """Volume rendering with the node's colour map, window and threshold (hidden values stay transparent)."""
        volumeRenderingLogic = slicer.modules.volumerendering.logic()
        displayNode = volumeRenderingLogic.GetFirstVolumeRenderingDisplayNode(volumeNode)
        if visible:
            if displayNode is None:
                displayNode = volumeRenderingLogic.CreateDefaultVolumeRenderingNodes(volumeNode)
            volumeRenderingLogic.CopyDisplayToVolumeRenderingDisplayNode(displayNode, volumeNode.GetDisplayNode())
            displayNode.SetVisibility(True)
        elif displayNode is not None:
            displayNode.SetVisibility(False)


def _ijkToRas(volumeNode) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def _onSameGrid(volumeNode, referenceNode) -> bool:
    """Same voxel grid, judged from the image dimensions and IJK-to-RAS matrices (no voxel data copied)."""
    def shape(node):
        imageData = node.GetImageData()
        return tuple(reversed(imageData.GetDimensions())) if imageData is not None else None
    return shape(volumeNode) is not None and geometry.same_grid(
        _ijkToRas(volumeNode), shape(volumeNode), _ijkToRas(referenceNode), shape(referenceNode))


def _logEvent(event) -> None:
    if isinstance(event, progress.Progress):
        logging.info("BraTSXAI [%3d%%] %s", progress.percent(event.fraction), event.stage)
    elif isinstance(event, progress.Failure):
        logging.error("BraTSXAI: %s", event.text())
    elif isinstance(event, progress.LogLine):
        logging.info("BraTSXAI: %s", event.text)


#
# BraTSXAITest
#


class BraTSXAITest(ScriptedLoadableModuleTest):
    """Runs inside Slicer: a synthetic case from the library, segmented with tiny untrained networks."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_inputsFromNames()
        self.setUp()
        self.test_cancelLeavesSceneAsItWas()
        self.setUp()
        self.test_segmentPhantom()

    def _phantomNodes(self):
        import SimpleITK as sitk
        from BraTSXAILib.phantom import make_phantom

        case = make_phantom(shape=(40, 48, 40), spacing=(2.5, 2.5, 2.5), seed=3)
        nodes = {m: slicer.util.addVolumeFromArray(sitk.GetArrayFromImage(image), geometry.ijk_to_ras(image),
                                                  f"{case.case_id}_{m}")
                 for m, image in case.images.items()}
        truth = slicer.util.addVolumeFromArray(sitk.GetArrayFromImage(case.label), geometry.ijk_to_ras(case.label),
                                               f"{case.case_id}_seg", "vtkMRMLLabelMapVolumeNode")
        return nodes, truth

    def _tinyModels(self, folder: Path):
        """A registry of three untrained width-8 networks, so the test needs no download."""
        import json

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

    def test_inputsFromNames(self):
        self.delayDisplay("Inputs are chosen by their names")
        names = ["case7_t1", "case7-t1c", "CASE7_T2", "case7_flair", "unrelated"]
        nodes = {name: slicer.util.addVolumeFromArray(np.zeros((4, 5, 6), np.float32), name=name) for name in names}
        logic = BraTSXAILogic()
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
        nodes, _ = self._phantomNodes()
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        logic = BraTSXAILogic()
        run = logic.start(nodes, SegmentOptions(model="all"))
        run.process.cancel()
        outcome = run.process.wait()
        logic.discard(run)
        self.assertTrue(outcome.cancelled)
        self.assertFalse(run.workDir.exists())
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)

    def test_segmentPhantom(self):
        self.delayDisplay("Segmenting a synthetic case with three tiny networks")
        nodes, truth = self._phantomNodes()
        logic = BraTSXAILogic()
        with tempfile.TemporaryDirectory() as folder:
            environment = self._tinyModels(Path(folder))
            saved = {key: os.environ.get(key) for key in environment}
            os.environ.update(environment)  # the child process inherits the registry of tiny models
            try:
                result = logic.segment(nodes["t1"], nodes["t1ce"], nodes["t2"], nodes["flair"], model="all",
                                       device="cpu", groundTruth=truth)
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

        reference = nodes["t1ce"]
        referenceMatrix = _ijkToRas(reference)
        referenceShape = slicer.util.arrayFromVolume(reference).shape
        self.assertEqual(sorted(result.segmentations), ["attunet", "resunet", "unet"])
        for segmentationNode in result.segmentations.values():
            segmentation = segmentationNode.GetSegmentation()
            names = sorted(segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments()))
            self.assertEqual(names, ["edema", "enhancing tumour", "necrotic core"])
            for i in range(segmentation.GetNumberOfSegments()):
                segment = segmentation.GetNthSegment(i)
                self.assertTrue(segment.HasTag(segment.GetTerminologyEntryTagName()))

        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        for node in result.nodes():
            self.assertEqual(shNode.GetItemParent(shNode.GetItemByDataNode(node)), result.folderItemId)
        for spec, node in result.overlays:
            array = slicer.util.arrayFromVolume(node)
            self.assertEqual(array.shape, referenceShape)
            self.assertTrue(np.allclose(_ijkToRas(node), referenceMatrix))
            self.assertTrue(np.isfinite(array).all())
            display = node.GetDisplayNode()
            self.assertEqual(display.GetColorNode().GetName(), spec.colormap)
            self.assertAlmostEqual(display.GetWindowLevelMin(), spec.window[0], places=5)
            self.assertAlmostEqual(display.GetWindowLevelMax(), spec.window[1], places=5)
            self.assertEqual(display.GetApplyThreshold(), 1)

        for model in result.segmentations:
            for region in agreement.REGIONS:
                heatmap = result.overlay(model, "gradcam", region)
                self.assertIsNotNone(heatmap, f"no Grad-CAM {region} for {model}")
                values = slicer.util.arrayFromVolume(heatmap)
                self.assertGreaterEqual(values.min(), 0.0)
                self.assertLessEqual(values.max(), 1.0 + 1e-6)
        self.assertTrue(any(s.kind == "attention" and s.model == "attunet" for s, _ in result.overlays))
        self.assertEqual(result.agreementTable.GetNumberOfRows(), 3 + 3)  # three pairs, three against the truth

        overlay = result.overlays[0][1]
        logic.showOverlay(overlay, reference, in3D=True)
        composite = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSliceCompositeNode")
        if composite is not None:  # slice views exist only with a main window
            self.assertEqual(composite.GetForegroundVolumeID(), overlay.GetID())
            self.assertAlmostEqual(composite.GetForegroundOpacity(), manifest.OVERLAY_OPACITY)
            logic.hideOverlay(overlay)
            self.assertIsNone(composite.GetForegroundVolumeID())
        self.delayDisplay("Test passed")
