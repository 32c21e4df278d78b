"""BraTSXAI: segment a brain tumour in four MRI sequences and show where the networks looked, inside 3D Slicer.

This file is the Qt side: the module description, the parameter node, the widget and its dialogs. The run and the
scene work (volumes to files, the background process, manifest to nodes, overlays) are in BraTSXAIScene, which
imports no Qt and is tested on Slicer's core libraries (Testing/Slicer); everything Slicer-free is in
BraTSXAIHelpers. docs/slicer.md describes the module for users.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from BraTSXAIHelpers import inputs, manifest, paths, progress
from BraTSXAIHelpers.command import (DEVICE_CHOICES, LAYER_CHOICES, MEASURED, METHOD_CHOICES, MODEL_CHOICES,
                                     RunOptions, argv_text)

MODULE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = paths.project_root(MODULE_DIR)
if str(PROJECT_ROOT) not in sys.path:  # source tree: BraTSXAILib sits beside the module folder, not in it
    sys.path.insert(0, str(PROJECT_ROOT))

from BraTSXAIGui.resultspanel import OverlayTree  # noqa: E402
from BraTSXAIGui.selftest import BraTSXAITest  # noqa: E402,F401  (Slicer finds <Module>Test in this module)
from BraTSXAIScene import display, results, sampledata, volumes  # noqa: E402
from BraTSXAIScene.logic import PendingInstall, PendingRun, SegmentLogic, logEvent  # noqa: E402

POLL_INTERVAL_MS = 200
INPUT_SELECTORS = ("t1Selector", "t1ceSelector", "t2Selector", "flairSelector", "groundTruthSelector")


class BraTSXAI(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "BraTSXAI"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["BraTSXAI developers"]
        self.parent.helpText = """
Segments a glioma in T1, T1ce, T2 and FLAIR MRI with three 3D UNets (UNet, Residual UNet, Attention UNet) and their
ensemble, and shows where each network looked: Grad-CAM heat maps for whole tumour, tumour core and enhancing
tumour, and the attention gates of the Attention UNet. Pick the four volumes (filled from their names), press
Segment, and toggle the heat maps over the MRI. Sample Data has a synthetic case to try. Research software, not
for clinical use.
"""
        self.parent.acknowledgementText = """
Built on 3D Slicer, PyTorch, MONAI and SimpleITK. Trained on the BraTS challenge data.
"""
        # The base class looks for the icon beside the module file, which holds only in an installed extension.
        self.parent.icon = qt.QIcon(str(paths.resource_path(MODULE_DIR, "Icons/BraTSXAI.png")))
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """The synthetic phantom in Sample Data (as SlicerMONAIAuto3DSeg registers its cases), made on the spot."""
    import SampleData

    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="BraTSXAI", sampleName=sampledata.CASE_ID,
        thumbnailFileName=str(paths.resource_path(MODULE_DIR, "Icons/BraTSXAI.png")),
        uris=[], fileNames=[], nodeNames=[sampledata.CASE_ID], loadFileTypes=[],
        customDownloader=lambda source: sampledata.loadPhantomCase())


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
    uncertainty: bool = True
    modality: bool = False
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "Automatic"
    gradcamLayer: Annotated[str, Choice(list(LAYER_CHOICES))] = MEASURED
    gradcamMethod: Annotated[str, Choice(list(METHOD_CHOICES))] = MEASURED


class BraTSXAIWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._task = None  # PendingRun or PendingInstall while a background process works
        self._importing = False  # results being turned into nodes: no second run may start
        self._cancelImport = False
        self._result = None  # SegmentationResult of the last run
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
        self._overlayTree = OverlayTree(self.ui.overlayListWidget.layout(), self.onOverlayToggled)

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
        if self._task is not None:
            self.logic.cancel(self._task)  # an installation that is writing finishes on its own
            if isinstance(self._task, PendingRun):
                self.logic.discard(self._task)
            self._task = None
        if self._pollTimer is not None:
            self._pollTimer.stop()
        self.removeObservers()
        self.setParameterNode(None)

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        if isinstance(self._task, PendingRun):  # its inputs are about to disappear
            self.logic.cancel(self._task)
        self._cancelImport = self._importing
        self.setParameterNode(None)
        self._clearResultWidgets()

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onNodeAdded(self, caller, event):
        # Deferred: a volume being loaded gets its name, image and attributes only after it is added to the scene.
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
        hidden = volumes.moduleOutputNodeIds()  # the module's own heat maps are no MRI input
        for name in INPUT_SELECTORS:
            getattr(self.ui, name).sortFilterProxyModel().hiddenNodeIDs = hidden
        if self._parameterNode is not None and self._task is None and not self._importing:
            self.logic.fillInputsFromNames(self._parameterNode)

    def _checkCanSegment(self, caller=None, event=None):
        if self._task is not None or self._importing or self._parameterNode is None:
            return
        problems = self.logic.inputProblems(self._parameterNode)
        self.ui.segmentButton.enabled = not problems
        self.ui.segmentButton.toolTip = "\n".join(problems) if problems else "Segment the tumour (runs in the background)."

    # --- running ---

    def onSegmentButton(self):
        """Segment; first install what the library needs if anything is missing. While busy: Cancel."""
        if self._task is not None or self._importing:
            self._cancelImport = self._importing
            if self._task is not None:
                self.logic.cancel(self._task)
            self.ui.segmentButton.enabled = False
            self.ui.statusLabel.text = "Cancelling…"
            return
        try:
            unmet = self.logic.unmetDependencies()
            if unmet and not slicer.util.confirmOkCancelDisplay(self.logic.installQuestion(unmet)):
                self.ui.statusLabel.text = "Not started: the required Python packages are not installed."
                return
            self.ui.logTextEdit.clear()
            self._task = self.logic.startInstall(unmet) if unmet else self._startRun()
        except Exception as error:  # the GUI boundary: say what went wrong, keep the trace in the log
            logging.exception("BraTSXAI: the segmentation could not start")
            slicer.util.errorDisplay(f"Could not start the segmentation: {error}")
            return
        self._setRunning(True)
        self._pollTimer.start()

    def _startRun(self):
        parameters = self._parameterNode
        options = RunOptions.from_parameters(parameters)
        run = self.logic.start(self.logic.inputVolumes(parameters), options, parameters.groundTruth)
        self._appendLog(argv_text(run.process.command))
        return run

    def onPoll(self):
        task = self._task
        if task is None:
            return
        for event in task.process.poll():
            self._showEvent(event)
        if isinstance(task, PendingInstall):
            self.ui.statusLabel.text = task.process.status
            self.ui.progressBar.value = progress.percent(task.process.fraction)
        if not task.process.finished:
            return
        self._pollTimer.stop()
        self._task = None
        if isinstance(task, PendingInstall):
            self._installFinished(task)
        else:
            self._runFinished(task)

    def _installFinished(self, task):
        outcome = task.process.outcome
        self._setRunning(False)
        self.ui.statusLabel.text = outcome.describe()
        if not outcome.succeeded:
            if not outcome.cancelled:
                slicer.util.errorDisplay(outcome.describe())
        elif not self.logic.offerRestart(task):
            self.onSegmentButton()  # on to the segmentation the user asked for

    def _runFinished(self, run):
        outcome = run.process.outcome
        try:
            if outcome.succeeded:
                self._importing, self._cancelImport = True, False  # Cancel stays: it stops between two nodes
                self.ui.statusLabel.text = "Creating nodes…"
                slicer.app.processEvents()
                self._showResult(self.logic.importResults(run, shouldStop=self._importShouldStop))
            else:
                self.ui.statusLabel.text = outcome.describe()
                if not outcome.cancelled:
                    slicer.util.errorDisplay(f"Segmentation failed: {outcome.describe()}")
        except results.ImportCancelled as cancelled:
            self.ui.statusLabel.text = str(cancelled)
        except Exception as error:  # the GUI boundary: say what went wrong, keep the trace in the log
            logging.exception("BraTSXAI: importing the results failed")
            self.ui.statusLabel.text = f"Importing the results failed: {error}"
            slicer.util.errorDisplay(f"Importing the results failed: {error}")
        finally:
            self.logic.discard(run)
            self._importing = False
            self._setRunning(False)

    def _importShouldStop(self):
        slicer.app.processEvents()  # a click on Cancel lands here
        return self._cancelImport

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
            self.ui.segmentButton.toolTip = "Stop: the scene stays as it was, no package is left half-installed."
        else:
            self._checkCanSegment()

    # --- results ---

    def _clearResultWidgets(self):
        self._overlayTree.clear()
        self.ui.agreementTableView.setMRMLTableNode(None)
        self._result = None

    def _showResult(self, result):
        self._clearResultWidgets()
        self._result = result
        self.ui.agreementTableView.setMRMLTableNode(result.agreementTable)
        self._overlayTree.show(result)  # checks, and so shows, the first explanation
        warnings = "; ".join(result.plan.warnings)
        quality = manifest.quality_text(result.plan)
        self.ui.statusLabel.text = f"Done: {len(result.nodes())} nodes for {result.plan.case_id}." + (
            f" {quality} (table: {result.trustTable.GetName()})." if quality else "") + (
            f" Warnings: {warnings}" if warnings else "")
        self.ui.resultsCollapsibleButton.collapsed = False
        self.onAutoAssign()

    def onOverlayToggled(self, node, checked):
        if checked:
            display.showOverlay(node, self._result.reference, in3D=self.ui.show3DCheckBox.checked,
                                others=[n for _, n in self._result.overlays])
        else:
            display.hideOverlay(node)

    def onShow3DToggled(self, checked):
        if self._result is None:
            return
        shown = self._overlayTree.checkedNode()
        for _, node in self._result.overlays:
            display.setVolumeRendering(node, checked and node is shown)


class BraTSXAILogic(ScriptedLoadableModuleLogic, SegmentLogic):
    """Everything the module does, usable from the Python console without the widget.

    Example (blocking)::

        import BraTSXAI
        logic = BraTSXAI.BraTSXAILogic()
        result = logic.segment(t1Node, t1ceNode, t2Node, flairNode, model="all", device="auto")
        result.segmentations["ensemble"], result.overlay("unet", "gradcam", "ET")
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return BraTSXAIParameterNode(super().getParameterNode())

    @staticmethod
    def inputVolumes(parameterNode) -> dict:
        return {modality: getattr(parameterNode, modality) for modality in inputs.MODALITIES}

    def fillInputsFromNames(self, parameterNode) -> None:
        """Fill empty T1/T1ce/T2/FLAIR choices from the names of the loaded volumes (keeps the user's choices)."""
        chosen = volumes.inputsFromNames(self.inputVolumes(parameterNode))
        with slicer.util.NodeModify(parameterNode):
            for modality, node in chosen.items():
                if getattr(parameterNode, modality) is None and node is not None:
                    setattr(parameterNode, modality, node)

    def inputProblems(self, parameterNode) -> list:
        return volumes.inputProblems(self.inputVolumes(parameterNode), parameterNode.groundTruth)

    def ensureDependencies(self, askConfirmation=True) -> bool:
        """Install what the library needs, blocking (the widget does it in the background, with Cancel);
        False when the user declined, RuntimeError when the installation failed."""
        unmet = self.unmetDependencies()
        if not unmet:
            return True
        if askConfirmation and not slicer.util.confirmOkCancelDisplay(self.installQuestion(unmet)):
            return False
        pending = self.startInstall(unmet)
        outcome = pending.process.wait(logEvent)
        if not outcome.succeeded:
            raise RuntimeError(outcome.describe())
        self.offerRestart(pending)
        return True

    def offerRestart(self, pending) -> bool:
        """Offer a restart when pip replaced a package Slicer had loaded; True when Slicer restarts."""
        changed = self.restartNeeded(pending)
        if changed and slicer.util.confirmYesNoDisplay(
                f"The installation updated {', '.join(changed)}, which Slicer had already loaded. "
                "Restart Slicer now so that every module uses the new version?"):
            slicer.util.restart()
            return True
        return False

    # the console API of earlier versions
    showOverlay = staticmethod(display.showOverlay)
    hideOverlay = staticmethod(display.hideOverlay)
    setVolumeRendering = staticmethod(display.setVolumeRendering)
