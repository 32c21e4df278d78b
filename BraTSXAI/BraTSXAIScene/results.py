"""From a run's manifest to nodes: every output's grid checked first, then all nodes of a run or none.

The nodes go into a new subject-hierarchy folder under the reference volume's study (or the scene root when the
reference has no study); if making one fails, the folder is removed with every node placed in it so far.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import slicer

from BraTSXAIHelpers import agreement, geometry, manifest

from . import nodes, volumes


class ImportCancelled(RuntimeError):
    """The user stopped the import; raised between two nodes, after which the ones made so far are removed."""


@dataclass
class SegmentationResult:
    """The nodes one run created, all in one subject-hierarchy folder."""

    folderItemId: int
    reference: object  # the input volume every output lies on (T1ce)
    segmentations: dict  # model -> vtkMRMLSegmentationNode, the primary result first
    overlays: list  # (manifest.OverlaySpec, vtkMRMLScalarVolumeNode)
    agreementTable: Optional[object]  # vtkMRMLTableNode, or None with a single network and no ground truth
    plan: manifest.NodePlan
    agreementRows: list = field(default_factory=list)
    trustTable: Optional[object] = None  # vtkMRMLTableNode of expected Dice and sequence shares, when asked for

    def nodes(self) -> list:
        made = list(self.segmentations.values()) + [node for _, node in self.overlays]
        return made + [table for table in (self.agreementTable, self.trustTable) if table is not None]

    def overlay(self, model: str, kind: str, target: str):
        """The heat-map node of one model, kind and target (e.g. "unet", "gradcam", "ET"), or None."""
        return next((n for s, n in self.overlays if (s.model, s.kind, s.target) == (model, kind, target)), None)

    @property
    def primaryModel(self) -> str:
        return next(iter(self.segmentations), "")


def checkGrids(plan: manifest.NodePlan, reference) -> None:
    """Refuse the run (before any node exists) if an output does not lie exactly on the reference grid."""
    referenceMatrix, referenceShape = volumes.ijkToRas(reference), volumes.arrayShape(reference)
    for spec in (*plan.segmentations, *plan.overlays):
        shape, matrix = geometry.read_grid(spec.path)
        if not geometry.same_grid(matrix, shape, referenceMatrix, referenceShape):
            raise RuntimeError(f"{spec.path.name} does not lie on the {plan.reference_modality} grid, "
                               "so it cannot be shown without resampling")


def subjectHierarchyItem(shNode, node) -> int:
    """The node's subject-hierarchy item, made under the scene root if it has none yet."""
    item = shNode.GetItemByDataNode(node)
    if not item:
        item = shNode.CreateItem(shNode.GetSceneItemID(), node)
    return item


def importResults(manifestPath: Path, inputVolumes: dict,
                  shouldStop: Optional[Callable[[], bool]] = None) -> SegmentationResult:
    """Create the nodes a manifest describes; the scene gets all of a run or, on any failure, nothing.

    `shouldStop` is asked after every node (the widget lets Slicer handle a click on Cancel there).
    """
    plan = manifest.plan_nodes(manifestPath)
    reference = inputVolumes[plan.reference_modality]
    checkGrids(plan, reference)
    if plan.skipped:
        logging.info("BraTSXAI: outputs not shown as nodes: %s", ", ".join(plan.skipped))
    referenceMatrix = volumes.ijkToRas(reference)

    shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
    study = shNode.GetItemParent(subjectHierarchyItem(shNode, reference))
    folder = shNode.CreateFolderItem(study, f"BraTSXAI {plan.case_id}")

    def place(node, kind):
        node.SetAttribute(volumes.OUTPUT_ATTRIBUTE, kind)
        if node.IsA("vtkMRMLTransformableNode"):  # volumes and segmentations follow the input's transform
            node.SetAndObserveTransformNodeID(reference.GetTransformNodeID())
        shNode.SetItemParent(subjectHierarchyItem(shNode, node), folder)
        if shouldStop is not None and shouldStop():
            raise ImportCancelled("Cancelled while the results were turned into nodes: the scene is as it was.")
        return node

    try:
        labelMaps, segmentations, overlays = {}, {}, []
        for spec in plan.segmentations:  # the primary (ensemble) first: it is the one shown
            labelMaps[spec.model] = geometry.read_volume(spec.path)[0]
            node = place(nodes.addSegmentation(spec, labelMaps[spec.model], referenceMatrix, reference), "labels")
            node.GetDisplayNode().SetVisibility(spec is plan.segmentations[0])
            segmentations[spec.model] = node
        for spec in plan.overlays:
            array = geometry.read_volume(spec.path)[0]
            overlays.append((spec, place(nodes.addOverlay(spec, array, referenceMatrix), spec.kind)))
        networks = {m: labels for m, labels in labelMaps.items() if m != "ensemble"}  # pairs of networks only
        rows = agreement.agreement_rows(networks) + agreement.truth_rows(plan.metrics, labelMaps)
        table = place(nodes.addAgreementTable(plan.case_id, rows), "agreement") if rows else None
        trust = manifest.trust_rows(plan)
        trustTable = place(nodes.addTrustTable(plan.case_id, trust), "trust") if trust else None
    except BaseException:
        shNode.RemoveItem(folder)  # and every node placed in it
        raise
    slicer.util.setSliceViewerLayers(background=reference)
    return SegmentationResult(folder, reference, segmentations, overlays, table, plan, rows, trustTable)
