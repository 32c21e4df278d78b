"""The per-epoch CSV log: rewritten whole (atomically) each epoch, cut back to the checkpoint on resume."""
from __future__ import annotations

import csv
from pathlib import Path

from BraTSXAILib.labels import REGIONS
from BraTSXAILib.outputs import atomic_write

SCORES = [f"{metric}_{region}" for metric in ("dice", "jaccard") for region in REGIONS]
COLUMNS = (
    ["epoch", "lr"]
    + ["train_loss"] + [f"train_{score}" for score in SCORES]
    + ["validation_loss"] + [f"validation_{score}" for score in SCORES]
    + ["train_seconds", "validation_seconds", "epoch_seconds"]
)


def read_log(path: str | Path) -> list[dict]:
    """Rows as dicts of floats (epoch as int); an absent log is empty."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [
            {key: int(value) if key == "epoch" else float(value) for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


def write_log(rows: list[dict], path: str | Path) -> None:
    with atomic_write(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({key: row[key] for key in COLUMNS} for row in rows)


SELECTIONS = ("loss", "dice")


def selection_score(row: dict, selection: str) -> float:
    """Higher is better: minus the validation loss, or the mean validation Dice over WT, TC and ET."""
    if selection == "loss":
        return -row["validation_loss"]
    return sum(row[f"validation_dice_{region}"] for region in REGIONS) / len(REGIONS)


def stopped_reason(run: Path) -> str:
    """Why a run ended, as its checkpoint records it ("early stopping", "maximum epochs"); "running" when it holds
    no end (interrupted, or still training)."""
    checkpoint = Path(run) / "checkpoint.pt"
    if not checkpoint.exists():
        return "running"
    import torch

    return torch.load(checkpoint, map_location="cpu", weights_only=True)["counters"]["stopped"] or "running"


def selected_row(rows: list[dict], selection: str) -> dict:
    """The epoch whose weights a run keeps (the earliest of equals); empty before the first epoch."""
    return max(rows, key=lambda row: selection_score(row, selection)) if rows else {}


def validation_dice(row: dict) -> dict[str, float]:
    """A log row's validation Dice per region, keyed `dice_WT`...: what a weights file records of its epoch."""
    return {key[len("validation_"):]: value for key, value in row.items() if key.startswith("validation_dice_")}
