"""`python -m training.uncertainty --data DIR --models ID [ID ...] --split-file SPLIT --out DIR`: how far to trust.

On the validation cases, for the registry models and their ensemble (labels exactly as `segment` writes them),
and for 0, 1, 3 and 7 test-time flips per network: voxel AUROC of the uncertainty for finding wrong voxels of
each region inside the brain, the uncertainty-filtered Dice of the BraTS uncertainty challenge (QU-BraTS: voxels
above an uncertainty threshold are left out of both masks) with the share of true positives filtered away, the
calibration error (ECE, 10 bins, inside the brain) of the ensemble probabilities, and the expected Dice against
the true Dice (Spearman ρ, leave-one-out mean absolute error of its calibration). Also which sequence the
modality attribution ranks first for ET and WT, per network. Writes `DIR/uncertainty.json` (with the quality
calibration that `training.bundle` stores in the registry) and `DIR/uncertainty.md` (the docs table).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import SimpleITK as sitk
from scipy.stats import spearmanr

from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import predict, resolve_device
from BraTSXAILib.labels import REGIONS, labels_to_regions
from BraTSXAILib.metrics import dice
from BraTSXAILib.outputs import atomic_write, write_json
from BraTSXAILib.postprocess import LabelRule, labels_from_probabilities, reference_probabilities
from BraTSXAILib.preprocess import preprocess
from BraTSXAILib.uncertainty import Members, entropy_bits, flipped, soft_dice
from BraTSXAILib.weights import ensemble_rule
from BraTSXAILib.xai.modality import modality_importance

from .command import run_command
from .evaluate import open_model, readable_cases, validation_parser
from .uncertainty_stats import (auroc_of_histograms, calibration_fit, ece, error_histograms, filtered_dice,
                                uncertainty_table)

FLIP_COUNTS = (0, 1, 3, 7)
FILTER_THRESHOLDS = (0.25, 0.5, 0.75, 1.0)


def case_measures(case, candidates, device, precision, rule: LabelRule) -> dict:
    """Everything measured on one case: per flip count the ensemble's error detection and soft Dice; per network
    the modality ranking; the pass seconds."""
    truth_labels = sitk.GetArrayFromImage(case.label)
    truth, spacing = labels_to_regions(truth_labels), case.label.GetSpacing()[::-1]
    members, seconds, modality = {count: Members() for count in FLIP_COUNTS}, {count: 0.0 for count in FLIP_COUNTS}, {}
    for candidate in candidates:
        info = candidate.info
        array, geometry = preprocess(case, info.spacing, info.normalisation)
        runner = candidate.runner(precision, device)
        forward = lambda a, r=runner, c=candidate: predict(r, a, device, precision, roi_size=c.info.patch_size)  # noqa: E731
        started = time.perf_counter()
        probabilities = forward(array)
        passes = [reference_probabilities(probabilities, geometry)]
        pass_seconds = [time.perf_counter() - started]
        for index in range(max(FLIP_COUNTS)):  # each count uses the first `count` flips
            started = time.perf_counter()
            passes.append(reference_probabilities(flipped(forward(flipped(array, index)), index), geometry))
            pass_seconds.append(time.perf_counter() - started)
        for count in FLIP_COUNTS:
            members[count].add_network(passes[0])
            for extra in passes[1:count + 1]:
                members[count].add_flip(extra)
            seconds[count] += sum(pass_seconds[:count + 1])
        modality[candidate.name] = modality_importance(forward, array, probabilities, info.rule,
                                                       geometry.network.spacing[::-1])
    brain = np.any(np.stack([sitk.GetArrayViewFromImage(image) != 0 for image in case.images.values()]), axis=0)
    mean = members[0].mean()
    regions = labels_to_regions(labels_from_probabilities(mean, rule, spacing))
    result = {"case": case.case_id, "modality": modality, "seconds": seconds,
              "dice": [dice(regions[i], truth[i]) for i in range(3)],
              "ece": [ece(mean[i][brain], truth[i][brain]) for i in range(3)], "flips": {}}
    for count in FLIP_COUNTS:
        belief = members[count].belief()
        uncertainty = entropy_bits(belief)
        result["flips"][count] = {
            "soft_dice": [soft_dice(belief[i], regions[i]) for i in range(3)],
            "histograms": [error_histograms(uncertainty[i][brain], (regions[i] != truth[i])[brain]) for i in range(3)],
            "filtered": [[filtered_dice(regions[i], truth[i], uncertainty[i], t) for t in FILTER_THRESHOLDS]
                         for i in range(3)]}
    return result


def summarise(results: list[dict], models: list[str]) -> dict:
    """Pool the cases: AUROC from pooled counts, means of the rest, quality calibration per flip count."""
    summary = {"cases": [r["case"] for r in results], "flips": {}, "modality": {}}
    true_dice = np.array([r["dice"] for r in results])
    summary["dice"] = dict(zip(REGIONS, true_dice.mean(axis=0).round(4).tolist()))
    summary["ece"] = dict(zip(REGIONS, np.mean([r["ece"] for r in results], axis=0).round(4).tolist()))
    for count in FLIP_COUNTS:
        rows = [r["flips"][count] for r in results]
        soft = np.array([row["soft_dice"] for row in rows])
        pooled = [np.sum([row["histograms"][i] for row in rows], axis=0) for i in range(3)]
        fits = {region: calibration_fit(soft[:, i], true_dice[:, i]) for i, region in enumerate(REGIONS)}
        summary["flips"][count] = {
            "seconds": float(np.mean([r["seconds"][count] for r in results])),
            "auroc": {region: auroc_of_histograms(pooled[i]) for i, region in enumerate(REGIONS)},
            "filtered_dice": {region: np.mean([row["filtered"][i] for row in rows], axis=0).round(4).tolist()
                              for i, region in enumerate(REGIONS)},
            "quality": fits,
            "spearman": {region: float(spearmanr(soft[:, i], true_dice[:, i]).statistic)
                         for i, region in enumerate(REGIONS)}}
    for model in models:
        firsts = [{region: max(r["modality"][model][region], key=r["modality"][model][region].get)
                   for region in REGIONS} for r in results]
        summary["modality"][model] = {
            "ET_t1ce": sum(f["ET"] == "t1ce" for f in firsts), "WT_flair_or_t2": sum(f["WT"] in ("flair", "t2")
                                                                                      for f in firsts),
            "firsts": firsts}
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = validation_parser("python -m training.uncertainty", __doc__.splitlines()[0],
                               "folder for uncertainty.json and uncertainty.md")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    candidates = [open_model(selector, device, args.backend) for selector in args.models]
    rule = ensemble_rule([c.info.id for c in candidates]) or LabelRule()
    results = [case_measures(case, candidates, device, args.precision, rule)
               for case in readable_cases(args.data, args.split_file, "validation")]
    if not results:
        raise InputError("no readable validation case", "fix the cases reported above", args.data)
    summary = summarise(results, [c.name for c in candidates])
    per_case = [{key: value for key, value in r.items() if key != "flips"} for r in results]
    write_json({**summary, "per_case": per_case}, args.out / "uncertainty.json")
    with atomic_write(args.out / "uncertainty.md") as temporary:
        temporary.write_text(uncertainty_table(summary, FILTER_THRESHOLDS))
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def finish(summary: dict) -> int:
        print((args.out / "uncertainty.md").read_text())
        return 0 if summary else 1

    return run_command(args, run, finish)


if __name__ == "__main__":
    sys.exit(main())
