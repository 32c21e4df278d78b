"""`python -m training.evaluate --data DIR --models RUN [RUN ...] --out EVAL [--splits test ...]`.

Each network is run on every case of the chosen splits exactly as users run it (load, preprocess at the model's
spacing, whole-volume or sliding-window prediction, labels mapped back onto the case's original grid), and scored
there against the original label map: Dice, Jaccard and HD95 per region (WT, TC, ET), voxel accuracy, precision,
recall and F1, the BCE-Dice loss (in network space, on probabilities clamped to [1e-7, 1 − 1e-7]) and the
inference seconds (the network's forward passes only).

Writes `EVAL/<model>_<split>.csv` (one row per case) and `EVAL/summary.csv` (mean and standard error of every
column per model and split; rows of models and splits evaluated earlier into the same folder are kept). A model
is a run folder of `training.train` (its weights and split) or a weights file.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from tqdm import tqdm

from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import DEVICES, PRECISIONS, predict, probabilities_to_labels, resolve_device
from BraTSXAILib.io import discover_cases, load_case
from BraTSXAILib.labels import labels_to_regions
from BraTSXAILib.losses import BCEDiceLoss
from BraTSXAILib.metrics import region_metrics
from BraTSXAILib.outputs import atomic_write
from BraTSXAILib.preprocess import preprocess, preprocess_label
from BraTSXAILib.weights import load_model

from .split import SPLITS, read_split
from .stats import mean_se

CLAMP = 1e-7


@dataclass
class Candidate:
    name: str
    model: torch.nn.Module
    spacing: tuple | None
    normalisation: str
    patch_size: tuple | None
    split_file: Path | None


def open_model(path: Path, device: torch.device) -> Candidate:
    """A run folder (its `<name>.pt` and `split.json`; named after the folder) or a weights file (its stem)."""
    split_file = None
    if path.is_dir():
        config = path / "config.json"
        if not config.exists():
            raise InputError("the folder is not a training run (no config.json)", "give a run folder or a .pt", path)
        weights = path / f"{json.loads(config.read_text())['name']}.pt"
        split_file = path / "split.json"
    else:
        weights = path
    model, info = load_model(weights, device)
    name = path.stem if path.is_file() else path.name
    return Candidate(name, model, info.spacing, info.normalisation, info.patch_size, split_file)


def case_row(case, candidate: Candidate, device: torch.device, precision: str, prepared: dict) -> dict:
    """Scores of one model on one loaded case; `prepared` keeps preprocessing shared by models of equal spacing."""
    key = (candidate.spacing, candidate.normalisation)
    if key not in prepared:
        array, geometry = preprocess(case, candidate.spacing, candidate.normalisation)
        prepared[key] = (array, geometry, preprocess_label(case, geometry))
    array, geometry, network_label = prepared[key]
    started = time.perf_counter()
    probabilities = predict(candidate.model, array, device, precision, roi_size=candidate.patch_size)
    seconds = time.perf_counter() - started
    logits = torch.logit(torch.from_numpy(probabilities).clamp(CLAMP, 1 - CLAMP))[None]
    target = torch.from_numpy(labels_to_regions(network_label).astype(np.float32))[None]
    loss = float(BCEDiceLoss()(logits, target))
    labels = sitk.GetArrayFromImage(geometry.to_reference(probabilities_to_labels(probabilities), "nearest"))
    truth = sitk.GetArrayFromImage(case.label)
    scores = region_metrics(labels, truth, spacing=case.label.GetSpacing()[::-1])
    return {"model": candidate.name, "case": case.case_id, "seconds": seconds, "loss": loss, **scores}


def write_rows(rows: list[dict], path: Path) -> None:
    with atomic_write(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def summarise(rows: list[dict], split: str) -> list[dict]:
    """Mean and standard error of every numeric column, per model."""
    summary = []
    for model in dict.fromkeys(row["model"] for row in rows):
        mine = [row for row in rows if row["model"] == model]
        for column in mine[0]:
            if column in ("model", "case"):
                continue
            mean, se = mean_se([row[column] for row in mine])
            summary.append(
                {"model": model, "split": split, "metric": column, "mean": mean, "se": se, "n": len(mine)})
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of BraTS case folders with labels")
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="run folders or weights files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSV files")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=["test"])
    parser.add_argument("--split-file", type=Path, help="split JSON (default: that of the first run folder)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on a busy, shared machine)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    return parser.parse_args(argv)


def evaluate(args: argparse.Namespace) -> list[dict]:
    device = resolve_device(args.device)
    candidates = [open_model(path, device) for path in args.models]
    names = [candidate.name for candidate in candidates]
    if len(set(names)) != len(names):
        raise InputError("two models have the same name", "give run folders (or weights files) distinct names")
    split_file = args.split_file or next((c.split_file for c in candidates if c.split_file), None)
    if split_file is None:
        raise InputError("no split to evaluate on", "pass --split-file, or give a run folder among --models")
    sources = {source.case_id: source for source in discover_cases(args.data)}
    split = read_split(split_file, list(sources))
    summary = []
    for name in args.splits:
        if not split[name]:
            continue
        rows: dict[str, list[dict]] = {candidate.name: [] for candidate in candidates}
        for case_id in tqdm(split[name], desc=f"evaluate {name}", unit="case"):
            case, prepared = load_case(sources[case_id]), {}
            if case.label is None:
                raise InputError(f"case {case_id} has no label map", "evaluation needs labelled cases", args.data)
            for candidate in candidates:
                rows[candidate.name].append(case_row(case, candidate, device, args.precision, prepared))
        for model, model_rows in rows.items():
            write_rows(model_rows, args.out / f"{model}_{name}.csv")
            summary += summarise(model_rows, name)
    if summary:
        write_rows(merged_summary(args.out / "summary.csv", summary), args.out / "summary.csv")
    return summary


def merged_summary(path: Path, new: list[dict]) -> list[dict]:
    """The new rows after the old file's rows of every other (model, split), so that evaluating one more model
    or split into the same folder adds to its summary instead of replacing it."""
    if not path.exists():
        return new
    replaced = {(row["model"], row["split"]) for row in new}
    with open(path, newline="") as handle:
        kept = [row for row in csv.DictReader(handle) if (row["model"], row["split"]) not in replaced]
    return kept + new


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        summary = evaluate(args)
    except InputError as error:
        print(error.one_line(), file=sys.stderr)
        return 2
    for row in summary:
        if row["metric"].startswith(("dice_", "hd95_")) or row["metric"] in ("loss", "seconds"):
            print(f"{row['model']:>24} {row['split']:>10} {row['metric']:>10}: {row['mean']:.4f} ± {row['se']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
