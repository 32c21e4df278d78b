"""training.evaluate's summary: evaluating more models or splits into one folder adds to it."""
from __future__ import annotations

import csv

from training.evaluate import merged_summary, write_rows


def _row(model: str, split: str, mean: float) -> dict:
    return {"model": model, "split": split, "metric": "dice_WT", "mean": mean, "se": 0.1, "n": 2}


def test_a_second_evaluation_replaces_its_own_rows_and_keeps_the_others(tmp_path):
    path = tmp_path / "summary.csv"
    write_rows([_row("a", "validation", 0.5), _row("b", "validation", 0.6)], path)
    write_rows(merged_summary(path, [_row("a", "validation", 0.7), _row("a", "test", 0.4)]), path)
    with open(path, newline="") as handle:
        rows = [(r["model"], r["split"], float(r["mean"])) for r in csv.DictReader(handle)]
    assert rows == [("b", "validation", 0.6), ("a", "validation", 0.7), ("a", "test", 0.4)]


def test_without_an_earlier_summary_the_new_rows_are_the_summary(tmp_path):
    rows = [_row("a", "test", 0.4)]
    assert merged_summary(tmp_path / "summary.csv", rows) == rows
