"""overview.png: a result on one screen — one panel per model, the primary (ensemble) result first, each in axial,
coronal and sagittal slices through the tumour, beside a column with the legend and the colour bars.

A panel's rows are the three planes. Its first column is the T1ce (FLAIR without one) with the model's labels;
the primary panel then shows the ground truth, when the case has one, and its uncertainty per region (WT, TC,
ET); a network's panel shows its Grad-CAM map per region, drawn with the outline of the region its labels give,
and an Attention UNet's default attention map. A region whose Grad-CAM map was asked for but not written (the
network has no faithful map for it) says so in a plain note. The side column adds the modality shares and the
CBAM channel weights when there are any. The slices cross at the tumour voxel nearest the centre of the
primary result's tumour (the truth's when the result has none; the volume's centre when neither has one).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import overview_draw as draw
from .errors import InputError
from .labels import REGIONS, labels_to_regions
from .outputs import atomic_write

ENSEMBLE, TRUTH = "ensemble", "truth"
NO_MAP = "no faithful map"
MAP_TITLES = {"uncertainty": "uncertainty", "gradcam": "Grad-CAM"}
DPI = 100
MAX_INCHES = 20.0  # the long side: 2000 px, a laptop screen's width at 100 % zoom
CELL_INCHES = 2.2  # one slice, when the panels fit; smaller when they do not
SIDE_INCHES = 2.6  # the legend column
TITLE_INCHES = 0.5  # above each row of panels: the panel's title and its columns' titles
LEFT, RIGHT, TOP, BOTTOM = 0.4, 0.2, 0.35, 0.45  # margins (inches); the caption sits in the top one


@dataclass
class Column:
    """One column of a panel: labels, or a map (`heat` of kind `kind`), or a note where a map is missing."""

    title: str
    labels: np.ndarray | None = None
    heat: np.ndarray | None = None
    kind: str | None = None
    outline: np.ndarray | None = None
    note: str | None = None


@dataclass
class Panel:
    title: str
    columns: list[Column] = field(default_factory=list)


def crossing_point(labels: np.ndarray | None, shape: Sequence[int]) -> tuple[int, int, int]:
    """The tumour voxel nearest the tumour's centre of mass (so all three planes cut tumour even when it is
    ring-shaped or in pieces), or the centre of the volume."""
    if labels is None or not labels.any():
        return tuple(int(n // 2) for n in shape)
    voxels = np.argwhere(labels > 0)
    nearest = voxels[np.argmin(((voxels - voxels.mean(axis=0)) ** 2).sum(axis=1))]
    return tuple(int(c) for c in nearest)


def _maps(heatmaps: Mapping[str, np.ndarray]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """{(model, kind): {region or map name: array}} from the output names `<model>_<kind>_<region or map>`."""
    found: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for name, array in heatmaps.items():
        model, kind, key = name.split("_", 2)
        found.setdefault((model, kind), {})[key] = array
    return found


def primary_name(segmentations: Mapping[str, np.ndarray]) -> str | None:
    """The primary result: the ensemble when there is one, else the one network."""
    models = [name for name in segmentations if name != TRUTH]
    return ENSEMBLE if ENSEMBLE in models else next(iter(models), None)


def plan_panels(segmentations: Mapping[str, np.ndarray], heatmaps: Mapping[str, np.ndarray],
                requested: Sequence[str] | None = None) -> list[Panel]:
    """The panels, primary first. `requested`: the explanation kinds asked for (`--explain`); None takes the kinds
    of the maps present, so a Grad-CAM region column appears for every network once any network has one."""
    maps = _maps(heatmaps)
    kinds = set(requested) if requested is not None else {kind for _, kind in maps}
    models, primary = [name for name in segmentations if name != TRUTH], primary_name(segmentations)
    panels = []
    for model in ([primary] if primary else []) + [m for m in models if m != primary]:
        labels = segmentations[model]
        panel = Panel(f"{model} (primary result)" if model == primary else model, [Column("labels", labels=labels)])
        if model == primary and TRUTH in segmentations:
            panel.columns.append(Column("ground truth", labels=segmentations[TRUTH]))
        offered = (["uncertainty"] if model == primary else []) + (["gradcam"] if model != ENSEMBLE else [])
        shown = [kind for kind in offered if kind in kinds]
        regions = labels_to_regions(labels) if shown else None  # each map column is outlined by its region
        for kind in shown:
            present = maps.get((model, kind), {})
            for index, region in enumerate(REGIONS):
                column = Column(f"{MAP_TITLES[kind]} {region}", kind=kind, outline=regions[index])
                if region in present:
                    column.heat = present[region]
                else:
                    column.note = f"{NO_MAP}\nfor {region}" if kind == "gradcam" else f"no {region} map"
                panel.columns.append(column)
        for key, array in maps.get((model, "attention"), {}).items():
            panel.columns.append(Column(f"attention {key.replace('_', ' ')}", heat=array, kind="attention"))
        panels.append(panel)
    return panels


def _layout(panels: list[Panel], box: Sequence[slice], spacing: Sequence[float], side_slots: int):
    """Panels two to a row (one when there is one); the slice size is the largest that keeps the long side of the
    figure within MAX_INCHES. Returns the rows, each panel position's column count, the planes' height ratios,
    the slice width and the figure size (inches)."""
    per_row = 1 if len(panels) == 1 else 2
    rows = [panels[i:i + per_row] for i in range(0, len(panels), per_row)]
    widths = [max(len(row[i].columns) for row in rows if i < len(row)) for i in range(per_row)]
    heights = draw.plane_heights(box, spacing)
    across, down = LEFT + RIGHT + SIDE_INCHES, TOP + BOTTOM + len(rows) * TITLE_INCHES
    cell = min(CELL_INCHES, (MAX_INCHES - across) / sum(widths), (MAX_INCHES - down) / (len(rows) * sum(heights)))
    size = (across + cell * sum(widths), max(down + len(rows) * cell * sum(heights), 1.5 * side_slots))
    return rows, widths, heights, cell, size


def draw_overview(images: Mapping[str, np.ndarray], spacing: Sequence[float], segmentations: Mapping[str, np.ndarray],
                  heatmaps: Mapping[str, np.ndarray] | None = None, et_label: int = 4,
                  channel_weights: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
                  modality: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
                  requested: Sequence[str] | None = None):
    """The figure (matplotlib Figure). Each slice's axes is labelled "<panel>|<column>|<plane>" for lookup."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("the overview PNG needs matplotlib", "pip install matplotlib") from None
    background = images.get("t1ce", images.get("flair"))
    if background is None:
        raise InputError("the overview needs the T1ce or the FLAIR image", "pass images={'t1ce': ...}")
    panels = plan_panels(segmentations, heatmaps or {}, requested)
    if not panels:
        panels = [Panel("MRI", [Column("T1ce" if "t1ce" in images else "FLAIR")])]
    primary = segmentations.get(primary_name(segmentations))
    point = crossing_point(primary if primary is not None and primary.any() else segmentations.get(TRUTH),
                           background.shape)
    kinds = sorted({"uncertainty" if c.kind == "uncertainty" else "gradcam"
                    for p in panels for c in p.columns if c.kind})
    side = ["legend", *kinds, *(["modality"] if modality else []), *sorted(channel_weights or {})]
    box = draw.content_box(background)
    rows, widths, heights, cell, size = _layout(panels, box, spacing, len(side))
    figure = Figure(figsize=size, dpi=DPI, facecolor="black")
    panel_height = cell * sum(heights)
    outer = figure.add_gridspec(len(rows), len(widths) + 1, width_ratios=[cell * w for w in widths] + [SIDE_INCHES],
                                left=LEFT / size[0], right=1 - RIGHT / size[0], top=1 - (TOP + TITLE_INCHES) / size[1],
                                bottom=BOTTOM / size[1], wspace=0.15 / cell, hspace=TITLE_INCHES / panel_height)
    window, views = draw.intensity_window(background), draw.views(spacing, box)
    backgrounds, label_map = draw.plane_slices(background, point, box), draw.label_colormap(et_label)
    for row_index, row in enumerate(rows):
        for position, panel in enumerate(row):
            grid = outer[row_index, position].subgridspec(3, widths[position], height_ratios=heights,
                                                          wspace=0.03, hspace=0.03)
            _draw_panel(figure, grid, panel, backgrounds, window, views, label_map, point, box)
    _draw_side(figure, outer[:, -1].subgridspec(len(side), 1, hspace=0.6), side, et_label, modality,
               channel_weights or {})
    figure.text(LEFT / size[0], 1 - 0.1 / size[1], f"over the {'T1ce' if 't1ce' in images else 'FLAIR'}; slices "
                f"through voxel (z, y, x) = {point}; axial: anterior up, patient's left on the right",
                color="#bbbbbb", fontsize=8, va="top")
    return figure


def _draw_panel(figure, grid, panel: Panel, backgrounds, window, views, label_map, point, box) -> None:
    def cut(volume):
        return draw.plane_slices(volume, point, box) if volume is not None else [None] * 3

    for index, column in enumerate(panel.columns):
        labels, heat, outline = cut(column.labels), cut(column.heat), cut(column.outline)
        for view in views:
            plane = view.plane
            axis = figure.add_subplot(grid[plane, index], label=f"{panel.title}|{column.title}|{draw.VIEWS[plane]}")
            if column.note:
                draw.note(axis, view, column.note, backgrounds[plane].shape)
            else:
                draw.cell(axis, view, backgrounds[plane], window, labels[plane], label_map, heat[plane], column.kind,
                          outline[plane])
            if plane == 0:
                axis.set_title(column.title, color="white", fontsize=9)
                if index == 0:  # above the column titles, a fixed distance whatever the slice size
                    axis.annotate(panel.title, (0, 1), xycoords="axes fraction", xytext=(0, 20),
                                  textcoords="offset points", color="white", fontsize=11, weight="bold")
            if index == 0:
                axis.set_ylabel(draw.VIEWS[plane], color="#bbbbbb", fontsize=8)


def _draw_side(figure, grid, side: list[str], et_label: int, modality, channel_weights) -> None:
    for slot, item in enumerate(side):
        if item in ("gradcam", "uncertainty"):
            axis = grid[slot].subgridspec(3, 1)[1]
            draw.colour_bar(figure, figure.add_subplot(axis), item)
            continue
        axis = figure.add_subplot(grid[slot])
        if item == "legend":
            draw.legend(axis, et_label)
        elif item == "modality":
            draw.modality(axis, modality)
        else:
            draw.channel_weights(figure, axis, item, channel_weights[item])


def write_overview(path: str | Path, images: Mapping[str, np.ndarray], spacing: Sequence[float],
                   segmentations: Mapping[str, np.ndarray], heatmaps: Mapping[str, np.ndarray] | None = None,
                   et_label: int = 4, channel_weights: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
                   modality: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
                   requested: Sequence[str] | None = None) -> Path:
    """Write the PNG (atomically). `images`: "t1ce" and/or "flair" arrays; `spacing`: (z, y, x) mm;
    `segmentations`: label maps by model, and "truth"; `heatmaps`: maps by output name (`unet_gradcam_WT`,
    `ensemble_uncertainty_ET`, `attunet_attention_gate0`); `channel_weights`: {model: {"cbam0": [...], ...}};
    `modality`: the manifest's `modality_importance`; `requested`: the `--explain` kinds (see plan_panels)."""
    figure = draw_overview(images, spacing, segmentations, heatmaps, et_label, channel_weights, modality, requested)
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI, facecolor="black")
    return Path(path)
