"""`python -m training.evaluate --data DIR --models RUN [RUN ...] --out EVAL [--splits test ...]`.

Each network is run on every case of the chosen splits exactly as users run it (load, preprocess at the model's
spacing, whole-volume or sliding-window prediction on the backend `segment` would choose, labels mapped back onto
the case's original grid), and scored
there against the original label map: Dice, Jaccard and HD95 per region (WT, TC, ET), voxel accuracy, precision,
recall and F1, the BCE-Dice loss (in network space, on probabilities clamped to [1e-7, 1 − 1e-7]) and the
inference seconds (the network's forward passes only). With `--brats-scoring`, also the BraTS challenge's
lesion-wise Dice and HD95 per region and the lesions found, missed and false (`training/challenge.py`).

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from tqdm import tqdm

from BraTSXAILib.batch import labelled_sources
from BraTSXAILib.choices import BACKENDS
from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import DEVICES, PRECISIONS, predict, resolve_device, resolve_precision
from BraTSXAILib.io import load_case
from BraTSXAILib.labels import labels_to_regions
from BraTSXAILib.losses import BCEDiceLoss
from BraTSXAILib.metrics import region_metrics
from BraTSXAILib.openvino_backend import resolve_backend
from BraTSXAILib.outputs import atomic_write
from BraTSXAILib.pipeline import ENSEMBLE, LoadedModel
from BraTSXAILib.postprocess import LabelRule, labels_from_probabilities, reference_probabilities
from BraTSXAILib.preprocess import preprocess, preprocess_label
from BraTSXAILib.uncertainty import Members
from BraTSXAILib.weights import ModelInfo, ensemble_rule, load_model

from .challenge import challenge_scores, glioma_evaluator
from .command import run_command
from .model_card import CHALLENGE, challenge_section, write_card
from .split import SPLITS, read_split
from .stats import mean_se

CLAMP = 1e-7


@dataclass
class Candidate:
    name: str
    model: torch.nn.Module
    info: ModelInfo
    split_file: Path | None
    backend: str = "torch"  # of the passes without gradients, resolved as `segment` resolves --backend
    loaded: LoadedModel = field(init=False)  # what `segment` holds of the model: its OpenVINO compilations

    def __post_init__(self):
        self.loaded = LoadedModel(self.info, "cpu", self.model)

    def runner(self, precision: str, device: torch.device):
        """What a pass without gradients runs on: the PyTorch network, or OpenVINO's compilation of it (cached
        per weights file, as for `segment`)."""
        if self.backend != "openvino":
            return self.model
        return self.loaded.openvino(resolve_precision(precision, device))


def open_model(selector: str, device: torch.device, backend: str = "torch") -> Candidate:
    """A run folder (its `<name>.pt` and `split.json`; named after the folder), a weights file (its stem) or a
    registry id (the id); `backend` as `segment --backend` takes it."""
    path, split_file = Path(selector), None
    if path.is_dir():
        config = path / "config.json"
        if not config.exists():
            raise InputError("the folder is not a training run (no config.json)", "give a run folder or a .pt", path)
        weights: str | Path = path / f"{json.loads(config.read_text())['name']}.pt"
        split_file = path / "split.json"
    else:
        weights = selector
    model, info = load_model(weights, device)
    name = path.name if path.is_dir() else (path.stem if path.is_file() else info.id)
    return Candidate(name, model, info, split_file, resolve_backend(backend, device))


def case_probabilities(case, candidate: Candidate, device: torch.device, precision: str, prepared: dict) -> dict:
    """One model on one loaded case: its probabilities on the reference grid, loss and seconds; `prepared` keeps
    preprocessing shared by models of equal spacing."""
    info = candidate.info
    key = (info.spacing, info.normalisation)
    if key not in prepared:
        array, geometry = preprocess(case, info.spacing, info.normalisation)
        prepared[key] = (array, geometry, preprocess_label(case, geometry))
    array, geometry, network_label = prepared[key]
    runner = candidate.runner(precision, device)  # a first conversion is not inference time
    started = time.perf_counter()
    probabilities = predict(runner, array, device, precision, roi_size=info.patch_size)
    seconds = time.perf_counter() - started
    logits = torch.logit(torch.from_numpy(probabilities).clamp(CLAMP, 1 - CLAMP))[None]
    target = torch.from_numpy(labels_to_regions(network_label).astype(np.float32))[None]
    loss = float(BCEDiceLoss()(logits, target))
    return {"on_reference": reference_probabilities(probabilities, geometry), "seconds": seconds, "loss": loss}


def scored(name: str, case, on_reference: np.ndarray, rule: LabelRule, extra: dict, challenge=None) -> dict:
    """The row of one model on one case: its labels made as `segment` makes them, scored on the case's grid
    (and by the challenge's evaluator, when one is given)."""
    spacing = case.label.GetSpacing()[::-1]
    labels = labels_from_probabilities(on_reference, rule, spacing)
    truth = sitk.GetArrayFromImage(case.label)
    lesions = challenge_scores(challenge, labels, truth, spacing) if challenge is not None else {}
    return {"model": name, "case": case.case_id, **extra, **region_metrics(labels, truth, spacing=spacing),
            "volume_ET": int(np.count_nonzero(labels == 4)), "true_volume_ET": int(np.count_nonzero(truth == 4)),
            **lesions}


def case_rows(case, candidates: list[Candidate], device: torch.device, precision: str,
              ensemble: LabelRule | None, challenge=None) -> list[dict]:
    """Rows of every model on one case, and of their mean (`ensemble`) when a rule for it is given;
    `challenge`: the BraTS challenge's evaluator (`challenge.glioma_evaluator()`) or None."""
    prepared, rows, members = {}, [], Members()
    for candidate in candidates:
        result = case_probabilities(case, candidate, device, precision, prepared)
        on_reference = result.pop("on_reference")
        rows.append(scored(candidate.name, case, on_reference, candidate.info.rule, result, challenge))
        members.add_network(on_reference)
    if ensemble is not None:
        seconds = sum(row["seconds"] for row in rows)
        rows.append(scored(ENSEMBLE, case, members.mean(), ensemble, {"seconds": seconds}, challenge))
    for candidate in candidates:  # as the pipeline does: OpenVINO keeps a pass's buffers, ~250 MB per network
        for compiled in candidate.loaded.compiled.values():
            compiled.release()
    return rows


def readable_cases(data: Path, split_file: Path, name: str) -> Iterator:
    """The loaded cases of one split, in its order; a case that cannot be read is reported in one line and left
    out, so one damaged file does not stop an evaluation."""
    sources, broken = labelled_sources(data)
    for case_id in tqdm(read_split(split_file, list(sources | broken))[name], desc=name, unit="case"):
        try:
            if case_id in broken:
                raise broken[case_id]
            yield load_case(sources[case_id])
        except InputError as error:
            tqdm.write(f"warning: case {case_id} left out: {error.one_line()}")


def write_rows(rows: list[dict], path: Path) -> None:
    with atomic_write(path) as temporary, open(temporary, "w", newline="") as handle:
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


def validation_parser(prog: str, description: str, out_help: str, backend: bool = True) -> argparse.ArgumentParser:
    """The arguments every validation-case command shares (calibrate, uncertainty, explain_defaults); `backend`:
    whether it has passes without gradients, which run on the backend `segment` would choose."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--data", type=Path, required=True, help="folder of BraTS case folders with labels")
    parser.add_argument("--models", nargs="+", required=True, help="registry ids, weights files or run folders")
    parser.add_argument("--split-file", type=Path, required=True, help="split JSON; its validation cases are used")
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    if backend:
        parser.add_argument("--backend", choices=BACKENDS, default="auto", help="as `brats-xai segment --backend`")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of BraTS case folders with labels")
    parser.add_argument("--models", nargs="+", required=True, help="run folders, weights files or registry ids")
    parser.add_argument("--ensemble", action="store_true",
                        help="also score the mean of the models' probabilities (model name `ensemble`), with the "
                             "registry's rule for these ids, else 0.5 everywhere")
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSV files")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=["test"])
    parser.add_argument("--split-file", type=Path, help="split JSON (default: that of the first run folder)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on a busy, shared machine)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="as `brats-xai segment --backend`")
    parser.add_argument("--brats-scoring", action="store_true",
                        help="also score lesion-wise Dice and HD95 with the BraTS challenge's package "
                             "(pip install 'brats-xai[brats]')")
    parser.add_argument("--card", type=Path,
                        help="with --brats-scoring and one split: write those scores into this model card's "
                             "brats-scoring section, with the command that made them")
    return parser.parse_args(argv)


def evaluate(args: argparse.Namespace) -> list[dict]:
    if args.card and not (args.brats_scoring and len(args.splits) == 1):
        raise InputError("--card writes the challenge's scores of one split", "add --brats-scoring, give one --splits")
    challenge = glioma_evaluator() if args.brats_scoring else None  # before any model loads
    device = resolve_device(args.device)
    candidates = [open_model(path, device, args.backend) for path in args.models]
    names = [candidate.name for candidate in candidates]
    if len(set(names)) != len(names):
        raise InputError("two models have the same name", "give run folders (or weights files) distinct names")
    split_file = args.split_file or next((c.split_file for c in candidates if c.split_file), None)
    if split_file is None:
        raise InputError("no split to evaluate on", "pass --split-file, or give a run folder among --models")
    ensemble = None
    if args.ensemble:
        ensemble = ensemble_rule([c.info.id for c in candidates]) or LabelRule()
        names.append(ENSEMBLE)
    summary = []
    for name in args.splits:
        rows: dict[str, list[dict]] = {model: [] for model in names}
        for case in readable_cases(args.data, split_file, name):
            for row in case_rows(case, candidates, device, args.precision, ensemble, challenge):
                rows[row["model"]].append(row)
        if not rows[names[0]]:
            continue
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
    command = "python -m training.evaluate " + " ".join(sys.argv[1:] if argv is None else argv)

    def finish(summary: list[dict]) -> int:
        if args.card and summary:
            models = list(dict.fromkeys(row["model"] for row in summary))
            write_card(args.card, challenge_section(args.out, models, args.splits[0], command), CHALLENGE)
        for row in summary:
            if row["metric"].startswith(("dice_", "hd95_", "lesionwise_")) or row["metric"] in ("loss", "seconds"):
                print(f"{row['model']:>24} {row['split']:>10} {row['metric']:>10}: "
                      f"{row['mean']:.4f} ± {row['se']:.4f}")
        return 0

    return run_command(args, evaluate, finish)


if __name__ == "__main__":
    sys.exit(main())
