"""training.evaluate: its summary grows with more models or splits; its passes run on segment's backend."""
from __future__ import annotations

import csv
import importlib.util

import pytest
import torch
from tiny_models import tiny_registry

from BraTSXAILib.io import load_case
from BraTSXAILib.phantom import write_phantom
from training.evaluate import case_rows, merged_summary, open_model, write_rows


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


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="the [openvino] extra")
def test_passes_run_on_the_backend_segment_would_choose(tmp_path):
    registry = tiny_registry(tmp_path / "models", ("unet",))
    case = load_case(write_phantom(tmp_path / "in", shape=(40, 44, 40), spacing=(2.0, 2.0, 2.0)))
    rows = {}
    for backend in ("torch", "openvino"):
        candidate = open_model(str(next((tmp_path / "models").glob("*.pt"))), torch.device("cpu"), backend)
        runner = candidate.runner("float32", torch.device("cpu"))
        assert isinstance(runner, torch.nn.Module) == (backend == "torch")
        rows[backend] = case_rows(case, [candidate], torch.device("cpu"), "float32", None)[0]
    assert open_model(str(registry.parent / "unet-tiny-w8.pt"), torch.device("cpu"), "auto").backend == "openvino"
    for metric in ("dice_WT", "dice_TC", "dice_ET", "loss"):  # float32: the two backends agree to rounding
        assert rows["openvino"][metric] == pytest.approx(rows["torch"][metric], abs=1e-4)
