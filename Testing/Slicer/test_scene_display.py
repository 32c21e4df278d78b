"""Showing and hiding heat maps on real slice composite nodes and volume-rendering display nodes."""
from __future__ import annotations

import pytest

pytest.importorskip("slicer_core", reason="Slicer's core libraries (slicer-core) are not installed")
import slicer  # noqa: E402

from BraTSXAIHelpers import manifest  # noqa: E402
from BraTSXAIScene import display  # noqa: E402


def vr_display(node):
    return slicer.modules.volumerendering.logic().GetFirstVolumeRenderingDisplayNode(node)


def test_overlay_goes_to_every_slice_view_at_the_module_opacity(core, imported):
    result, _ = imported
    gradcam = result.overlay("unet", "gradcam", "WT")
    display.showOverlay(gradcam, result.reference)
    for composite in core.composite_nodes():
        assert composite.GetBackgroundVolumeID() == result.reference.GetID()
        assert composite.GetForegroundVolumeID() == gradcam.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(manifest.OVERLAY_OPACITY)
    display.hideOverlay(gradcam)
    assert all(c.GetForegroundVolumeID() is None for c in core.composite_nodes())
    assert all(c.GetBackgroundVolumeID() == result.reference.GetID() for c in core.composite_nodes())


def test_volume_rendering_follows_the_heat_map_and_only_one_shows(imported):
    result, _ = imported
    first, second = result.overlay("unet", "gradcam", "TC"), result.overlay("attunet", "gradcam", "TC")
    display.showOverlay(first, result.reference, in3D=True)
    rendering = vr_display(first)
    assert rendering is not None and rendering.GetVisibility()
    assert rendering.IsA("vtkMRMLVolumeRenderingDisplayNode")
    opacity = rendering.GetVolumePropertyNode().GetVolumeProperty().GetScalarOpacity()
    low = first.GetDisplayNode().GetLowerThreshold()
    assert opacity.GetValue(low * 0.5) == pytest.approx(0.0)  # what is hidden in 2D is transparent in 3D
    assert opacity.GetValue(0.99) > 0.0
    display.showOverlay(second, result.reference, in3D=True, others=[n for _, n in result.overlays])
    assert not vr_display(first).GetVisibility() and vr_display(second).GetVisibility()
    display.hideOverlay(second)
    assert not vr_display(second).GetVisibility()


def test_choosing_another_networks_segmentation_hides_the_primary(imported):
    result, _ = imported
    display.showSegmentation(result, "resunet")
    assert [m for m, n in result.segmentations.items() if n.GetDisplayNode().GetVisibility()] == ["resunet"]
    display.showSegmentation(result, result.primaryModel)
    assert [m for m, n in result.segmentations.items() if n.GetDisplayNode().GetVisibility()] == ["ensemble"]
