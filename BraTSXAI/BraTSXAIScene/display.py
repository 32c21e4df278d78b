"""Showing results: a heat map over the MRI in every slice view, optionally as volume rendering, one at a time.

Slice views hold one foreground volume, so showing a heat map replaces the previous one; volume rendering takes
the heat map's own colour map, window and threshold so that what is hidden in 2D is transparent in 3D too.
"""
from __future__ import annotations

import slicer

from BraTSXAIHelpers import manifest


def showOverlay(overlayNode, backgroundNode=None, in3D: bool = False, others=()) -> None:
    """Show a heat map at the module's opacity over `backgroundNode` (or the current background)."""
    for other in others:
        if other is not overlayNode:
            setVolumeRendering(other, False)
    slicer.util.setSliceViewerLayers(background=backgroundNode if backgroundNode is not None else "keep-current",
                                     foreground=overlayNode, foregroundOpacity=manifest.OVERLAY_OPACITY)
    setVolumeRendering(overlayNode, in3D)


def hideOverlay(overlayNode) -> None:
    slicer.util.setSliceViewerLayers(foreground=None)
    setVolumeRendering(overlayNode, False)


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


def showSegmentation(result, model: str) -> None:
    """Show one network's segmentation and hide the others (the primary one is shown after import)."""
    for name, node in result.segmentations.items():
        node.GetDisplayNode().SetVisibility(name == model)
