"""`python -m training.report --runs RUN [RUN ...] --evaluation EVAL --out REPORT`: the study's tables from our runs.

Writes `REPORT/report.md` with the tables the study reported (epochs to convergence and time per epoch,
inference time, BCE-Dice loss, Dice and Jaccard at train/validation/test, per region, voxel accuracy, precision,
recall and F1), plus what it skipped: paired Wilcoxon signed-rank tests between networks per region. Figures:
`learning_curves.png`, `violin_dice.png`, `violin_jaccard.png`. Values are mean ± standard error over cases.
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

import torch

from BraTSXAILib.errors import InputError
from BraTSXAILib.labels import REGIONS
from BraTSXAILib.models import DISPLAY_NAMES, build_model, count_parameters
from BraTSXAILib.outputs import atomic_write

from .figures import learning_curves, violins
from .log import read_log, selected_row
from .split import SPLITS
from .stats import format_mean_se, paired_wilcoxon


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
    checkpoint = folder / "checkpoint.pt"
    stopped = torch.load(checkpoint, map_location="cpu", weights_only=True)["counters"]["stopped"] \
        if checkpoint.exists() else ""
    rows = {}
    for split in SPLITS:
        path = evaluation / f"{folder.name}_{split}.csv" if evaluation else None
        if path is not None and path.exists():
            rows[split] = read_rows(path)
    return Run(folder.name, config, log, stopped or "running", rows)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def column(rows: list[dict], key: str) -> list[float]:
    return [row[key] for row in rows]


def region_mean(rows: list[dict], metric: str) -> list[float]:
    """Per case, the mean of a metric over WT, TC and ET (the study's single Dice/Jaccard number)."""
    return [sum(row[f"{metric}_{region}"] for region in REGIONS) / len(REGIONS) for row in rows]


def _number(value: float, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def training_section(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        config = run.config
        parameters = count_parameters(build_model(config["architecture"], config["width"]))
        seconds = column(run.log, "epoch_seconds")
        rows.append([run.name, DISPLAY_NAMES[config["architecture"]], config["width"], f"{parameters:,}",
                     config["spacing"] or "native", "×".join(map(str, config["patch_size"])), len(run.log),
                     run.best["epoch"], run.stopped, format_mean_se(seconds, 1)])
    header = ["network", "architecture", "width", "parameters", "spacing (mm)", "patch", "epochs run",
              "epochs to convergence", "stopped by", "seconds per epoch"]
    return ("## Training\n\nEpochs to convergence: the epoch whose weights the run kept, by its config's `selection` "
            "(lowest validation loss, the study's rule, or highest mean validation Dice).\n\n" + table(header, rows))


def loss_section(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        best = run.best
        rows.append([run.name, _number(best["train_loss"]), _number(best["validation_loss"])]
                    + [format_mean_se(column(run.evaluation[s], "loss"), 4) if s in run.evaluation else "–"
                       for s in SPLITS])
    header = ["network", "train (log)", "validation (log)"] + [f"{s} (evaluation)" for s in SPLITS]
    return ("## BCE-Dice loss\n\n'log': training log at the epoch to convergence (training patches, validation "
            "volumes, both at the training spacing). 'evaluation': whole cases, per case then averaged.\n\n"
            + table(header, rows))


def overlap_section(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        best = run.best
        log_scores = [_number(sum(best[f"{s}_{m}_{r}"] for r in REGIONS) / len(REGIONS))
                      for s in ("train", "validation") for m in ("dice", "jaccard")]
        evaluated = [format_mean_se(region_mean(run.evaluation[s], m)) if s in run.evaluation else "–"
                     for s in SPLITS for m in ("dice", "jaccard")]
        rows.append([run.name] + log_scores + evaluated)
    header = (["network"] + [f"{m} {s} (log)" for s in ("train", "validation") for m in ("Dice", "Jaccard")]
              + [f"{m} {s}" for s in SPLITS for m in ("Dice", "Jaccard")])
    return ("## Dice and Jaccard at train / validation / test\n\nMean over WT, TC and ET. Columns without '(log)' "
            "come from the evaluation on the original image grid.\n\n" + table(header, rows))


def inference_section(runs: list[Run]) -> str:
    rows = [[run.name, split, format_mean_se(column(cases, "seconds"), 2), len(cases)]
            for run in runs for split, cases in run.evaluation.items()]
    return "## Inference time\n\nSeconds of forward passes per case.\n\n" + table(
        ["network", "split", "seconds per case", "cases"], rows)


def region_section(runs: list[Run], split: str) -> str:
    rows = [[run.name, region] + [format_mean_se(column(run.evaluation[split], f"{m}_{region}"), digits)
                                  for m, digits in (("dice", 3), ("jaccard", 3), ("hd95", 1))]
            for run in runs if split in run.evaluation for region in REGIONS]
    return f"## Per region ({split})\n\n" + table(["network", "region", "Dice", "Jaccard", "HD95 (mm)"], rows)


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
    return (f"## Paired comparison between networks ({split})\n\nWilcoxon signed-rank test (two-sided) on per-case "
            "scores; 'median difference' is first − second. With few cases the test has little power: read p "
            "beside n.\n\n" + table(["region", "metric", "first", "second", "median difference", "p", "cases"], rows))


def voxel_section(runs: list[Run], split: str) -> str:
    rows = [[run.name, region] + [format_mean_se(column(run.evaluation[split], f"{m}_{region}"), 4)
                                  for m in ("accuracy", "precision", "recall", "f1")]
            for run in runs if split in run.evaluation for region in REGIONS]
    return f"## Voxel classification ({split})\n\n" + table(
        ["network", "region", "accuracy", "precision", "recall", "F1"], rows)


def build_report(runs: list[Run], out: Path, split: str) -> Path:
    sections = ["# BraTSXAI training report", "Runs: " + ", ".join(run.name for run in runs) + ".",
                training_section(runs), loss_section(runs), overlap_section(runs)]
    figures = [learning_curves({run.name: run.log for run in runs}, out / "learning_curves.png")]
    if any(run.evaluation for run in runs):
        sections.append(inference_section(runs))
    if any(split in run.evaluation for run in runs):
        sections += [region_section(runs, split), wilcoxon_section(runs, split), voxel_section(runs, split)]
        for metric in ("dice", "jaccard"):
            scores = {run.name: {region: column(run.evaluation[split], f"{metric}_{region}") for region in REGIONS}
                      for run in runs if split in run.evaluation}
            figures.append(violins(scores, f"{metric.capitalize()} per case ({split})", out / f"violin_{metric}.png"))
    sections.append("## Figures\n\n" + "\n\n".join(f"![{path.stem}]({path.name})" for path in figures))
    path = out / "report.md"
    with atomic_write(path) as temporary:
        temporary.write_text("\n\n".join(sections) + "\n")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders of training.train")
    parser.add_argument("--evaluation", type=Path, help="output folder of training.evaluate")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md and the figures")
    parser.add_argument("--split", choices=SPLITS, default="test", help="split of the per-region tables and violins")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = [read_run(folder, args.evaluation) for folder in args.runs]
        path = build_report(runs, args.out, args.split)
    except InputError as error:
        print(error.one_line(), file=sys.stderr)
        return 2
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
