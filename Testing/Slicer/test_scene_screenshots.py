"""What the module shows, rendered offscreen: an axial T1ce slice with the segmentation and a Grad-CAM map, and
the segments in 3D. The pixels are checked; with BRATSXAI_SCREENSHOTS=DIR the PNGs are kept there."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("trame_slicer", reason="trame-slicer (offscreen Slicer views) is not installed")
import slicer  # noqa: E402

from BraTSXAIScene import display  # noqa: E402
from rendering import capture, colour_mask, fit_slice, slice_view, threed_view  # noqa: E402

EDEMA_GREEN = (0, 255, 0)


def tumour_centre_ras(phantom):
    labels = slicer.util.arrayFromVolume(phantom["seg"])
    k, j, i = (int(round(c)) for c in np.argwhere(labels > 0).mean(axis=0))
    matrix = np.array(__import__("BraTSXAIScene.volumes", fromlist=["ijkToRas"]).ijkToRas(phantom["seg"]))
    return (matrix @ [i, j, k, 1.0])[:3]


def test_axial_slice_shows_the_mri_the_segmentation_and_the_gradcam_over_the_tumour(core, imported, phantom,
                                                                                    screenshot_dir):
    result, _ = imported
    view = slice_view(core)
    view.set_orientation("Axial")
    segmentation = result.segmentations["unet"]
    display.showSegmentation(result, "unet")
    segmentation.GetDisplayNode().SetVisibility2DFill(False)  # outlines: the heat map stays readable
    gradcam = result.overlay("unet", "gradcam", "WT")
    display.hideOverlay(gradcam)
    fit_slice(view, float(tumour_centre_ras(phantom)[2]))
    plain = capture(view, screenshot_dir / "slicer-axial-plain.png")
    display.showOverlay(gradcam, result.reference)
    shown = capture(view, screenshot_dir / "slicer-axial-gradcam.png")
    display.showSegmentation(result, result.primaryModel)

    assert plain.std() > 10, "the T1ce slice did not render"
    brain = plain.max(axis=-1) > 20
    assert 0.01 < brain.mean() < 0.95
    outline = colour_mask(shown, EDEMA_GREEN, 90) | colour_mask(shown, (255, 0, 0), 90) | colour_mask(
        shown, (255, 255, 0), 90)
    assert outline.sum() > 20, "no segment outline in the slice through the tumour"
    changed = np.abs(shown.astype(int) - plain.astype(int)).max(axis=-1) > 8
    assert changed.sum() > 50, "the Grad-CAM overlay changed nothing"
    rows, columns = np.nonzero(outline)
    near = changed[max(rows.min() - 10, 0):rows.max() + 10, max(columns.min() - 10, 0):columns.max() + 10]
    assert near.any(), "the heat map shows nowhere near the tumour"


def test_segments_render_in_3d_in_their_colours(core, imported, screenshot_dir):
    result, _ = imported
    for _, node in result.overlays:
        display.setVolumeRendering(node, False)  # surfaces only: a camera reset with volume rendering is slow
    segmentation = result.segmentations[result.primaryModel]
    display.showSegmentation(result, "unet")
    result.segmentations["unet"].CreateClosedSurfaceRepresentation()
    view = threed_view(core)
    view.renderer().ResetCamera()
    pixels = capture(view, screenshot_dir / "slicer-3d-segments.png")
    display.showSegmentation(result, segmentation and result.primaryModel)
    coloured = colour_mask(pixels, EDEMA_GREEN, 120) | colour_mask(pixels, (255, 255, 0), 120) | colour_mask(
        pixels, (255, 0, 0), 120)
    assert coloured.sum() > 100, "no segment surface in the 3D view"
