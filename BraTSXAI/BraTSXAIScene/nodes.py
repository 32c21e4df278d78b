"""One MRML node per output: a segmentation per label map, a heat-map volume per overlay, the agreement table.

Each builder either returns a complete node or leaves nothing behind (its helper nodes are removed either way).
"""
from __future__ import annotations

import logging

import numpy as np
import slicer
import vtk

from BraTSXAIHelpers import agreement

FALLBACK_COLOR_NODE_ID = "vtkMRMLColorTableNodeFileInferno.txt"  # Slicer's file-based Inferno table


def addSegmentation(spec, labels: np.ndarray, referenceMatrix: np.ndarray, reference):
    """A segmentation node with a segment per BraTS label, standard names, colours and terminology.

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
        segmentation = segmentationNode.GetSegmentation()
        for segmentSpec in spec.segments:
            segmentId = segmentation.GetSegmentIdBySegmentName(segmentSpec.name)
            if not segmentId:
                segmentId = segmentation.AddEmptySegment("", segmentSpec.name, segmentSpec.color)
            segment = segmentation.GetSegment(segmentId)
            segment.SetName(segmentSpec.name)
            segment.SetColor(*segmentSpec.color)
            segment.SetTag(segment.GetTerminologyEntryTagName(), segmentSpec.terminology)
    except BaseException:
        slicer.mrmlScene.RemoveNode(segmentationNode)
        raise
    finally:
        slicer.mrmlScene.RemoveNode(labelmapNode)
        slicer.mrmlScene.RemoveNode(colorNode)
    return segmentationNode


def colorNodeFor(name: str):
    """The colour node the manifest names, else Slicer's Inferno, else an error saying neither is loaded."""
    colorNode = slicer.util.getFirstNodeByClassByName("vtkMRMLColorNode", name)
    if colorNode is None:
        logging.warning("BraTSXAI: colour map %s not found, using Inferno", name)
        colorNode = slicer.mrmlScene.GetNodeByID(FALLBACK_COLOR_NODE_ID)
    if colorNode is None:
        raise RuntimeError(f"neither colour map {name} nor Inferno is loaded in this Slicer")
    return colorNode


def addOverlay(spec, array: np.ndarray, referenceMatrix: np.ndarray):
    """A heat-map volume: colour map, window over the manifest's range, lowest values transparent."""
    colorNode = colorNodeFor(spec.colormap)
    node = slicer.util.addVolumeFromArray(array.astype(np.float32), referenceMatrix, spec.name)
    try:
        display = node.GetDisplayNode()
        with slicer.util.NodeModify(display):
            display.SetAndObserveColorNodeID(colorNode.GetID())
            display.SetAutoWindowLevel(0)
            display.SetWindowLevelMinMax(*spec.window)
            display.SetAutoThreshold(0)
            display.SetApplyThreshold(1)
            display.SetThreshold(spec.threshold, max(spec.window[1], float(array.max())))
    except BaseException:
        slicer.mrmlScene.RemoveNode(node)
        raise
    return node


def addAgreementTable(caseId: str, rows):
    """A table node: one row per comparison, a Dice column per region."""
    return addRegionTable(f"{caseId} agreement (Dice)", "Comparison", "Dice ",
                          [(row.comparison, row.dice) for row in rows])


def addTrustTable(caseId: str, rows):
    """A table node of the primary result's expected Dice and each network's share of evidence per sequence."""
    return addRegionTable(f"{caseId} expected Dice and sequence shares", "Measure", "", rows)


def addRegionTable(name: str, firstColumn: str, prefix: str, rows):
    """A table node with a text column and one number column per region (WT, TC, ET)."""
    table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", name)
    names = vtk.vtkStringArray()
    names.SetName(firstColumn)
    columns = []
    for region in agreement.REGIONS:
        column = vtk.vtkDoubleArray()
        column.SetName(f"{prefix}{region}")
        columns.append(column)
    for label, values in rows:
        names.InsertNextValue(label)
        for column, value in zip(columns, values):
            column.InsertNextValue(value)
    for column in [names] + columns:
        table.AddColumn(column)
    return table
