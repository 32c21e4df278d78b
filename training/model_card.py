"""The model card's measured sections, made from the runs' logs and `training.evaluate`'s CSV files.

Everything between `<!-- NAME:begin -->` and `<!-- NAME:end -->` (NAME `measured`, `training` or `brats-scoring`)
in a Markdown file is replaced; the prose around it is kept. A file without the markers gets the section appended.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from BraTSXAILib.labels import REGIONS
from BraTSXAILib.outputs import atomic_write

from .log import read_log, selected_row, stopped_reason
from .stats import format_mean_se


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


BEGIN, END = markers("measured")  # the default section's markers
CHALLENGE = "brats-scoring"  # the section of the BraTS challenge's lesion-wise scores (training/challenge.py)
CHALLENGE_COLUMNS = ("model", "region", "Dice", "lesion-wise Dice", "found lesions' Dice", "HD95 mm",
                     "lesion-wise HD95 mm", "lesions found / missed / false")
CHALLENGE_CELLS = (("dice", 3), ("lesionwise_dice", 3), ("matched_dice", 3), ("hd95", 1), ("lesionwise_hd95", 1))
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


def scored_rows(evaluation: Path, models: list[str], split: str) -> tuple[dict[str, list[dict]], int]:
    """Each model's per-case rows of one split (training.evaluate's CSV files), and the number of cases."""
    results = {model: read_rows(evaluation / f"{model}_{split}.csv") for model in models}
    return results, len(next(iter(results.values())))


def measured_section(evaluation: Path, models: list[str], split: str, command: str) -> str:
    results, cases = scored_rows(evaluation, models, split)
    lines = [BEGIN, (f"Measured on the {cases} {split} cases by `{command}` (mean ± standard error over cases; "
                     "labels made exactly as `brats-xai segment` makes them, scored on each case's own 1 mm grid)."),
             ""]
    lines += region_table(results) + ["", "Per case:", ""] + case_table(results) + [END]
    return "\n".join(lines) + "\n"


def challenge_section(evaluation: Path, models: list[str], split: str, command: str) -> str:
    """Per model and region: our Dice and HD95 of the whole region beside the challenge's lesion-wise ones, the
    mean Dice of the found lesions alone, and the lesions found, missed and falsely predicted (summed over cases)."""
    results, cases = scored_rows(evaluation, models, split)
    begin, end = markers(CHALLENGE)
    lines = [begin, (f"Scored on the {cases} {split} cases by `{command}` (mean ± standard error over cases). "
                     "Lesion-wise scores are the BraTS challenge's (package `brats-evaluation`, glioma config; "
                     "`training/challenge.py`): the mean over reference lesions of at least 50 mm³ and all false "
                     "ones, each missed or false-positive lesion counting Dice 0 and HD95 373 mm, as the 2023+ "
                     "leaderboards rank teams; the lesion counts include lesions of any size."), "",
             "| " + " | ".join(CHALLENGE_COLUMNS) + " |", "|" + " --- |" * len(CHALLENGE_COLUMNS)]
    for model, rows in results.items():
        for region in REGIONS:
            counts = " / ".join(str(sum(int(row[f"lesions_{c}_{region}"]) for row in rows)) for c in ("tp", "fn", "fp"))
            cells = [format_mean_se(_column(rows, f"{key}_{region}"), digits) for key, digits in CHALLENGE_CELLS]
            lines.append(f"| `{model}` | {region} | " + " | ".join(cells) + f" | {counts} |")
    return "\n".join(lines + [end]) + "\n"


ENDINGS = {"early stopping": "early stopping (validation loss)", "maximum epochs": "maximum epochs"}


def training_section(runs: dict[str, Path]) -> str:
    """Per network: epochs run, the kept epoch, how the run ended, hours spent and what it started from."""
    header = ("| network | epochs run | kept epoch (selection) | ended by | training hours | validation hours | "
              "started from |")
    begin, end = markers("training")
    lines = [begin, header, "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, run in runs.items():
        config = json.loads((run / "config.json").read_text())
        rows = read_log(run / "log.csv")
        weights_summary = selected_row(rows, config["selection"])["epoch"]
        init = json.loads((run / "init.json").read_text()) if (run / "init.json").exists() else None
        ended = ENDINGS.get(stopped_reason(run), "not finished")
        hours = [sum(float(row[key]) for row in rows) / 3600 for key in ("train_seconds", "validation_seconds")]
        lines.append(f"| `{name}` | {len(rows)} of at most {config['epochs']} | {weights_summary} "
                     f"({config['selection']}) | {ended} | {hours[0]:.2f} | {hours[1]:.2f} | "
                     f"{('`' + init['from'] + '` ' + init['sha256'][:12]) if init else 'random weights'} |")
    return "\n".join(lines + [end]) + "\n"


def write_card(card: Path, section: str, name: str = "measured") -> None:
    """Replace the `name` section of a Markdown file by `section` (which carries its own markers)."""
    begin, end = markers(name)
    text = card.read_text() if card.exists() else "# Model card\n\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section.rstrip("\n") + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with atomic_write(card) as temporary:
        temporary.write_text(text)
