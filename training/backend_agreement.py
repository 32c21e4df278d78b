"""`python -m training.backend_agreement DATA [DATA ...] [--models all] [--precision float32]`: do PyTorch and
OpenVINO give users the same?

For every case folder found under DATA (labelled or not) and every model, both backends segment the case on the
whole volume, as `segment` does, in float32 or (`--precision bf16`) each in its bf16 (PyTorch's autocast with
channels-last memory, OpenVINO's bf16 hint); printed per case and model: the largest probability difference, how
many voxels of the label map (made on the reference grid, as written) differ, and the Dice between the two label
maps' tumours. Exit status 1 when any label differs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import predict
from BraTSXAILib.io import discover_cases, load_case
from BraTSXAILib.metrics import dice
from BraTSXAILib.pipeline import load_models
from BraTSXAILib.postprocess import segment_probabilities
from BraTSXAILib.preprocess import preprocess

from .command import run_command


def agreement(case, loaded, prepared: dict, precision: str = "float32") -> dict:
    """One case and model through both backends; `prepared` keeps the case's preprocessing per spacing and
    normalisation, which the models may share."""
    key = (loaded.info.spacing, loaded.info.normalisation)
    if key not in prepared:
        prepared[key] = preprocess(case, *key)
    array, geometry = prepared[key]
    passes = {backend: predict(runner, array, "cpu", precision, sliding_window=False)
              for backend, runner in (("torch", loaded.network), ("openvino", loaded.openvino(precision)))}
    labels = {backend: segment_probabilities(p, geometry, loaded.info.rule)[1] for backend, p in passes.items()}
    return {"case": case.case_id, "model": loaded.info.architecture,
            "max_probability_difference": float(np.abs(passes["torch"] - passes["openvino"]).max()),
            "label_voxels_differing": int(np.count_nonzero(labels["torch"] != labels["openvino"])),
            "tumour_voxels": int(np.count_nonzero(labels["torch"])),
            "tumour_dice": dice(labels["torch"] > 0, labels["openvino"] > 0)}


def run(args: argparse.Namespace) -> list[dict]:
    models = load_models(args.models, "cpu")
    sources = [source for folder in args.data for source in discover_cases(folder)]
    if not sources:
        raise InputError("no case folder found", "give folders holding BraTS cases", args.data[0])
    rows = []
    for source in sources:
        case, prepared = load_case(source), {}
        for loaded in models:
            rows.append(agreement(case, loaded, prepared, args.precision))
            row = rows[-1]
            print(f"{row['case']:24s} {row['model']:8s} max |Δp| {row['max_probability_difference']:.1e}  "
                  f"labels differing {row['label_voxels_differing']} of {row['tumour_voxels']} tumour voxels, "
                  f"tumour Dice {row['tumour_dice']:.5f}",
                  flush=True)
    return rows


def finish(rows: list[dict]) -> int:
    differing = [row for row in rows if row["label_voxels_differing"]]
    worst = max(row["max_probability_difference"] for row in rows)
    print(f"{len(rows)} case × model pairs: largest probability difference {worst:.1e}; "
          f"{len(differing)} with any label differing (at most {max(r['label_voxels_differing'] for r in rows)} "
          f"voxels; lowest tumour Dice between the backends {min(r['tumour_dice'] for r in rows):.5f})")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.backend_agreement", description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="folders of BraTS case folders")
    parser.add_argument("--models", default="all", help="as `brats-xai segment --model` (default: all)")
    parser.add_argument("--precision", choices=("float32", "bf16"), default="float32")
    return run_command(parser.parse_args(argv), run, finish)


if __name__ == "__main__":
    sys.exit(main())
