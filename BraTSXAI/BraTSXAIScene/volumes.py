"""Volume nodes as the module sees them: their grid, writing them to a file, and which ones are inputs.

Nodes the module created carry OUTPUT_ATTRIBUTE, so a heat map is never offered or chosen as an MRI input.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import slicer
import vtk

from BraTSXAIHelpers import geometry, inputs

OUTPUT_ATTRIBUTE = "BraTSXAI.output"  # value: the kind of output ("labels", "gradcam", "agreement", ...)


def ijkToRas(volumeNode) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def arrayShape(volumeNode):
    """(k, j, i) shape of the voxel array, or None without image data (no voxels copied)."""
    imageData = volumeNode.GetImageData()
    return tuple(reversed(imageData.GetDimensions())) if imageData is not None else None


def onSameGrid(volumeNode, referenceNode) -> bool:
    """Same voxel grid, judged from the image dimensions and IJK-to-RAS matrices."""
    shape = arrayShape(volumeNode)
    return shape is not None and geometry.same_grid(ijkToRas(volumeNode), shape, ijkToRas(referenceNode),
                                                    arrayShape(referenceNode))


def writeVolume(volumeNode, path: Path) -> None:
    """Write a volume with a temporary storage node, so the user's node keeps its own file and settings."""
    storageNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    try:
        storageNode.SetFileName(str(path))
        storageNode.UseCompressionOff()
        if not storageNode.WriteData(volumeNode):
            raise RuntimeError(f"could not write {volumeNode.GetName()} to {path}")
    finally:
        slicer.mrmlScene.RemoveNode(storageNode)


def isModuleOutput(node) -> bool:
    return bool(node.GetAttribute(OUTPUT_ATTRIBUTE))


def moduleOutputNodeIds() -> list:
    """IDs of every volume the module created; the widget hides them from its input selectors."""
    return [node.GetID() for node in slicer.util.getNodesByClass("vtkMRMLVolumeNode") if isModuleOutput(node)]


def candidateInputs() -> list:
    """Plain scalar volumes the user loaded (no label maps, no module outputs), in scene order."""
    return [node for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
            if node.GetClassName() == "vtkMRMLScalarVolumeNode" and not isModuleOutput(node)]


def inputsFromNames(current: Mapping) -> dict:
    """The four inputs with empty ones filled from volume names (modality -> node or None); choices are kept."""
    volumes = candidateInputs()
    byId = {node.GetID(): node for node in volumes}
    currentIds = {m: (node.GetID() if node is not None else None) for m, node in current.items()}
    chosen = inputs.assign_by_name([(node.GetID(), node.GetName()) for node in volumes], currentIds)
    return {m: (current.get(m) if current.get(m) is not None else byId.get(nodeId)) for m, nodeId in chosen.items()}


def inputProblems(volumes: Mapping, groundTruth=None) -> list:
    """Why these inputs cannot be segmented as they are (empty when they can)."""
    problems = inputs.input_problems({m: (n.GetID() if n is not None else None) for m, n in volumes.items()})
    reference = volumes.get("t1ce")
    for modality, node in volumes.items():
        if node is not None and isModuleOutput(node):
            problems.append(f"{inputs.MODALITY_LABELS[modality]} is a BraTSXAI output, not an MRI sequence.")
        if node is not None and reference is not None and node.GetTransformNodeID() != reference.GetTransformNodeID():
            problems.append(f"{inputs.MODALITY_LABELS[modality]} is under a different transform than T1ce; "
                            "harden the transforms first.")
    if groundTruth is not None and groundTruth.GetID() in {n.GetID() for n in volumes.values() if n is not None}:
        problems.append("The ground truth is one of the MRI inputs; pick a label map.")
    elif groundTruth is not None and reference is not None and not onSameGrid(groundTruth, reference):
        problems.append("The ground truth does not lie on the T1ce grid (same size, spacing, origin, axes).")
    return problems
