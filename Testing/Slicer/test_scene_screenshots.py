"""What the module shows after a run of the bundled trained models on the sample case, rendered offscreen: an
axial T1ce slice with the ensemble's outlines and the first Grad-CAM map, and the segments in 3D. The pixels are
checked against the phantom's known tumour; with BRATSXAI_SCREENSHOTS=DIR the PNGs are kept there (docs/images).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trame_slicer", reason="trame-slicer (offscreen Slicer views) is not installed")
import slicer  # noqa: E402
from scipy import ndimage  # noqa: E402

from BraTSXAIHelpers.command import RunOptions  # noqa: E402
from BraTSXAIHelpers.grouping import first_explanation, group_overlays  # noqa: E402
from BraTSXAIHelpers.inputs import MODALITIES  # noqa: E402
from BraTSXAIScene import display, sampledata, volumes  # noqa: E402
from BraTSXAIScene.logic import SegmentLogic  # noqa: E402
from rendering import SIZE, capture, colour_mask, fit_slice, labels_under_pixels, slice_view, threed_view  # noqa: E402

BUNDLED_REGISTRY = Path(__file__).resolve().parents[2] / "Resources" / "Models" / "registry.json"
SEGMENT_COLOURS = {"necrotic core": (255, 0, 0), "edema": (0, 255, 0), "enhancing tumour": (255, 255, 0)}


@pytest.fixture(scope="module")
def trained(core):
    """The case Sample Data adds, segmented and explained (Grad-CAM) by the bundled models, alone on show while
    the module's tests last; removed afterwards."""
    if not BUNDLED_REGISTRY.is_file():
        pytest.skip("the bundled trained models (Resources/Models) are not in this checkout")
    shown = [node.GetDisplayNode() for node in slicer.util.getNodesByClass("vtkMRMLSegmentationNode")
             if node.GetDisplayNode() is not None and node.GetDisplayNode().GetVisibility()]
    for displayNode in shown:  # earlier runs in the session scene
        displayNode.SetVisibility(False)
    case = sampledata.loadPhantomCase()
    logic = SegmentLogic()
    with pytest.MonkeyPatch.context() as patch:  # the child reads the package's own registry, not the tiny one
        for key in ("BRATSXAI_REGISTRY", "BRATSXAI_MODELS"):
            patch.delenv(key, raising=False)
        run = logic.start({m: case[m] for m in MODALITIES}, RunOptions(model="all", explain=("gradcam",),
                                                                        device="cpu"), groundTruth=case["seg"])
    try:
        outcome = run.process.wait()
        assert outcome.succeeded, outcome.describe()
        result = logic.importResults(run)
        ran = json.loads((run.workDir / "output" / "manifest.json").read_text())["models"]
    finally:
        logic.discard(run)
    yield result, case["seg"], ran
    shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
    shNode.RemoveItem(result.folderItemId)
    for node in case.values():
        slicer.mrmlScene.RemoveNode(node)
    for displayNode in shown:
        displayNode.SetVisibility(True)


def tumour_centre_ras(labelNode):
    k, j, i = (int(round(c)) for c in np.argwhere(slicer.util.arrayFromVolume(labelNode) > 0).mean(axis=0))
    return (volumes.ijkToRas(labelNode) @ [i, j, k, 1.0])[:3]


def test_the_pictures_come_from_the_bundled_models_and_they_find_the_tumour(trained):
    result, _, ran = trained
    bundled = {entry["sha256"] for entry in json.loads(BUNDLED_REGISTRY.read_text())["models"] if entry.get("default")}
    assert {model["sha256"] for model in ran.values()} == bundled
    assert result.plan.metrics["ensemble"]["dice_WT"] > 0.8  # against the phantom's known tumour


def axial_view(core, result, truth, name: str):
    """A slice view through the tumour centre, fitted to the T1ce, with the primary result's outlines."""
    display.showSegmentation(result, result.primaryModel)
    result.segmentations[result.primaryModel].GetDisplayNode().SetVisibility2DFill(False)  # heat map stays readable
    view = slice_view(core, name)
    view.set_orientation("Axial")
    slicer.util.setSliceViewerLayers(background=result.reference, foreground=None)
    fit_slice(view, float(tumour_centre_ras(truth)[2]))
    return view


def test_axial_slice_fills_the_view_and_shows_the_outlines_and_the_gradcam_on_the_tumour(core, trained,
                                                                                     screenshot_dir):
    result, truth, _ = trained
    first = first_explanation(group_overlays([spec for spec, _ in result.overlays], primary=result.primaryModel))
    gradcam = next(node for spec, node in result.overlays if spec is first)  # the map shown after a run
    view = axial_view(core, result, truth, "Screenshot")
    plain = capture(view, screenshot_dir / "slicer-axial-plain.png")
    display.showOverlay(gradcam, result.reference)
    shown = capture(view, screenshot_dir / "slicer-axial-gradcam.png")
    display.hideOverlay(gradcam)
    tumour = labels_under_pixels(view, truth) > 0

    rows, columns = np.nonzero(plain.max(axis=-1) > 20)
    assert plain.std() > 10, "the T1ce slice did not render"
    assert np.ptp(rows) > 0.7 * SIZE[1] and np.ptp(columns) > 0.6 * SIZE[0], "the brain does not fill the view"
    assert tumour.sum() > 500, "the slice misses the tumour"
    near = ndimage.binary_dilation(tumour, iterations=8)  # a few voxels of slack at 2 mm
    for name, colour in SEGMENT_COLOURS.items():
        outline = colour_mask(plain, colour, 90)
        assert outline.sum() > 20, f"no {name} outline in the slice through the tumour"
        assert outline[near].sum() > 0.9 * outline.sum(), f"the {name} outline lies off the tumour"
    heat = np.abs(shown.astype(int) - plain.astype(int)).max(axis=-1) > 8
    assert heat.sum() > 500, f"the Grad-CAM overlay ({gradcam.GetName()}) changed almost nothing"
    assert heat[near].sum() > 0.9 * heat.sum(), "the Grad-CAM map shows away from the tumour"


def test_segments_render_in_3d_over_the_axial_slice(core, trained, screenshot_dir):
    result, truth, _ = trained
    segmentation = result.segmentations[result.primaryModel]
    segmentation.CreateClosedSurfaceRepresentation()
    edema = segmentation.GetSegmentation().GetSegmentIdBySegmentName("edema")
    segmentation.GetDisplayNode().SetSegmentOpacity3D(edema, 0.3)  # the core shows through the edema
    axial = axial_view(core, result, truth, "Screenshot3D")  # kept alive: its slice plane is what the 3D view shows
    axial.set_visible_in_3d(True)
    view = threed_view(core)
    view.render_window().SetMultiSamples(0)  # with multisampling, depth peeling drew no translucent surface here
    view.set_box_visible(False)
    camera = view.renderer().GetActiveCamera()
    camera.Elevation(50)
    camera.Azimuth(25)
    camera.OrthogonalizeViewUp()
    view.renderer().ResetCamera()
    camera.Zoom(1.3)
    pixels = capture(view, screenshot_dir / "slicer-3d-segments.png")
    segmentation.GetDisplayNode().SetSegmentOpacity3D(edema, 1.0)

    r, g, b = (pixels[..., c].astype(int) for c in range(3))
    grey = (np.ptp(pixels.astype(int), axis=-1) < 8) & (pixels.max(axis=-1) > 60)
    assert grey.sum() > 0.1 * grey.size, "the T1ce slice is not in the 3D view"
    shaded = {"necrotic core": (r - np.maximum(g, b) > 60),  # lit and seen through the edema: hues, not colours
              "enhancing tumour": (np.minimum(r, g) - b > 60) & (np.abs(r - g) < 60),
              "edema": (g - np.maximum(r, b) > 40)}
    for name, mask in shaded.items():
        assert mask.sum() > 100, f"no {name} surface in the 3D view"
