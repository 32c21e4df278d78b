"""overview.png: a size a laptop screen shows whole, slices that cross a planted tumour and show its label colours
where it lies, and a plain note where a map is missing."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from BraTSXAILib.errors import InputError
from BraTSXAILib.overview import NO_MAP, crossing_point, draw_overview, plan_panels, write_overview

CENTRE = (40, 50, 130)  # (z, y, x): off the volume's centre, so slices through the middle would miss it
BRATS = (155, 240, 240)


def planted(shape=BRATS):
    """A T1ce-like brain (an ellipsoid of 500 with a gentle gradient, background 0) and a spherical tumour at
    CENTRE: necrotic core (1) within 6 voxels, enhancing rim (4) to 12, edema (2) to 20."""
    z, y, x = np.indices(shape, dtype=np.float32)
    middle = np.array(shape) / 2
    brain = ((z - middle[0]) / (0.45 * shape[0])) ** 2 + ((y - middle[1]) / (0.45 * shape[1])) ** 2 + \
        ((x - middle[2]) / (0.4 * shape[2])) ** 2 <= 1
    t1ce = np.where(brain, 400 + 200 * x / shape[2], 0).astype(np.float32)
    distance = np.sqrt((z - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2 + (x - CENTRE[2]) ** 2)
    labels = np.select([distance <= 6, distance <= 12, distance <= 20], [1, 4, 2], 0).astype(np.uint8)
    return t1ce, labels


@pytest.fixture(scope="module")
def case():
    return planted()


def _rendered(figure) -> np.ndarray:
    FigureCanvasAgg(figure).draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(int)


def _axis(figure, label: str):
    return next(axis for axis in figure.axes if axis.get_label() == label)


def _pixel(pixels: np.ndarray, axis, column: float, row: float) -> np.ndarray:
    """The rendered colour of a slice's data point (column, row) of `axis`."""
    x, y = axis.transData.transform((column, row))
    return pixels[pixels.shape[0] - round(y), round(x)]


def _colour(rgb: np.ndarray) -> str:
    r, g, b = rgb
    if r - max(g, b) > 70:
        return "red"
    if g - max(r, b) > 70:
        return "green"
    if min(r, g) - b > 70:
        return "yellow"
    return "grey" if max(rgb) - min(rgb) < 25 and max(rgb) > 60 else "other"


def test_crossing_point_is_a_tumour_voxel_even_for_a_ring():
    ring = np.zeros((30, 30, 30), np.uint8)
    ring[10:20, 10:20, 10:20] = 4
    ring[12:18, 12:18, 12:18] = 0  # hollow: the centre of mass is no tumour voxel
    point = crossing_point(ring, ring.shape)
    assert ring[point] == 4
    assert crossing_point(np.zeros((30, 40, 50), np.uint8), (30, 40, 50)) == (15, 20, 25)


def test_a_full_result_fits_a_laptop_screen_and_each_slice_is_legible(case, tmp_path):
    """Four models with every map of a BraTS-sized case: at most 2000 px on the long side, landscape, and every
    slice at least 150 px wide."""
    t1ce, labels = case
    heat = np.zeros(BRATS, np.float32)
    heatmaps = {f"{m}_gradcam_{r}": heat for m in ("unet", "resunet", "attunet") for r in ("WT", "TC", "ET")}
    heatmaps |= {f"ensemble_uncertainty_{r}": heat for r in ("WT", "TC", "ET")} | {"attunet_attention_gate0": heat}
    segmentations = {"truth": labels} | {m: labels for m in ("unet", "resunet", "attunet", "ensemble")}
    modality = {m: {r: {"t1": 0.1, "t1ce": 0.5, "t2": 0.2, "flair": 0.2} for r in ("WT", "TC", "ET")}
                for m in ("unet", "resunet", "attunet")}
    weights = {"attunet": {f"cbam{level}": [0.5] * (8 << level) for level in range(4)}}
    path = write_overview(tmp_path / "overview.png", {"t1ce": t1ce, "flair": t1ce}, (1.0, 1.0, 1.0), segmentations,
                          heatmaps, 4, weights, modality)
    height, width = imread(path).shape[:2]
    assert 1500 <= width <= 2000 and height < width
    figure = draw_overview({"t1ce": t1ce}, (1.0, 1.0, 1.0), segmentations, heatmaps, 4, weights, modality)
    FigureCanvasAgg(figure).draw()
    slices = [axis for axis in figure.axes if axis.get_label().count("|") == 2]
    assert len(slices) == 3 * (5 + 4 + 4 + 5)  # ensemble: labels, truth, 3 uncertainty; networks: labels, 3 maps
    assert min(axis.get_window_extent().width for axis in slices) >= 150
    assert [axis.get_label() for axis in slices[:2]] == ["ensemble (primary result)|labels|axial",
                                                         "ensemble (primary result)|labels|coronal"]


def test_each_plane_crosses_the_planted_tumour_and_shows_its_labels_where_it_lies(case):
    t1ce, labels = case
    figure = draw_overview({"t1ce": t1ce}, (1.0, 1.0, 1.0), {"truth": labels, "unet": labels})
    pixels = _rendered(figure)
    z, y, x = CENTRE
    # each plane: the tumour's centre as a data point (column, row) of its slice, then 9, 16 and 40 voxels from it
    # towards the middle of the brain: core, enhancing rim, edema, brain
    for plane, (column, row) in (("axial", (x, y)), ("coronal", (x, z)), ("sagittal", (y, z))):
        towards = 1 if column < BRATS[1] / 2 else -1
        for panel in ("unet (primary result)|labels", "unet (primary result)|ground truth"):
            axis = _axis(figure, f"{panel}|{plane}")
            seen = [_colour(_pixel(pixels, axis, column + towards * step, row)) for step in (0, 9, 16, 40)]
            assert seen == ["red", "yellow", "green", "grey"], (panel, plane)


def test_a_missing_map_is_a_plain_note_not_a_crash(case):
    """Grad-CAM asked for: the UNet has a WT map only, the ResUNet none at all; the ensemble gets no Grad-CAM
    columns, every missing region a note and no MRI."""
    t1ce, labels = case
    heat = np.zeros(BRATS, np.float32)
    segmentations = {"unet": labels, "resunet": labels, "ensemble": labels}
    panels = plan_panels(segmentations, {"unet_gradcam_WT": heat}, requested=("gradcam",))
    assert [[c.title for c in p.columns] for p in panels] == [
        ["labels"], ["labels", "Grad-CAM WT", "Grad-CAM TC", "Grad-CAM ET"],
        ["labels", "Grad-CAM WT", "Grad-CAM TC", "Grad-CAM ET"]]
    assert [c.note is None for c in panels[1].columns] == [True, True, False, False]
    assert all(c.note.startswith(NO_MAP) for c in panels[2].columns[1:])
    figure = draw_overview({"t1ce": t1ce}, (1.0, 1.0, 1.0), segmentations, {"unet_gradcam_WT": heat},
                           requested=("gradcam",))
    pixels = _rendered(figure)
    note = _axis(figure, "resunet|Grad-CAM TC|axial")
    assert [text.get_text() for text in note.texts] == [f"{NO_MAP}\nfor TC"]
    box = note.get_window_extent()
    inside = pixels[pixels.shape[0] - int(box.y1) + 2:pixels.shape[0] - int(box.y0) - 2, int(box.x0) + 2:
                    int(box.x1) - 2]
    grey_text = (inside.max(axis=-1) - inside.min(axis=-1) < 10) & (inside.max(axis=-1) > 60)
    assert 0 < grey_text.mean() < 0.05  # the note's letters only: no MRI drawn behind it


def test_without_explanations_each_panel_is_its_labels(case, tmp_path):
    t1ce, labels = case
    panels = plan_panels({"unet": labels}, {})
    assert [[c.title for c in p.columns] for p in panels] == [["labels"]]
    path = write_overview(tmp_path / "o.png", {"flair": t1ce}, (1.0, 1.0, 1.0), {"unet": labels})
    height, width = imread(path).shape[:2]
    assert max(height, width) <= 2000


def test_without_a_t1ce_or_flair_the_overview_says_so():
    with pytest.raises(InputError, match="T1ce or the FLAIR"):
        draw_overview({"t2": np.zeros((4, 4, 4))}, (1.0, 1.0, 1.0), {})
