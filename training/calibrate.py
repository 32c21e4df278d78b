"""`python -m training.calibrate --data DIR --models M [M ...] --split-file SPLIT --out rules.json`.

Chooses each network's label rule (`BraTSXAILib.postprocess.LabelRule`) and one for their ensemble on the
validation cases, by mean Dice of the labels exactly as `segment` makes them (probabilities mapped back to each
case's own grid first). The search is coordinate-wise, in the order the regions nest: the WT threshold, then TC's
given WT, then ET's given both; then the smallest kept WT component, then the smallest ET component kept as
enhancing. A step moves off its neutral value (0.5, or no post-processing) only if it raises the mean Dice it
is judged by by at least `MIN_GAIN`: with six validation cases a smaller gain is noise, not calibration.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import resolve_device
from BraTSXAILib.labels import REGIONS, labels_to_regions
from BraTSXAILib.metrics import dice
from BraTSXAILib.outputs import write_json
from BraTSXAILib.pipeline import ENSEMBLE
from BraTSXAILib.postprocess import LabelRule, apply_rule
from BraTSXAILib.uncertainty import Members

from .command import run_command
from .evaluate import case_probabilities, open_model, readable_cases, validation_parser

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.2, 0.96, 0.05))
MIN_WT_MM3 = (0, 100, 250, 500, 1000, 2000, 4000)
MIN_ET_MM3 = (0, 50, 100, 200, 400, 800, 1600)
MIN_GAIN = 0.005
LOWEST = min(THRESHOLDS)


@dataclass
class Sample:
    """One validation case cut to the box where any probability reaches the lowest threshold or truth lies, so
    that every component a rule could keep lies wholly inside."""

    probabilities: np.ndarray  # (3, z, y, x) float16
    truth: np.ndarray  # (3, z, y, x) bool
    spacing: tuple[float, ...]


def sample_of(on_reference: np.ndarray, truth_labels: np.ndarray, spacing) -> Sample:
    truth = labels_to_regions(truth_labels)
    inside = (on_reference >= LOWEST).any(axis=0) | truth[0]
    if not inside.any():
        inside[0, 0, 0] = True
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(inside))
    return Sample(on_reference[(slice(None), *box)].astype(np.float16), truth[(slice(None), *box)], spacing)


def mean_dice(samples: list[Sample], rule: LabelRule) -> np.ndarray:
    """Mean Dice per region (WT, TC, ET) over the samples under `rule`."""
    scores = []
    for sample in samples:
        thresholds = np.array([rule.thresholds[r] for r in REGIONS], dtype=np.float16)[:, None, None, None]
        regions = apply_rule(sample.probabilities >= thresholds, rule, sample.spacing)
        scores.append([dice(regions[i], sample.truth[i]) for i in range(len(REGIONS))])
    return np.mean(scores, axis=0)


def _better(samples, rule: LabelRule, candidates: list[LabelRule], judge) -> LabelRule:
    """The candidate with the best judged score if it beats `rule` by MIN_GAIN, else `rule`."""
    base = judge(mean_dice(samples, rule))
    scored = [(judge(mean_dice(samples, candidate)), candidate) for candidate in candidates]
    score, best = max(scored, key=lambda pair: pair[0])
    return best if score >= base + MIN_GAIN else rule


def calibrate(samples: list[Sample]) -> LabelRule:
    """The rule chosen for one model (or the ensemble) on its validation samples."""
    rule = LabelRule()
    for index, region in enumerate(REGIONS):
        candidates = [LabelRule({**rule.thresholds, region: t}) for t in THRESHOLDS]
        rule = _better(samples, rule, candidates, lambda scores, i=index: scores[i])
    rule = _better(samples, rule, [LabelRule(rule.thresholds, 0.0, size) for size in MIN_WT_MM3],
                   lambda scores: scores.mean())
    rule = _better(samples, rule, [LabelRule(rule.thresholds, size, rule.min_wt_mm3) for size in MIN_ET_MM3],
                   lambda scores: scores[2])
    return rule


def report(rule: LabelRule, samples: list[Sample]) -> dict:
    before, after = mean_dice(samples, LabelRule()), mean_dice(samples, rule)
    return {"labels": rule.to_dict(), "cases": len(samples),
            "dice_before": dict(zip(REGIONS, np.round(before, 4).tolist())),
            "dice_after": dict(zip(REGIONS, np.round(after, 4).tolist()))}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = validation_parser("python -m training.calibrate", __doc__.splitlines()[0], "rules JSON to write")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    candidates = [open_model(selector, device, args.backend) for selector in args.models]
    names = [c.name for c in candidates] + ([ENSEMBLE] if len(candidates) > 1 else [])
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    cases = []
    for case in readable_cases(args.data, args.split_file, "validation"):
        cases.append(case.case_id)
        prepared, members = {}, Members()
        truth, spacing = sitk.GetArrayFromImage(case.label), case.label.GetSpacing()[::-1]
        for candidate in candidates:
            on_reference = case_probabilities(case, candidate, device, args.precision, prepared)["on_reference"]
            samples[candidate.name].append(sample_of(on_reference, truth, spacing))
            members.add_network(on_reference)
        if len(candidates) > 1:
            samples[ENSEMBLE].append(sample_of(members.mean(), truth, spacing))
    if not cases:
        raise InputError("no readable validation case to calibrate on", "fix the cases reported above", args.data)
    rules = {name: report(calibrate(found), found) for name, found in samples.items()}
    write_json({"validation_cases": cases, "models": rules}, args.out)
    return rules


def main(argv: list[str] | None = None) -> int:
    def finish(rules: dict) -> int:
        for name, found in rules.items():
            print(f"{name}: {found['labels']}; Dice {found['dice_before']} -> {found['dice_after']}")
        return 0

    return run_command(parse_args(argv), run, finish)


if __name__ == "__main__":
    sys.exit(main())
