"""`python -m training.report --runs RUN [RUN ...] --evaluation EVAL --out REPORT`: the study's tables from our runs.

One call covers every split that was evaluated. `REPORT/report.md` holds the study's Tables 2–11 as the study
defines them — time per epoch for training and validation and their totals (2), inference time (3), BCE-Dice
loss (4), Dice and Jaccard over the three regions pooled per case (5, 6), per-region Dice and Jaccard for
validation and test (7–10), voxel accuracy, precision, recall and F1 pooled over every voxel of every region and
case (11) — and, marked "addition" (headings) or † (columns), what the study did not report: the training
log's values, HD95, the training split per region, paired Wilcoxon tests. Figures: `learning_curves.png`
(Figs. 4–6), `violin_dice.png` and `violin_jaccard.png` (Fig. 7, a panel per split). Spread: ± SD over cases
(over epochs for times).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path


from BraTSXAILib.errors import InputError
from BraTSXAILib.labels import REGIONS
from BraTSXAILib.models import DISPLAY_NAMES, build_model, count_parameters
from BraTSXAILib.outputs import atomic_write

from .command import run_command
from .figures import learning_curves, violins
from .log import read_log, selected_row, stopped_reason
from .split import SPLITS
from .stats import format_mean_sd, paired_wilcoxon, pooled_scores

COUNTS = ("tp", "fp", "fn", "tn")
ADDITION = "(addition: not in the study)"


@dataclass
class Run:
    name: str
    config: dict
    log: list[dict]
    stopped: str
    evaluation: dict[str, list[dict]]  # split -> per-case rows

    @property
    def best(self) -> dict:
        return selected_row(self.log, self.config.get("selection", "loss"))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return [{key: value if key in ("model", "case") else float(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def read_run(folder: Path, evaluation: Path | None) -> Run:
    config_path = folder / "config.json"
    if not config_path.exists():
        raise InputError("the folder is not a training run (no config.json)", "give run folders to --runs", folder)
    config = json.loads(config_path.read_text())
    log = read_log(folder / "log.csv")
    if not log:
        raise InputError("the run has no completed epoch (log.csv is empty or missing)", "train it first", folder)
    rows = {}
    for split in SPLITS:
        path = evaluation / f"{folder.name}_{split}.csv" if evaluation else None
        if path is not None and path.exists():
            rows[split] = read_rows(path)
    return Run(folder.name, config, log, stopped_reason(folder), rows)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def column(rows: list[dict], key: str) -> list[float]:
    return [row[key] for row in rows]


def has_counts(rows: list[dict]) -> bool:
    return bool(rows) and all(f"{name}_{region}" in rows[0] for name in COUNTS for region in REGIONS)


def pooled_overlap(row: dict, metric: str) -> float:
    """One case's Dice or Jaccard over WT, TC and ET together, as the study's notebook scores a case (the three
    channels' voxels pooled); 1 when prediction and truth are empty in every region."""
    tp, fp, fn = (sum(row[f"{name}_{region}"] for region in REGIONS) for name in ("tp", "fp", "fn"))
    numerator, denominator = (2 * tp, 2 * tp + fp + fn) if metric == "dice" else (tp, tp + fp + fn)
    return numerator / denominator if denominator else 1.0


def case_overlap(rows: list[dict], metric: str) -> list[float]:
    """Per case: pooled over the regions when the evaluation has voxel counts, else the mean over regions."""
    if has_counts(rows):
        return [pooled_overlap(row, metric) for row in rows]
    return [sum(row[f"{metric}_{region}"] for region in REGIONS) / len(REGIONS) for row in rows]


def _number(value: float, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def training_section(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        config = run.config
        parameters = count_parameters(build_model(config["architecture"], config["width"]))
        train, validation = column(run.log, "train_seconds"), column(run.log, "validation_seconds")
        rows.append([run.name, DISPLAY_NAMES[config["architecture"]], config["width"], f"{parameters:,}",
                     config["spacing"] or "native", "×".join(map(str, config["patch_size"])), len(run.log),
                     run.best["epoch"], run.stopped, format_mean_sd(train, 1), format_mean_sd(validation, 1),
                     f"{sum(train):.1f}", f"{sum(validation):.1f}", f"{sum(column(run.log, 'epoch_seconds')):.1f}"])
    header = ["network", "architecture", "width †", "parameters †", "spacing (mm) †", "patch †", "epochs run",
              "epochs to convergence", "stopped by †", "training s/epoch", "validation s/epoch",
              "training total (s)", "validation total (s)", "total (s)"]
    return ("## Training (Table 2)\n\nEpochs to convergence: the epoch whose weights the run kept, by its config's "
            "`selection` (lowest validation loss, the study's rule, or highest mean validation Dice). Seconds per "
            "epoch: mean ± SD over epochs; totals: sums over all epochs run.\n\n" + table(header, rows))


def inference_section(runs: list[Run]) -> str:
    rows = [[run.name, split, format_mean_sd(column(run.evaluation[split], "seconds"), 2),
             len(run.evaluation[split])] for run in runs for split in SPLITS if split in run.evaluation]
    return "## Inference time (Table 3)\n\nSeconds of forward passes per case, mean ± SD.\n\n" + table(
        ["network", "split", "seconds per case", "cases"], rows)


def _per_split(run: Run, values) -> list[str]:
    return [values(run.evaluation[split]) if split in run.evaluation else "–" for split in SPLITS]


def loss_section(runs: list[Run]) -> str:
    rows = [[run.name] + _per_split(run, lambda rows: format_mean_sd(column(rows, "loss"), 4))
            + [_number(run.best["train_loss"]), _number(run.best["validation_loss"])] for run in runs]
    header = ["network"] + list(SPLITS) + ["train (log) †", "validation (log) †"]
    return ("## BCE-Dice loss (Table 4)\n\nWhole cases, per case then mean ± SD. † The training log at the epoch to "
            "convergence (training patches, validation volumes, at the training spacing).\n\n" + table(header, rows))


def overlap_section(runs: list[Run]) -> str:
    rows = [[run.name] + [cell for split in SPLITS for cell in
                          ([format_mean_sd(case_overlap(run.evaluation[split], m)) for m in ("dice", "jaccard")]
                           if split in run.evaluation else ["–", "–"])] for run in runs]
    header = ["network"] + [f"{m} {split}" for split in SPLITS for m in ("Dice", "Jaccard")]
    counted = all(has_counts(cases) for run in runs for cases in run.evaluation.values())
    how = ("WT, TC and ET voxels pooled per case, as the study scores a case" if counted else
           "mean over WT, TC and ET per case (this evaluation has no voxel counts to pool; re-run training.evaluate)")
    return (f"## Dice and Jaccard at train / validation / test (Tables 5 and 6)\n\n{how}; then mean ± SD over "
            "cases.\n\n" + table(header, rows))


def region_tables(runs: list[Run], split: str, numbers: tuple[int, int] | None) -> str:
    evaluated = [run for run in runs if split in run.evaluation]
    parts = []
    for metric, number in zip(("dice", "jaccard"), numbers or (None, None)):
        rows = [[run.name] + [format_mean_sd(column(run.evaluation[split], f"{metric}_{r}")) for r in REGIONS]
                for run in evaluated]
        label = f"Table {number}: " if number else ""
        parts.append(f"{label}{metric.capitalize()} per region ({split}), mean ± SD over cases.\n\n"
                     + table(["network", *REGIONS], rows))
    hd95 = [[run.name] + [format_mean_sd(column(run.evaluation[split], f"hd95_{r}"), 1) for r in REGIONS]
            for run in evaluated]
    parts.append(f"HD95 (mm) per region ({split}) {ADDITION}.\n\n" + table(["network", *REGIONS], hd95))
    tables = f"Tables {numbers[0]} and {numbers[1]}" if numbers else ADDITION
    return f"## Per region ({split}): {tables}\n\n" + "\n\n".join(parts)


def voxel_section(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        for split in SPLITS:
            cases = run.evaluation.get(split)
            if not cases:
                continue
            if has_counts(cases):
                totals = [sum(row[f"{name}_{r}"] for row in cases for r in REGIONS) for name in COUNTS]
                scores = pooled_scores(*totals)
                rows.append([run.name, split] + [_number(scores[k]) for k in ("accuracy", "precision", "recall", "f1")])
            else:
                rows.append([run.name, split, "–", "–", "–", "–"])
    return ("## Voxel classification (Table 11)\n\nOne confusion matrix per network and split: every voxel of the WT, "
            "TC and ET masks of every case counted together, as the study pools them (so no spread). '–': the "
            "evaluation has no voxel counts; re-run training.evaluate.\n\n"
            + table(["network", "split", "accuracy", "precision", "recall", "F1"], rows))


def wilcoxon_section(runs: list[Run], split: str) -> str:
    """Paired by case: only cases both networks were evaluated on count."""
    rows = []
    evaluated = [run for run in runs if split in run.evaluation]
    for region in REGIONS:
        for metric in ("dice", "jaccard"):
            for first, second in itertools.combinations(evaluated, 2):
                a = {row["case"]: row[f"{metric}_{region}"] for row in first.evaluation[split]}
                b = {row["case"]: row[f"{metric}_{region}"] for row in second.evaluation[split]}
                cases = sorted(set(a) & set(b))
                median, p = paired_wilcoxon([a[c] for c in cases], [b[c] for c in cases])
                rows.append([region, metric, first.name, second.name, _number(median), _number(p), len(cases)])
    return (f"## Paired comparison between networks ({split}) {ADDITION}\n\nWilcoxon signed-rank test (two-sided) on "
            "per-case scores; 'median difference' is first − second. With few cases the test has little power: "
            "read p beside n.\n\n" + table(["region", "metric", "first", "second", "median difference", "p", "cases"],
                                           rows))


def build_report(runs: list[Run], out: Path) -> Path:
    evaluated = [split for split in SPLITS if any(split in run.evaluation for run in runs)]
    sections = ["# BraTSXAI training report",
                "Runs: " + ", ".join(run.name for run in runs) + f". Evaluated splits: {', '.join(evaluated) or 'none'}."
                " Tables and figures are numbered as in the study; what it did not report is marked "
                f"'{ADDITION}' or †.", training_section(runs)]
    figures = [learning_curves({run.name: run.log for run in runs}, out / "learning_curves.png")]
    if evaluated:
        sections += [inference_section(runs), loss_section(runs), overlap_section(runs)]
        numbers = {"validation": (7, 8), "test": (9, 10)}
        sections += [region_tables(runs, split, numbers.get(split)) for split in evaluated]
        sections.append(voxel_section(runs))
        sections += [wilcoxon_section(runs, split) for split in evaluated]
        for metric in ("dice", "jaccard"):
            scores = {split: {run.name: {r: column(run.evaluation[split], f"{metric}_{r}") for r in REGIONS}
                              for run in runs if split in run.evaluation} for split in evaluated}
            figures.append(violins(scores, metric.capitalize(), out / f"violin_{metric}.png"))
    else:
        sections.append(loss_section(runs))
    sections.append("## Figures\n\nFigs. 4–6: `learning_curves.png`; Fig. 7: `violin_dice.png`, `violin_jaccard.png` "
                    "(one panel per split).\n\n" + "\n\n".join(f"![{path.stem}]({path.name})" for path in figures))
    path = out / "report.md"
    with atomic_write(path) as temporary:
        temporary.write_text("\n\n".join(sections) + "\n")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders of training.train")
    parser.add_argument("--evaluation", type=Path, help="output folder of training.evaluate (every split in it)")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md and the figures")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    def report(args: argparse.Namespace) -> Path:
        return build_report([read_run(folder, args.evaluation) for folder in args.runs], args.out)

    def finish(path: Path) -> int:
        print(f"report written to {path}")
        return 0

    return run_command(parse_args(argv), report, finish)


if __name__ == "__main__":
    sys.exit(main())
