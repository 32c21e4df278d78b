"""Drawing pieces of overview.png: one slice with its overlays, the "no faithful map" note, and the side column
(label legend, colour bars, modality shares, CBAM channel weights). Arrays are (z, y, x); slices are drawn so
that on a BraTS (LPS) grid axial views show anterior up and the patient's left on the right, coronal and
sagittal views superior up."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .labels import bounding_box, label_classes

VIEWS = ("axial", "coronal", "sagittal")
LABEL_ALPHA = 0.45  # label colours over the MRI: strong enough to read, weak enough to see the anatomy through
HEAT_ALPHA = 0.65
HEAT_FLOOR = 0.02  # map values below this stay transparent, so the anatomy shows where a map says nothing
COLORMAPS = {"gradcam": "inferno", "attention": "inferno", "uncertainty": "turbo"}  # Slicer: Inferno, ColdToHotRainbow
BAR_TITLES = {"gradcam": "Grad-CAM / attention (0–1)", "uncertainty": "uncertainty (entropy, bits)"}
TEXT = "white"
NOTE = "#9a9a9a"


@dataclass(frozen=True)
class View:
    """How one plane's slices are drawn. `offset`: the volume indices (column, row) of a slice's first pixel, so
    that an axes' data coordinates are voxel indices of the whole volume."""

    plane: int
    aspect: float
    offset: tuple[int, int]

    @property
    def origin(self) -> str:
        return "upper" if self.plane == 0 else "lower"

    def extent(self, shape: Sequence[int]) -> tuple[float, float, float, float]:
        (rows, columns), (column, row) = shape, self.offset
        first, last = row - 0.5, row + rows - 0.5
        return column - 0.5, column + columns - 0.5, *((last, first) if self.origin == "upper" else (first, last))


def content_box(volume: np.ndarray, margin: int = 3) -> tuple[slice, slice, slice]:
    """The bounding box of the non-zero voxels (the brain) widened by `margin` voxels: the part slices show."""
    return bounding_box(volume != 0, margin) or tuple(slice(0, n) for n in volume.shape)


def plane_slices(volume: np.ndarray, point: Sequence[int], box: Sequence[slice]) -> list[np.ndarray]:
    """Axial, coronal and sagittal slices of `volume` through `point` (z, y, x), inside `box`."""
    (z, y, x), (bz, by, bx) = point, box
    return [volume[z, by, bx], volume[bz, y, bx], volume[bz, by, x]]


def views(spacing: Sequence[float], box: Sequence[slice]) -> list[View]:
    """The three planes' views for voxel `spacing` (z, y, x) mm and the shown `box`."""
    (sz, sy, sx), (bz, by, bx) = spacing, box
    return [View(0, sy / sx, (bx.start, by.start)), View(1, sz / sx, (bx.start, bz.start)),
            View(2, sz / sy, (by.start, bz.start))]


def plane_heights(box: Sequence[slice], spacing: Sequence[float]) -> list[float]:
    """Physical height over width of each plane's slice: the rows' height ratios."""
    (nz, ny, nx), (sz, sy, sx) = (b.stop - b.start for b in box), spacing
    return [ny * sy / (nx * sx), nz * sz / (nx * sx), nz * sz / (ny * sy)]


def intensity_window(volume: np.ndarray) -> tuple[float, float]:
    """1st–99th percentile of the non-zero voxels: the grey range a reader expects for an MRI."""
    inside = volume[volume != 0]
    if inside.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(inside, (1, 99))
    return float(low), float(high if high > low else low + 1)


def label_colormap(et_label: int):
    from matplotlib.colors import ListedColormap

    colours = np.zeros((max(et_label, 4) + 1, 4))
    for label in label_classes(et_label):
        colours[label["value"]] = [*label["color"], LABEL_ALPHA]
    return ListedColormap(colours)


def cell(axis, view: View, background: np.ndarray, window: tuple[float, float], labels: np.ndarray | None = None,
         label_map=None, heat: np.ndarray | None = None, heat_kind: str | None = None,
         outline: np.ndarray | None = None) -> None:
    """One slice: the MRI in grey, then the label colours, or a heat map with the outline of its region."""
    common = {"aspect": view.aspect, "origin": view.origin, "interpolation": "nearest",
              "extent": view.extent(background.shape)}
    axis.imshow(background, cmap="gray", vmin=window[0], vmax=window[1], **common)
    if labels is not None:
        axis.imshow(labels, cmap=label_map, vmin=0, vmax=label_map.N - 1, **common)
    if heat is not None:
        axis.imshow(np.ma.masked_less(heat, HEAT_FLOOR), cmap=COLORMAPS[heat_kind], vmin=0, vmax=1,
                    alpha=HEAT_ALPHA, **common)
    if outline is not None and outline.any() and not outline.all():
        (rows, columns), (column, row) = outline.shape, view.offset
        axis.contour(np.arange(column, column + columns), np.arange(row, row + rows), outline.astype(np.float32),
                     levels=[0.5], colors="white", linewidths=0.6)
    axis.set_xticks([])
    axis.set_yticks([])


def note(axis, view: View, text: str, shape: Sequence[int]) -> None:
    """A cell with no map: a plain note on black, in a box of the other slices' `shape`."""
    axis.imshow(np.zeros(shape), cmap="gray", vmin=0, vmax=1, aspect=view.aspect, extent=view.extent(shape),
                origin=view.origin)
    axis.text(0.5, 0.5, text, color=NOTE, fontsize=8, ha="center", va="center", transform=axis.transAxes,
              wrap=True)
    axis.set_xticks([])
    axis.set_yticks([])
    for side in axis.spines.values():
        side.set_color("#333333")


def legend(axis, et_label: int) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=label["color"], label=f"{label['value']} {label['name']}")
               for label in label_classes(et_label)]
    axis.axis("off")
    axis.legend(handles=handles, loc="center left", frameon=False, labelcolor=TEXT, fontsize=9,
                title="labels", title_fontproperties={"size": 9, "weight": "bold"}).get_title().set_color(TEXT)


def colour_bar(figure, axis, kind: str) -> None:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = figure.colorbar(ScalarMappable(Normalize(0, 1), colormaps[COLORMAPS[kind]]), cax=axis,
                          orientation="horizontal")
    bar.set_label(BAR_TITLES[kind], color=TEXT, fontsize=8)
    bar.ax.tick_params(colors=TEXT, labelsize=7)


def modality(axis, importance: Mapping[str, Mapping[str, Mapping[str, float]]]) -> None:
    """One stacked horizontal bar per network and region: each sequence's share of the evidence (sums to 1)."""
    groups = [(f"{model} {region}", shares) for model, regions in importance.items()
              for region, shares in regions.items()]
    sequences = list(groups[0][1]) if groups else []
    left = np.zeros(len(groups))
    for sequence in sequences:
        widths = np.array([shares[sequence] for _, shares in groups], dtype=float)
        axis.barh(np.arange(len(groups)), widths, left=left, label=sequence.upper(), height=0.75)
        left += widths
    axis.set_yticks(np.arange(len(groups)), [name for name, _ in groups])
    axis.invert_yaxis()
    axis.set_xlim(0, 1)
    axis.set_facecolor("black")
    axis.tick_params(colors=TEXT, labelsize=7)
    axis.set_title("share of evidence per sequence", color=TEXT, fontsize=8)
    axis.legend(fontsize=7, ncols=len(sequences), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False,
                labelcolor=TEXT, handlelength=1)


def channel_weights(figure, axis, model: str, levels: Mapping[str, Sequence[float]]) -> None:
    """A line per CBAM level, its channel weights in [0, 1] (blank past the level's width)."""
    from matplotlib import colormaps

    widest = max(len(weights) for weights in levels.values())
    matrix = np.full((len(levels), widest), np.nan)
    for index, weights in enumerate(levels.values()):
        matrix[index, :len(weights)] = weights
    image = axis.imshow(matrix, cmap=colormaps["inferno"].with_extremes(bad="black"), vmin=0, vmax=1,
                        aspect="auto", interpolation="nearest")
    axis.set_yticks(range(len(levels)), list(levels))
    axis.set_xlabel("channel", color=TEXT, fontsize=7)
    axis.tick_params(colors=TEXT, labelsize=7)
    axis.set_title(f"{model} CBAM channel weights", color=TEXT, fontsize=8)
    figure.colorbar(image, ax=axis, fraction=0.05).ax.tick_params(colors=TEXT, labelsize=6)
