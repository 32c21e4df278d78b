"""Slicer's core as Slicer itself sets it up, without its Qt application (the slicer-core wheel).

Built here what qSlicerCoreApplication and the loadable modules normally build: the scene, the application logic,
the module logics the BraTSXAI module calls (exposed as `slicer.mrmlScene`, `slicer.app`, `slicer.modules.<name>
.logic()`), three slice views' nodes and composite nodes, and what Slicer's Qt layer adds on its own: a
subject-hierarchy item for every data node as it is added, removed with it (Slicer's subject-hierarchy plugin
logic does both), colour files (Inferno is a file in Slicer, not built in) and the volume-rendering presets.
"""
from __future__ import annotations

import tempfile
import types
from pathlib import Path

import numpy as np
import slicer
import vtk

SLICE_VIEWS = ("Red", "Yellow", "Green")
COLOR_FILES = {"Inferno": "inferno", "ColdToHotRainbow": "coolwarm"}  # Slicer colour file -> matplotlib map
DATA_NODE_CLASSES = ("vtkMRMLVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLTableNode")


def write_color_file(path: Path, name: str, colormap: str) -> None:
    """A 256-entry colour table in Slicer's colour file format (`index name r g b a`, 0..255)."""
    from matplotlib import colormaps

    rgba = np.rint(colormaps[colormap](np.linspace(0.0, 1.0, 256)) * 255).astype(int)
    lines = [f"{i} {name}{i} {r} {g} {b} {a}" for i, (r, g, b, a) in enumerate(rgba)]
    path.write_text("# Color table file " + path.name + "\n" + "\n".join(lines) + "\n")


class App:
    """What the module uses of `slicer.app` (qSlicerApplication)."""

    def __init__(self, app_logic, temporary_path: Path):
        self._app_logic = app_logic
        self.temporaryPath = str(temporary_path)

    def applicationLogic(self):
        return self._app_logic

    def processEvents(self, *args):
        pass

    def layoutManager(self):
        return None  # no views in a Qt layout; slice composite nodes exist all the same

    def testingEnabled(self):
        return True


class SlicerCore:
    """One scene with its logics; `install()` exposes it through the `slicer` package as Slicer does."""

    def __init__(self, folder: Path | None = None):
        import trame_slicer.resources

        self.folder = Path(folder or tempfile.mkdtemp(prefix="slicer-core-"))
        share = self.folder / "share"
        (share / "ColorFiles").mkdir(parents=True, exist_ok=True)
        for name, colormap in COLOR_FILES.items():
            write_color_file(share / "ColorFiles" / f"{name}.txt", name, colormap)
        (self.folder / "tmp").mkdir(exist_ok=True)
        resources = Path(trame_slicer.resources.resources_path())

        self.scene = slicer.vtkMRMLScene()
        for singleton in (slicer.vtkMRMLInteractionNode(), slicer.vtkMRMLSelectionNode()):  # as Slicer's app logic
            singleton.SetSingletonTag("Singleton")
            self.scene.AddNode(singleton)
        crosshair = slicer.vtkMRMLCrosshairNode()
        crosshair.SetCrosshairName("default")  # as qSlicerCoreApplication::setMRMLScene
        self.scene.AddNode(crosshair)
        self.app_logic = slicer.vtkSlicerApplicationLogic()
        self.app_logic.SetHomeDirectory(str(self.folder))
        self.app_logic.SetShareDirectory("share")
        self.app_logic.SetMRMLScene(self.scene)
        self.app_logic.SetSliceLogics(vtk.vtkCollection())
        self.app_logic.SetViewLogics(vtk.vtkCollection())
        for factory in (slicer.vtkMRMLSliceViewDisplayableManagerFactory,
                        slicer.vtkMRMLThreeDViewDisplayableManagerFactory):
            factory.GetInstance().SetMRMLApplicationLogic(self.app_logic)

        colors = slicer.vtkSlicerColorLogic()
        colors.SetMRMLApplicationLogic(self.app_logic)  # before the scene: it finds the colour files through it
        self.app_logic.SetColorLogic(colors)
        self.logics = {"colors": self._register("Colors", colors)}
        for name, logic, share_folder in (
                ("volumes", slicer.vtkSlicerVolumesLogic(), None),
                ("terminologies", slicer.vtkSlicerTerminologiesModuleLogic(), resources / "terminologies"),
                ("segmentations", slicer.vtkSlicerSegmentationsModuleLogic(), None),
                ("subjecthierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic(), None),
                ("tables", slicer.vtkSlicerTablesLogic(), None),
                ("data", slicer.vtkSlicerDataModuleLogic(), None),
                ("volumerendering", slicer.vtkSlicerVolumeRenderingLogic(), resources)):
            if share_folder is not None:
                logic.SetModuleShareDirectory(str(share_folder))
            self.logics[name] = self._register(name, logic)

        slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(self.scene, True)
        self.slice_logics = {}
        for view in SLICE_VIEWS:
            logic = slicer.vtkMRMLSliceLogic()
            logic.SetMRMLApplicationLogic(self.app_logic)
            logic.SetMRMLScene(self.scene)
            logic.AddSliceNode(view)
            self.app_logic.GetSliceLogics().AddItem(logic)
            self.slice_logics[view] = logic
        self.scene.AddObserver(slicer.vtkMRMLScene.NodeAddedEvent, self._on_node_added)
        self.scene.AddObserver(slicer.vtkMRMLScene.NodeAboutToBeRemovedEvent, self._on_node_about_to_be_removed)
        self.app = App(self.app_logic, self.folder / "tmp")
        self.modules = types.SimpleNamespace(**{name: types.SimpleNamespace(logic=(lambda l=logic: l))
                                                for name, logic in self.logics.items()})

    def _register(self, name: str, logic):
        logic.SetMRMLApplicationLogic(self.app_logic)
        logic.SetMRMLScene(self.scene)
        self.app_logic.SetModuleLogic(name, logic)
        return logic

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def _on_node_added(self, scene, event, node):
        """Give a data node its subject-hierarchy item, as Slicer's subject-hierarchy plugins do on NodeAdded."""
        if node.GetHideFromEditors() or not any(node.IsA(c) for c in DATA_NODE_CLASSES):
            return
        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
        if shNode is not None and not shNode.GetItemByDataNode(node):
            shNode.CreateItem(shNode.GetSceneItemID(), node)

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def _on_node_about_to_be_removed(self, scene, event, node):
        """Remove a data node's item with it (qSlicerSubjectHierarchyPluginLogic::onNodeAboutToBeRemoved)."""
        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
        item = shNode.GetItemByDataNode(node) if shNode is not None else 0
        if item:
            shNode.RemoveItem(item, False, False)

    def install(self) -> None:
        slicer.mrmlScene, slicer.app, slicer.modules = self.scene, self.app, self.modules

    def composite_nodes(self) -> list:
        return [logic.GetSliceCompositeNode() for logic in self.slice_logics.values()]

    def node_census(self) -> list[tuple[str, str]]:
        """(class, ID) of every node: equal before and after means the scene is exactly as it was."""
        return sorted((self.scene.GetNthNode(i).GetClassName(), self.scene.GetNthNode(i).GetID())
                      for i in range(self.scene.GetNumberOfNodes()))
