"""The model card's measured tables, made from `training.evaluate`'s CSV files, written between two markers.

Everything between `<!-- measured:begin -->` and `<!-- measured:end -->` in MODEL_CARD.md is replaced; the
prose around it is kept. A card without the markers gets the section appended.
"""
from __future__ import annotations

import csv
from pathlib import Path

from BraTSXAILib.labels import REGIONS
from BraTSXAILib.outputs import atomic_write

from .stats import format_mean_se

BEGIN, END = "<!-- measured:begin -->", "<!-- measured:end -->"
REGION_METRICS = (("dice", "Dice", 3), ("hd95", "HD95 mm", 1), ("precision", "precision", 3), ("recall", "recall", 3))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _column(rows: list[dict], key: str) -> list[float]:
    return [float(row[key]) for row in rows]


def region_table(results: dict[str, list[dict]]) -> list[str]:
    header = ["model"] + [f"{label} {region}" for _, label, _ in REGION_METRICS for region in REGIONS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for model, rows in results.items():
        cells = [format_mean_se(_column(rows, f"{key}_{region}"), digits)
                 for key, _, digits in REGION_METRICS for region in REGIONS]
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    return lines


def case_table(results: dict[str, list[dict]]) -> list[str]:
    """Dice WT/TC/ET per case and model, with predicted and true ET volume (voxels of the case's grid)."""
    models = list(results)
    header = ["case", "true ET voxels"] + [f"`{m}` WT/TC/ET (ET voxels)" for m in models]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for index, first in enumerate(results[models[0]]):
        cells = [first["case"], first["true_volume_ET"]]
        for model in models:
            row = results[model][index]
            dice = "/".join(f"{float(row[f'dice_{region}']):.2f}" for region in REGIONS)
            cells.append(f"{dice} ({row['volume_ET']})")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def measured_section(evaluation: Path, models: list[str], split: str, command: str) -> str:
    results = {model: read_rows(evaluation / f"{model}_{split}.csv") for model in models}
    cases = len(next(iter(results.values())))
    lines = [BEGIN, f"Measured on the {cases} {split} cases by `{command}` (mean ± standard error over cases; "
             "labels made exactly as `brats-xai segment` makes them, scored on each case's own 1 mm grid).", ""]
    lines += region_table(results) + ["", "Per case:", ""] + case_table(results) + [END]
    return "\n".join(lines) + "\n"


def write_card(card: Path, section: str) -> None:
    text = card.read_text() if card.exists() else "# Model card\n\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section.rstrip("\n") + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with atomic_write(card) as temporary:
        temporary.write_text(text)
