"""`python -m training.publish --run RUN --id ID [--checkpoint FILE] [--evaluation EVAL] [--half] [--default]`.

Copies the best weights of a training run (or, with `--checkpoint`, those of one epoch's checkpoint of that run)
into `Resources/Models/<id>.pt` and registers them (sha256, training summary, validation scores from
`training.evaluate`'s summary) in `Resources/Models/registry.json`. With `--half`
the tensors are stored as float16 to halve the file, but only if that changes no label on the run's validation
cases; otherwise the float32 file is bundled and the reason printed.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from BraTSXAILib.inference import predict
from BraTSXAILib.io import discover_cases, load_case
from BraTSXAILib.labels import REGIONS, regions_to_labels
from BraTSXAILib.models import build_model
from BraTSXAILib.outputs import atomic_write, read_json, write_json
from BraTSXAILib.preprocess import preprocess
from BraTSXAILib.weights import BUNDLED_DIR, REGISTRY_FORMAT, read_weights, sha256_of

from .checkpoint import load_checkpoint
from .command import run_command
from .log import read_log, validation_dice

METRICS = ("dice", "jaccard", "hd95")


def network(payload: dict) -> torch.nn.Module:
    model = build_model(payload["architecture"], int(payload["width"]))
    model.load_state_dict({name: tensor.float() for name, tensor in payload["state_dict"].items()})
    return model.eval()


def from_checkpoint(path: Path, run: Path) -> dict:
    """The weights dict of one epoch's training checkpoint, with that epoch's validation scores."""
    checkpoint = load_checkpoint(path)
    config, epoch = checkpoint["config"], int(checkpoint["counters"]["epoch"])
    row = next(row for row in read_log(run / "log.csv") if row["epoch"] == epoch)
    return {
        "state_dict": checkpoint["model"], "architecture": config["architecture"], "width": config["width"],
        "spacing": config["spacing"], "normalisation": config["normalisation"], "patch_size": config["patch_size"],
        "training": {"config": config, "selection": "checkpoint", "best_epoch": epoch, "epochs_run": epoch,
                     "validation_loss": row["validation_loss"],
                     "validation": validation_dice(row),
                     "torch": str(torch.__version__)},
    }


def halved(payload: dict) -> dict:
    state = {name: t.half() if t.is_floating_point() else t for name, t in payload["state_dict"].items()}
    return {**payload, "state_dict": state}


def changed_labels(payload: dict, half: dict, data: Path, cases: list[str]) -> int:
    """How many voxels of the validation cases get another label from the float16 weights."""
    full, reduced = network(payload), network(half)
    sources = {source.case_id: source for source in discover_cases(data)}
    changed = 0
    for case_id in cases:
        array, _ = preprocess(load_case(sources[case_id]), payload.get("spacing"), payload.get("normalisation", "zscore"))
        labels = [regions_to_labels(predict(model, array, "cpu", "float32") >= 0.5) for model in (full, reduced)]
        changed += int(np.count_nonzero(labels[0] != labels[1]))
    return changed


def validation_scores(evaluation: Path, names: tuple[str, ...]) -> dict:
    """Mean validation Dice, Jaccard and HD95 per region from `training.evaluate`'s summary.csv, for the model
    evaluated under one of `names` (the run folder's name, or the published file's stem = its id)."""
    with open(evaluation / "summary.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["model"] in names and row["split"] == "validation"]
    wanted = {f"{metric}_{region}" for metric in METRICS for region in REGIONS} | {"seconds"}
    return {row["metric"]: round(float(row["mean"]), 4) for row in rows if row["metric"] in wanted}


def register(entries: list[dict], registry: Path, ensembles: list[dict] | None = None) -> None:
    """Add or replace `entries` (by id) and `ensembles` (by members) in one atomic write of the registry."""
    data = read_json(registry, "model registry", "restore the file") if registry.exists() else {}
    ids = {entry["id"] for entry in entries}
    models = [m for m in data.get("models", []) if m["id"] not in ids]
    for entry in entries:
        if entry.get("default"):
            for other in models:
                if other["architecture"] == entry["architecture"]:
                    other["default"] = False
    new_members = [sorted(e["members"]) for e in ensembles or []]
    kept = [e for e in data.get("ensembles", []) if sorted(e["members"]) not in new_members]
    write_json({"format": REGISTRY_FORMAT, "models": models + entries, "ensembles": kept + list(ensembles or [])},
               registry)


def registry_entry(model_id: str, payload: dict, target: Path, split: dict, dataset: str, default: bool,
                   validation: dict) -> dict:
    """What the registry says of a published weights file: what it is, how it was made, how it scored."""
    return {
        "id": model_id, "architecture": payload["architecture"], "width": int(payload["width"]),
        "spacing": payload.get("spacing"), "normalisation": payload.get("normalisation", "zscore"),
        "file": target.name, "sha256": sha256_of(target), "default": default,
        "precision": "float16" if payload["state_dict"]["head.weight"].dtype == torch.float16 else "float32",
        "trained_on": f"{dataset}: {len(split['train'])} training cases; validation cases "
                      f"{', '.join(split['validation'])}; test cases {', '.join(split['test']) or 'none'}",
        **({"labels": payload["labels"]} if payload.get("labels") else {}),
        "validation": validation,
        "training": payload.get("training", {}),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.publish", description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="training run folder")
    parser.add_argument("--id", required=True, help="registry id, e.g. unet-brats18-w16")
    parser.add_argument("--data", type=Path, required=True, help="the cases the run was trained on")
    parser.add_argument("--checkpoint", type=Path, help="publish this epoch checkpoint of the run instead of its best")
    parser.add_argument("--evaluation", type=Path, help="training.evaluate output folder with summary.csv")
    parser.add_argument("--half", action="store_true", help="store float16 if no validation label changes")
    parser.add_argument("--default", action="store_true", help="make it its architecture's default model")
    parser.add_argument("--models-dir", type=Path, default=BUNDLED_DIR, help="where the registry lives")
    parser.add_argument("--dataset", default="BraTS 2018", help="the data the run was trained on, for the registry")
    return parser.parse_args(argv)


def publish(args: argparse.Namespace) -> dict:
    config = read_json(args.run / "config.json", "run config", "give a training run folder to --run")
    split = read_json(args.run / "split.json", "run split", "give a training run folder to --run")
    payload = from_checkpoint(args.checkpoint, args.run) if args.checkpoint else read_weights(args.run / f"{config['name']}.pt")
    if args.half:
        half = halved(payload)
        changed = changed_labels(payload, half, args.data, split["validation"])
        print(f"float16 weights change {changed} validation voxel labels: bundling " + ("float32" if changed else "float16"))
        payload = payload if changed else half
    target = args.models_dir / f"{args.id}.pt"
    with atomic_write(target) as temporary:
        torch.save(payload, temporary)
    validation = validation_scores(args.evaluation, (args.run.name, args.id)) if args.evaluation else {}
    entry = registry_entry(args.id, payload, target, split, args.dataset, args.default, validation)
    register([entry], args.models_dir / "registry.json")
    print(f"registered {args.id} ({target.stat().st_size / 1e6:.1f} MB, sha256 {entry['sha256'][:12]}…)")
    return entry


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args(argv), publish, lambda entry: 0)


if __name__ == "__main__":
    raise SystemExit(main())
