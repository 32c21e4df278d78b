"""`brats-xai faithfulness`: measure how faithful a model's explanation maps are on one case; write a CSV.

One row per model and class: energy pointing game against the prediction (and the ground truth when the case
has a `_seg` file), triviality (correlation with the logit map), deletion and insertion areas beside those of a
random ranking, and rank correlations after cascading parameter randomisation. docs/explanations.md explains
how to read them.
"""
from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from ..choices import (
    BASELINES,
    CAM_METHODS,
    DEFAULT_LAYER,
    LAYER_PRESETS,
    MIN_STEPS,
    MODALITIES,
)
from ..errors import InputError
from .options import MODEL_HELP, explanation_list
from .reporting import Reporter

DESCRIPTION = """Measure the faithfulness of explanation maps on one case (a case folder or its four files):
pointing game, triviality, deletion/insertion against a random ranking, parameter-randomisation sanity check.
Writes one CSV row per model and class. Each curve step is a forward pass: expect minutes per model on a CPU."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("faithfulness", help="measure how faithful the explanation maps are",
                                   description=DESCRIPTION)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="one case folder, or its four image files")
    parser.add_argument("--out", required=True, type=Path, help="CSV file to write")
    parser.add_argument("--model", default="all", help=f"{MODEL_HELP} (default: all)")
    parser.add_argument("--method", choices=sorted(CAM_METHODS), default="gradcam")
    parser.add_argument("--layer", default=DEFAULT_LAYER,
                        help=f"preset ({', '.join(LAYER_PRESETS)}) or module name (default {DEFAULT_LAYER})")
    parser.add_argument("--classes", type=explanation_list, default=("WT", "TC", "ET"),
                        help="comma-separated classes among WT, TC, ET, ED, NCR (default WT,TC,ET)")
    parser.add_argument("--steps", type=int, default=10, help=f"deletion/insertion steps (at least {MIN_STEPS})")
    parser.add_argument("--baseline", choices=BASELINES, default="blur", help="what deleted voxels become")
    parser.add_argument("--no-randomisation", action="store_true", help="skip the parameter-randomisation check")
    parser.add_argument("--reference", choices=MODALITIES, default="t1ce")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random ranking and the randomisation")
    parser.add_argument("--json-progress", action="store_true", help="progress and result as JSON lines")
    parser.set_defaults(run=run)


def _check(args: argparse.Namespace) -> None:
    from ..pipeline import check_output_folder
    from ..xai.targets import check_classes

    check_classes(args.classes)
    if args.steps < MIN_STEPS:
        raise InputError(f"{args.steps} steps are too few for a deletion/insertion curve", f"use at least {MIN_STEPS}")
    if args.out.suffix.lower() != ".csv":
        raise InputError("the output must be a .csv file", "e.g. --out faithfulness.csv", args.out)
    check_output_folder(args.out.parent)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..inference import resolve_device
    from ..io import discover_cases, load_case
    from ..outputs import atomic_write
    from ..pipeline import load_models
    from ..preprocess import preprocess, preprocess_label
    from ..xai.evaluate import COLUMNS, evaluate_explanations

    _check(args)
    sources = discover_cases(args.inputs)
    if len(sources) != 1:
        raise InputError(f"{len(sources)} cases found; faithfulness takes one", "give one case folder")
    models = load_models(args.model, args.device)
    device = resolve_device(args.device)
    rows = []
    with Reporter(args.json_progress) as reporter:
        reporter.progress(0.0, "Loading case")
        case = load_case(sources[0], args.reference)
        for index, loaded in enumerate(models):
            architecture = loaded.info.architecture
            array, geometry = preprocess(case, loaded.info.spacing, loaded.info.normalisation)
            truth = preprocess_label(case, geometry) if case.label is not None else None
            x = torch.from_numpy(array)[None].to(device)
            share = 1.0 / len(models)

            def report(stage: str, start: float = index * share, architecture: str = architecture) -> None:
                reporter.progress(start, f"{stage} ({architecture})")

            results = evaluate_explanations(loaded.network, x, args.classes, args.method, args.layer, truth,
                                            args.steps, args.baseline, randomisation=not args.no_randomisation,
                                            seed=args.seed, progress=report)
            rows += [{"case": case.case_id, "model": architecture, **row} for row in results]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=("case", "model", *COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        with atomic_write(args.out) as temporary:
            temporary.write_text(text.getvalue())
        reporter.event({"done": True, "csv": str(args.out)})
        reporter.say(f"faithfulness of {args.method} at {args.layer}: {len(rows)} rows written to {args.out}")
    return 0
