"""A one-glance PNG of a result: axial, coronal and sagittal slices through the tumour, with the overlays.

Rows: FLAIR and T1ce with each segmentation's labels, then one row per heatmap (over T1ce). Slices cross at the
centre of the first segmentation's tumour (the volume's centre when it has none). Arrays are (z, y, x) on the
reference grid; on a BraTS (LPS) grid axial slices show anterior up and the patient's left on the right.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import InputError
from .labels import label_classes
from .outputs import atomic_write

PANEL_INCHES = 2.4
VIEWS = ("axial", "coronal", "sagittal")


def _matplotlib():
    try:
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("the overview PNG needs matplotlib", "pip install matplotlib") from None
    return Figure, ListedColormap


def crossing_point(labels: np.ndarray | None, shape: Sequence[int]) -> tuple[int, int, int]:
    """Centre of mass of the tumour voxels, or the centre of the volume."""
    if labels is None or not labels.any():
        return tuple(int(n // 2) for n in shape)
    return tuple(int(round(c)) for c in np.argwhere(labels > 0).mean(axis=0))


def _slices(volume: np.ndarray, point: Sequence[int]) -> list[np.ndarray]:
    z, y, x = point
    return [volume[z], volume[:, y, :], volume[:, :, x]]


def _aspects(spacing: Sequence[float]) -> list[float]:
    sz, sy, sx = spacing
    return [sy / sx, sz / sx, sz / sy]


def _window(volume: np.ndarray) -> tuple[float, float]:
    inside = volume[volume != 0]
    if inside.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(inside, (1, 99))
    return float(low), float(high if high > low else low + 1)


def write_overview(
    path: str | Path,
    images: Mapping[str, np.ndarray],
    spacing: Sequence[float],
    segmentations: Mapping[str, np.ndarray],
    heatmaps: Mapping[str, np.ndarray] | None = None,
    et_label: int = 4,
) -> Path:
    """Write the PNG. `images` needs "flair" and "t1ce"; `spacing` is in array order (z, y, x) mm."""
    figure_class, listed_colormap = _matplotlib()
    heatmaps = heatmaps or {}
    first = next(iter(segmentations.values()), None)
    point = crossing_point(first, images["t1ce"].shape)
    rows = [(f"{name}\n{modality.upper()}", modality, labels, None)
            for name, labels in segmentations.items() for modality in ("flair", "t1ce")]
    rows += [(name, "t1ce", None, heatmap) for name, heatmap in heatmaps.items()]
    if not rows:
        rows = [(modality.upper(), modality, None, None) for modality in ("flair", "t1ce")]
    colours = np.zeros((max(et_label, 4) + 1, 4))
    for label in label_classes(et_label):
        colours[label["value"]] = [*label["color"], 0.45]
    label_colormap = listed_colormap(colours)
    figure = figure_class(figsize=(3 * PANEL_INCHES, len(rows) * PANEL_INCHES), facecolor="black")
    axes = figure.subplots(len(rows), 3, squeeze=False)
    windows = {name: _window(volume) for name, volume in images.items()}
    aspects = _aspects(spacing)
    for row, (title, modality, labels, heatmap) in enumerate(rows):
        backgrounds = _slices(images[modality], point)
        overlays = _slices(labels, point) if labels is not None else [None] * 3
        maps = _slices(heatmap, point) if heatmap is not None else [None] * 3
        for column in range(3):
            axis = axes[row, column]
            origin = "upper" if column == 0 else "lower"
            low, high = windows[modality]
            axis.imshow(backgrounds[column], cmap="gray", vmin=low, vmax=high, aspect=aspects[column], origin=origin,
                        interpolation="nearest")
            if overlays[column] is not None:
                axis.imshow(overlays[column], cmap=label_colormap, vmin=0, vmax=len(colours) - 1,
                            aspect=aspects[column], origin=origin, interpolation="nearest")
            if maps[column] is not None:
                shown = np.ma.masked_less_equal(maps[column], 0)
                axis.imshow(shown, cmap="inferno", vmin=0, vmax=1, alpha=0.6, aspect=aspects[column], origin=origin,
                            interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(VIEWS[column], color="white", fontsize=9)
            if column == 0:
                axis.set_ylabel(title, color="white", fontsize=8)
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100, facecolor="black")
    return Path(path)
