"""`python -m training.compare_runs RUN [RUN ...] [--epochs K]`: recipe changes side by side, at equal epochs.

For each run folder: what its config changes against the first run's, and its best epoch by mean validation Dice
within the first K epochs (K: the fewest epochs any of the runs has completed, unless given), with Dice per region
at that epoch (no seconds: the runs shared the CPU unevenly, so their times say nothing). Validation Dice here
is the training log's (network grid, p ≥ 0.5), so runs compare with each other, not with the model card. Prints a
Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from BraTSXAILib.labels import REGIONS

from .log import read_log, selected_row


def changes(config: dict, base: dict) -> str:
    differing = [f"{key} {config[key]}" for key in config if key != "name" and config[key] != base.get(key)]
    return ", ".join(differing) or "(reference)"


def compare(runs: list[Path], epochs: int | None = None) -> str:
    logs = {run: read_log(run / "log.csv") for run in runs}
    configs = {run: json.loads((run / "config.json").read_text()) for run in runs}
    limit = epochs or min(len(rows) for rows in logs.values())
    base = {key: value for key, value in configs[runs[0]].items() if key != "epochs"}
    lines = [f"Best epoch by mean validation Dice within the first {limit} epochs of each run:", "",
             "| run | change against the first | best epoch | Dice WT | Dice TC | Dice ET | mean |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        rows = logs[run][:limit]
        best = selected_row(rows, "dice")
        dice = [best[f"validation_dice_{region}"] for region in REGIONS]
        config = {key: value for key, value in configs[run].items() if key != "epochs"}
        lines.append(f"| `{run.name}` | {changes(config, base)} | {best['epoch']} | "
                     + " | ".join(f"{d:.3f}" for d in dice) + f" | {sum(dice) / 3:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.compare_runs", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="training run folders; the first is the reference")
    parser.add_argument("--epochs", type=int, help="compare within the first K epochs (default: the fewest run)")
    args = parser.parse_args(argv)
    print(compare(args.runs, args.epochs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
