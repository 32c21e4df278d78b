"""The report's PNG figures: the study's Figs. 4–6 (learning curves) and Fig. 7 (per-case scores, every split)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from BraTSXAILib.labels import REGIONS  # noqa: E402
from BraTSXAILib.outputs import atomic_write  # noqa: E402


def save(figure, path: Path, **options) -> Path:
    """Write the figure as a PNG, complete or not at all, and free it; `options` go to savefig."""
    with atomic_write(path) as temporary:
        figure.savefig(temporary, **{"dpi": 120, "bbox_inches": "tight", **options})
    plt.close(figure)
    return path


def learning_curves(logs: dict[str, list[dict]], path: Path) -> Path:
    """Figs. 4, 5, 6: loss, Dice and Jaccard (mean of WT/TC/ET) per epoch; solid validation, dashed training, one
    colour a network."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = [("loss", "Fig. 4: BCE-Dice loss"), ("dice", "Fig. 5: Dice (mean of WT, TC, ET)"),
              ("jaccard", "Fig. 6: Jaccard (mean of WT, TC, ET)")]
    for colour, (name, rows) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], logs.items()):
        epochs = [row["epoch"] for row in rows]
        for axis, (metric, title) in zip(axes, panels):
            for split, style in (("train", "--"), ("validation", "-")):
                if metric == "loss":
                    values = [row[f"{split}_loss"] for row in rows]
                else:
                    values = [np.mean([row[f"{split}_{metric}_{region}"] for region in REGIONS]) for row in rows]
                axis.plot(epochs, values, style, color=colour, label=f"{name} ({split})")
            axis.set_title(title)
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize="small")
    return save(figure, path)


def violins(scores: dict[str, dict[str, dict[str, list[float]]]], metric: str, path: Path) -> Path:
    """Fig. 7: one panel per split, in it one violin per network inside each region's group, every case a dot
    (test sets are small); `scores[split][network][region]` are per-case values. One file holds every split, so
    nothing is overwritten by a later split."""
    splits = list(scores)
    networks = list(dict.fromkeys(n for per_split in scores.values() for n in per_split))
    figure, axes = plt.subplots(1, max(len(splits), 1), squeeze=False,
                                figsize=(max(len(splits), 1) * (3 + 1.2 * len(networks) * len(REGIONS)), 4))
    for axis, split in zip(axes[0], splits):
        _violin_panel(axis, scores[split], networks)
        axis.set_title(f"Fig. 7: {metric} per case ({split})")
    axes[0][0].set_ylabel(metric)
    return save(figure, path)


def _violin_panel(axis, scores: dict[str, dict[str, list[float]]], networks: list[str]) -> None:
    width = 0.8 / max(len(networks), 1)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, network in enumerate(networks):
        positions = [r + (index - (len(networks) - 1) / 2) * width for r in range(len(REGIONS))]
        data = [scores.get(network, {}).get(region, []) for region in REGIONS]
        kept = [(p, d) for p, d in zip(positions, data) if len(d)]
        if not kept:
            continue
        colour = colours[index % len(colours)]
        parts = axis.violinplot([d for _, d in kept], [p for p, _ in kept], widths=width * 0.9, showmedians=True)
        for body in parts["bodies"]:
            body.set_facecolor(colour)
            body.set_alpha(0.5)
        for lines in ("cmedians", "cmins", "cmaxes", "cbars"):
            parts[lines].set_color(colour)
        for position, values in kept:
            axis.scatter(np.full(len(values), position), values, s=10, color="black", zorder=3)
        axis.plot([], [], color=colour, linewidth=8, alpha=0.5, label=network)
    axis.set_xticks(range(len(REGIONS)), REGIONS)
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize="small")
