"""`python -m training.quality_stress --data DIR --split-file SPLIT --out DIR`: does the expected Dice fall when
the segmentation does? (`training.bundle` runs it in its trust step.)

Six validation cases score between 0.71 and 0.93 Dice, too close together to show whether the per-case quality
estimate (`manifest["quality"]`, docs/uncertainty.md) ranks cases; what a user needs from it is a warning when a
result is bad. So each validation case is also segmented after one of the failures that real inputs have — noise,
thick slices, an intensity bias field, a sequence given in place of another, two sequences swapped — exactly as
`brats-xai segment --explain uncertainty` runs (the registry's ensemble, its stored calibration: nothing is fitted
here), and the expected Dice is compared with the true Dice over all (case, condition) pairs: Spearman ρ, mean
absolute error, and how often the "check this region by hand" warning (expected Dice < 0.5) fires for a region
whose true Dice is below 0.5 and for one above it. Writes `DIR/quality_stress.json` and `DIR/quality_stress.md`
(the docs table).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.stats import spearmanr

from BraTSXAILib.errors import InputError
from BraTSXAILib.io import Case
from BraTSXAILib.labels import REGIONS
from BraTSXAILib.outputs import atomic_write, write_json
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
from BraTSXAILib.uncertainty import LOW_QUALITY

from .command import run_command
from .evaluate import DEVICES, PRECISIONS, readable_cases

SEED = 0


def _with_images(case: Case, images: dict[str, sitk.Image]) -> Case:
    """A copy of the case holding `images`; the given case is left as it was."""
    return dataclasses.replace(case, images=images, warnings=list(case.warnings))


def _each_image(case: Case, change: Callable[[str, np.ndarray], np.ndarray]) -> Case:
    """The case with every sequence's voxels (z, y, x) replaced by `change(sequence, voxels)`, grid kept."""
    images = {}
    for sequence, image in case.images.items():
        changed = sitk.GetImageFromArray(change(sequence, sitk.GetArrayFromImage(image)).astype(np.float32))
        changed.CopyInformation(image)
        images[sequence] = changed
    return _with_images(case, images)


def noise(case: Case) -> Case:
    """Gaussian noise inside the brain, σ = each sequence's intensity spread there (a fast, low-field or
    motion-degraded scan; at the models' 2 mm voxels averaging leaves about a third of it)."""
    rng = np.random.default_rng(SEED)

    def add(sequence: str, voxels: np.ndarray) -> np.ndarray:
        brain = voxels != 0
        return np.where(brain, voxels + rng.normal(0, voxels[brain].std(), voxels.shape), 0)

    return _each_image(case, add)


def thick_slices(case: Case) -> Case:
    """Every sequence as if acquired in slices 5 voxels thick along the array's first (axial) axis — 5 mm on
    BraTS' 1 mm grid — averaged, then interpolated back: a clinical 2D protocol instead of a 1 mm 3D one."""
    def thicken(sequence: str, voxels: np.ndarray) -> np.ndarray:
        if voxels.shape[0] < 10:
            raise InputError(f"{voxels.shape[0]} slices cannot be made into two 5-slice slabs", "give a 3D scan")
        slabs = voxels.shape[0] // 5 * 5
        thick = voxels[:slabs].reshape(-1, 5, *voxels.shape[1:]).mean(axis=1)
        centres, positions = np.arange(len(thick)) * 5 + 2.0, np.arange(voxels.shape[0])
        low = np.clip(np.searchsorted(centres, positions) - 1, 0, len(thick) - 2)
        weight = np.clip((positions - centres[low]) / 5.0, 0, 1)[:, None, None]
        return (1 - weight) * thick[low] + weight * thick[low + 1]

    return _each_image(case, thicken)


def bias_field(case: Case) -> Case:
    """A smooth multiplicative field from 0.6 to 1.4 across the head (an uncorrected receive-coil bias)."""
    def bias(sequence: str, voxels: np.ndarray) -> np.ndarray:
        ramp = np.linspace(0.6, 1.4, voxels.shape[2])[None, None, :]
        return voxels * ramp

    return _each_image(case, bias)


def _swapped(case: Case, missing: str, given: str) -> Case:
    return _with_images(case, {**case.images, missing: sitk.Image(case.images[given])})


def _exchanged(case: Case, first: str, second: str) -> Case:
    return _with_images(case, {**case.images, first: case.images[second], second: case.images[first]})


CONDITIONS: dict[str, tuple[str, Callable[[Case], Case]]] = {
    "clean": ("the case as it is", lambda case: case),
    "noise": ("Gaussian noise, σ = each sequence's spread in the brain", noise),
    "thick slices": ("5 mm axial slices", thick_slices),
    "bias field": ("intensity bias 0.6–1.4 across the head", bias_field),
    "T1 as T1ce": ("the T1 given as the T1ce (no contrast)", lambda case: _swapped(case, "t1ce", "t1")),
    "T2 as FLAIR": ("the T2 given as the FLAIR", lambda case: _swapped(case, "flair", "t2")),
    "T2 and FLAIR swapped": ("each given as the other", lambda case: _exchanged(case, "t2", "flair")),
    "T1 and T1ce swapped": ("each given as the other", lambda case: _exchanged(case, "t1", "t1ce")),
}


def measure(case: Case, models, options: SegmentOptions, scratch: Path) -> dict:
    """One segmentation as `segment` makes it: the primary result's true and expected Dice per region, and the
    number of input warnings (plausibility checks) the manifest gave."""
    with tempfile.TemporaryDirectory(dir=scratch) as out:
        manifest = segment_case(case, out, models, options)
    primary = manifest["primary"]
    return {"true": [manifest["metrics"][primary][f"dice_{region}"] for region in REGIONS],
            "expected": [manifest["quality"][region]["expected_dice"] for region in REGIONS],
            "input_warnings": sum("check this region by hand" not in warning for warning in manifest["warnings"])}


def summarise(rows: list[dict]) -> dict:
    """Per condition the means; over all pairs ρ, mean absolute error and the warning's hits and false alarms."""
    summary = {"pairs": len(rows), "conditions": {}, "pooled": {}}
    for name in CONDITIONS:
        picked = [row for row in rows if row["condition"] == name]
        if picked:
            summary["conditions"][name] = {
                "cases": len(picked),
                "true": np.mean([row["true"] for row in picked], axis=0).round(3).tolist(),
                "expected": np.mean([row["expected"] for row in picked], axis=0).round(3).tolist(),
                "warned": np.sum([[e < LOW_QUALITY for e in row["expected"]] for row in picked], axis=0).tolist(),
                "input_warnings": int(sum(row["input_warnings"] > 0 for row in picked))}
    true, expected = np.array([row["true"] for row in rows]), np.array([row["expected"] for row in rows])
    for index, region in enumerate(REGIONS):
        bad, warned = true[:, index] < LOW_QUALITY, expected[:, index] < LOW_QUALITY
        summary["pooled"][region] = {
            "spearman": round(float(spearmanr(expected[:, index], true[:, index]).statistic), 3),
            "mae": round(float(np.abs(expected[:, index] - true[:, index]).mean()), 3),
            "bad": int(bad.sum()), "bad_warned": int((bad & warned).sum()),
            "good_warned": int((~bad & warned).sum()), "good": int((~bad).sum())}
    return summary


def table(summary: dict, cases: list[str]) -> str:
    """The markdown of docs/uncertainty.md's stress section."""
    lines = [f"Validation cases ({len(cases)}): {', '.join(cases)}; {summary['pairs']} (case, condition) pairs.", "",
             "| condition | true Dice WT/TC/ET | expected Dice WT/TC/ET | warned WT/TC/ET | cases with input "
             "warnings |", "| --- | --- | --- | --- | --- |"]
    for name, row in summary["conditions"].items():
        lines.append(f"| {name}: {CONDITIONS[name][0]} | {'/'.join(f'{v:.2f}' for v in row['true'])} | "
                     f"{'/'.join(f'{v:.2f}' for v in row['expected'])} | {'/'.join(map(str, row['warned']))} "
                     f"of {row['cases']} | {row['input_warnings']} |")
    lines += ["", "| region | Spearman ρ | mean absolute error | true Dice < 0.5: warned | true Dice ≥ 0.5: warned |",
              "| --- | --- | --- | --- | --- |"]
    for region, row in summary["pooled"].items():
        lines.append(f"| {region} | {row['spearman']:.2f} | {row['mae']:.3f} | {row['bad_warned']} of {row['bad']} "
                     f"| {row['good_warned']} of {row['good']} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.quality_stress", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of BraTS case folders with labels")
    parser.add_argument("--split-file", type=Path, required=True, help="split JSON; its validation cases are used")
    parser.add_argument("--out", type=Path, required=True, help="folder for quality_stress.json and .md")
    parser.add_argument("--models", nargs="+", default=["all"],
                        help="each as `brats-xai segment --model` takes it (default: all)")
    parser.add_argument("--registry", type=Path, help="model registry (default: the bundled one)")
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    models = [model for selector in args.models for model in load_models(selector, args.device, args.registry)]
    options = SegmentOptions(device=args.device, precision=args.precision, explain=("uncertainty",))
    rows, cases = [], []
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for case in readable_cases(args.data, args.split_file, "validation"):
            cases.append(case.case_id)
            for name in args.conditions:
                rows.append({"case": case.case_id, "condition": name,
                             **measure(CONDITIONS[name][1](case), models, options, Path(scratch))})
    if not rows:
        raise InputError("no readable validation case", "fix the cases reported above", args.data)
    summary = summarise(rows)
    write_json({**summary, "cases": cases, "rows": rows}, args.out / "quality_stress.json")
    with atomic_write(args.out / "quality_stress.md") as temporary:
        temporary.write_text(table(summary, cases))
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(args, run, lambda summary: print((args.out / "quality_stress.md").read_text()) or 0)


if __name__ == "__main__":
    sys.exit(main())
