"""A one-glance PNG of a result: axial, coronal and sagittal slices through the tumour, with the overlays.

Rows: FLAIR and T1ce with each segmentation's labels, then one row per heatmap (over T1ce; Grad-CAM, attention,
and the primary result's uncertainty), then one row per Attention UNet with its CBAM channel weights (levels ×
channels, one image), then a bar chart of the modality shares per network and region. Slices cross at the
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


def _channel_weights_row(figure, row_axes, model: str, levels: Mapping[str, Sequence[float]]) -> None:
    """One image across the row: a line per CBAM level, its channel weights in [0, 1] (blank past its width)."""
    for axis in row_axes:
        axis.remove()
    axis = figure.add_subplot(row_axes[0].get_gridspec()[row_axes[0].get_subplotspec().rowspan.start, :])
    widest = max(len(weights) for weights in levels.values())
    matrix = np.full((len(levels), widest), np.nan)
    for index, weights in enumerate(levels.values()):
        matrix[index, :len(weights)] = weights
    from matplotlib import colormaps

    colormap = colormaps["inferno"].with_extremes(bad="black")
    image = axis.imshow(matrix, cmap=colormap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    axis.set_yticks(range(len(levels)), list(levels), color="white", fontsize=7)
    axis.set_xlabel("channel", color="white", fontsize=7)
    axis.tick_params(colors="white", labelsize=7)
    axis.set_title(f"{model} CBAM channel weights", color="white", fontsize=8)
    figure.colorbar(image, ax=axis, fraction=0.03).ax.tick_params(colors="white", labelsize=7)


def _modality_row(figure, row_axes, importance: Mapping[str, Mapping[str, Mapping[str, float]]]) -> None:
    """One bar chart across the row: per network and region, the share of evidence of each sequence."""
    for axis in row_axes:
        axis.remove()
    axis = figure.add_subplot(row_axes[0].get_gridspec()[row_axes[0].get_subplotspec().rowspan.start, :])
    groups = [(model, region, shares) for model, regions in importance.items() for region, shares in regions.items()]
    sequences = list(groups[0][2]) if groups else []
    width = 0.8 / max(len(sequences), 1)
    for index, sequence in enumerate(sequences):
        axis.bar(np.arange(len(groups)) + index * width, [shares[sequence] for _, _, shares in groups], width,
                 label=sequence)
    axis.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{m}\n{r}" for m, r, _ in groups], fontsize=6)
    axis.set_ylim(0, 1)
    axis.tick_params(colors="white", labelsize=6)
    axis.set_title("share of evidence per sequence (modality attribution)", color="white", fontsize=8)
    axis.legend(fontsize=6, ncols=len(sequences), loc="upper right")
    axis.set_facecolor("black")


def write_overview(
    path: str | Path,
    images: Mapping[str, np.ndarray],
    spacing: Sequence[float],
    segmentations: Mapping[str, np.ndarray],
    heatmaps: Mapping[str, np.ndarray] | None = None,
    et_label: int = 4,
    channel_weights: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    modality: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> Path:
    """Write the PNG. `images` needs "flair" and "t1ce"; `spacing` is in array order (z, y, x) mm.

    `channel_weights`: {model: {"cbam0": [weight per channel], ...}} as written by the explanation outputs;
    `modality`: the manifest's `modality_importance`, drawn as one bar-chart row at the end.
    """
    figure_class, listed_colormap = _matplotlib()
    heatmaps = heatmaps or {}
    channel_weights = channel_weights or {}
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
    extra = len(channel_weights) + bool(modality)
    figure = figure_class(figsize=(3 * PANEL_INCHES, (len(rows) + extra) * PANEL_INCHES), facecolor="black")
    axes = figure.subplots(len(rows) + extra, 3, squeeze=False)
    for row, (model, levels) in enumerate(channel_weights.items(), start=len(rows)):
        _channel_weights_row(figure, axes[row], model, levels)
    if modality:
        _modality_row(figure, axes[-1], modality)
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
