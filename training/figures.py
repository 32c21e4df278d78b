"""The report's PNG figures: learning curves per network, violin plots of per-case scores per region."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from BraTSXAILib.labels import REGIONS  # noqa: E402
from BraTSXAILib.outputs import atomic_write  # noqa: E402


def _save(figure, path: Path) -> Path:
    with atomic_write(path) as temporary:
        figure.savefig(temporary, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def learning_curves(logs: dict[str, list[dict]], path: Path) -> Path:
    """Loss, Dice and Jaccard (mean of WT/TC/ET) per epoch; solid validation, dashed training, one colour a network."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = [("loss", "BCE-Dice loss"), ("dice", "Dice (mean of WT, TC, ET)"), ("jaccard", "Jaccard (mean)")]
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
    return _save(figure, path)


def violins(scores: dict[str, dict[str, list[float]]], metric: str, path: Path) -> Path:
    """One violin per network inside each region's group, with every case as a dot (test sets are small);
    `scores[network][region]` are per-case values."""
    networks = list(scores)
    figure, axis = plt.subplots(figsize=(3 + 1.2 * len(networks) * len(REGIONS), 4))
    width = 0.8 / max(len(networks), 1)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, network in enumerate(networks):
        positions = [r + (index - (len(networks) - 1) / 2) * width for r in range(len(REGIONS))]
        data = [scores[network][region] for region in REGIONS]
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
    axis.set_ylabel(metric)
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize="small")
    return _save(figure, path)
