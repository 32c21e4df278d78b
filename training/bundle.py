"""`python -m training.bundle --data DIR --out RUNS [--warm] [--jobs 2]`: rebuild the bundled models in one go.

1. Train every network of `--configs` on the fixed `--split` (run folders `RUNS/<config name>`, `--jobs` at a
   time, one thread each on a CPU). A run folder with a checkpoint is resumed; a finished run is left as it is;
   with `--warm`, a new run starts from the registry's current default weights of its architecture.
2. Choose each network's label rule and the ensemble's on the validation cases (`training.calibrate`,
   `RUNS/rules.json`).
3. Publish the kept weights with their rule into `--models-dir` (sha256 in the registry, with the command,
   config, split and epoch that made them); the registry is written once, after every weights file is complete.
4. Evaluate the published networks and their ensemble on the validation cases (`RUNS/evaluation`), store the
   scores in the registry and regenerate the model card's measured tables (with `--brats-scoring`, also its
   section of the BraTS challenge's lesion-wise scores).
5. Measure the uncertainty and the expected Dice on the same cases (`training.uncertainty`, `RUNS/uncertainty`),
   store the expected-Dice calibration with the ensemble, then stress it on the same cases with failed inputs
   (`training.quality_stress`, `RUNS/stress`); regenerate docs/uncertainty.md's two measured sections.
6. Choose each network's Grad-CAM layer and method per region on the same cases (`training.explain_defaults`,
   `RUNS/explain`), store them in the registry entries (`explain`) and regenerate docs/explanations.md's section.
Each step can be re-run: a finished step is redone from its inputs, which are all in RUNS. `--only explain` (or
`trust`) redoes that step alone for the models already published in `--models-dir`, e.g. when the explanation
candidates or the rule change but the weights do not.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from BraTSXAILib.choices import DEFAULT_FLIPS
from BraTSXAILib.errors import InputError
from BraTSXAILib.outputs import atomic_write, read_json
from BraTSXAILib.pipeline import ENSEMBLE
from BraTSXAILib.weights import BUNDLED_DIR, REGISTRY_ENV, default_entry, load_registry, read_weights

from . import calibrate, evaluate, explain_defaults, quality_stress, uncertainty
from .command import run_command
from .config import load_config
from .model_card import (BEGIN, CHALLENGE, END, challenge_section, markers, measured_section, training_section,
                         write_card)
from .publish import register, registry_entry, validation_scores

CONFIGS = tuple(Path("training/configs") / f"bundle_{name}.json" for name in ("unet", "resunet", "attunet"))
SPLIT = Path("training/splits/brats18-29.json")
STRESS = "stress"  # docs/uncertainty.md's section of training.quality_stress


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.bundle", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of labelled BraTS case folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs (keep it outside the checkout)")
    parser.add_argument("--configs", type=Path, nargs="+", default=list(CONFIGS),
                        help="one training config per network")
    parser.add_argument("--split", type=Path, default=SPLIT, help="the fixed split (train/validation/test JSON)")
    parser.add_argument("--models-dir", type=Path, default=BUNDLED_DIR, help="registry folder to publish into")
    parser.add_argument("--dataset", default="BraTS 2018", help="what the data is, for the registry")
    parser.add_argument("--tag", default="brats18", help="data tag in the model ids, e.g. unet-brats18-2mm-w16")
    parser.add_argument("--warm", action="store_true", help="new runs start from the current default weights")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training run")
    parser.add_argument("--epochs", type=int, help="override the configs' maximum epochs")
    parser.add_argument("--cache", type=Path, help="preprocessed-case cache (default RUNS/cache)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--docs", type=Path, default=Path("docs"),
                        help="folder whose uncertainty.md and explanations.md measured sections are refreshed")
    parser.add_argument("--only", choices=("trust", "explain"),
                        help="redo this step alone, for the models already published in --models-dir")
    parser.add_argument("--brats-scoring", action="store_true",
                        help="also score with the BraTS challenge's package (pip install 'brats-xai[brats]')")
    return parser.parse_args(argv)


def model_id(config, tag: str) -> str:
    spacing = "native" if config.spacing is None else "x".join(f"{s:g}" for s in sorted(set(config.spacing))) + "mm"
    return f"{config.architecture}-{tag}-{spacing}-w{config.width}"


def train_command(args: argparse.Namespace, config_path: Path, run: Path, init: Path | None) -> list[str]:
    command = [sys.executable, "-m", "training.train", "--config", str(config_path), "--data", str(args.data),
               "--out", str(run), "--split", str(args.split), "--cache", str(args.cache or args.out / "cache"),
               "--threads", str(args.threads), "--device", args.device]
    if (run / "checkpoint.pt").exists():
        command.append("--resume")
    elif init is not None:
        command += ["--init", str(init)]
    return command + (["--epochs", str(args.epochs)] if args.epochs else [])


def warm_weights(architecture: str, models_dir: Path) -> Path | None:
    entry = default_entry(architecture, load_registry(models_dir / "registry.json"))
    return entry.folder / entry.file_name if entry else None


def train_all(args: argparse.Namespace, configs: dict[str, Path]) -> None:
    """Every run to its end, `--jobs` at a time; one line per finished run; a failed run stops the bundle."""
    waiting, running = list(configs.items()), []
    while waiting or running:
        while waiting and len(running) < args.jobs:
            name, path = waiting.pop(0)
            run = args.out / name
            run.mkdir(parents=True, exist_ok=True)
            init = warm_weights(load_config(path).architecture, args.models_dir) if args.warm else None
            log = open(args.out / f"{name}.log", "a")
            running.append((name, subprocess.Popen(train_command(args, path, run, init), stdout=log,
                                                   stderr=subprocess.STDOUT), log))
        for item in list(running):
            name, process, log = item
            if process.poll() is None:
                continue
            running.remove(item)
            log.close()
            if process.returncode != 0:
                for _, other, _ in running:
                    other.terminate()
                last = (args.out / f"{name}.log").read_text().strip().splitlines()[-1:]
                raise InputError(f"training {name} failed ({last[0] if last else 'no output'})",
                                 f"see {args.out / f'{name}.log'}; re-run the bundle to resume it")
            print(f"trained {name} (log {args.out / f'{name}.log'})", flush=True)
        time.sleep(1)


def publish_all(args, configs: dict[str, Path], rules: dict, command: str) -> list[str]:
    """Weights + rules into the models folder, then one registry write; returns the published ids."""
    split = read_json(args.split, "split file", "check --split")
    staged, entries = [], []
    for name, path in configs.items():
        config = load_config(path)
        payload = read_weights(args.out / name / f"{config.name}.pt")
        payload["labels"] = rules["models"][name]["labels"]
        payload["training"] = {**payload.get("training", {}), "command": command, "config_file": str(path),
                               "split_file": str(args.split)}
        target = args.models_dir / f"{model_id(config, args.tag)}.pt"
        with atomic_write(target) as temporary:
            torch.save(payload, temporary)
        staged.append(target)
        entries.append(registry_entry(target.stem, payload, target, split, args.dataset, True, {}))
    members = [entry["id"] for entry in entries]
    register(entries, args.models_dir / "registry.json",
             [{"members": members, "labels": rules["models"][ENSEMBLE]["labels"], "validation": {}}])
    return members


def score_all(args, configs: dict[str, Path], members: list[str], command: str) -> None:
    """Evaluate the published models and their ensemble; put the scores into the registry and the model card."""
    os.environ[REGISTRY_ENV] = str(args.models_dir / "registry.json")
    evaluation = args.out / "evaluation"
    evaluate.evaluate(evaluate.parse_args(["--data", str(args.data), "--models", *members, "--ensemble",
                                           "--splits", "validation", "--split-file", str(args.split),
                                           "--out", str(evaluation), "--device", args.device,
                                           *(["--brats-scoring"] if args.brats_scoring else [])]))
    registry = read_json(args.models_dir / "registry.json", "model registry", "re-run the bundle")
    entries = [{**entry, "validation": validation_scores(evaluation, (entry["id"],))}
               for entry in registry["models"] if entry["id"] in members]
    ensemble = {"members": members, "labels": next(e["labels"] for e in registry["ensembles"]
                                                   if sorted(e["members"]) == sorted(members)),
                "validation": validation_scores(evaluation, (ENSEMBLE,))}
    register(entries, args.models_dir / "registry.json", [ensemble])
    write_card(args.models_dir / "MODEL_CARD.md",
               measured_section(evaluation, [*members, ENSEMBLE], "validation", command))
    write_card(args.models_dir / "MODEL_CARD.md", training_section(
        {member: args.out / name for member, name in zip(members, configs)}), "training")
    if args.brats_scoring:
        write_card(args.models_dir / "MODEL_CARD.md",
                   challenge_section(evaluation, [*members, ENSEMBLE], "validation", command), CHALLENGE)


def trust_all(args, members: list[str], command: str) -> None:
    """Uncertainty measured on the validation cases; its expected-Dice calibration goes to the ensemble entry."""
    folder = args.out / "uncertainty"
    summary = uncertainty.run(uncertainty.parse_args(["--data", str(args.data), "--models", *members,
                                                      "--split-file", str(args.split), "--out", str(folder),
                                                      "--device", args.device]))
    fits = summary["flips"][DEFAULT_FLIPS]["quality"]
    registry = read_json(args.models_dir / "registry.json", "model registry", "re-run the bundle")
    ensemble = next(e for e in registry["ensembles"] if sorted(e["members"]) == sorted(members))
    register([], args.models_dir / "registry.json",
             [{**ensemble, "quality": {region: [fit["a"], fit["b"]] for region, fit in fits.items()},
               "quality_flips": DEFAULT_FLIPS}])
    write_card(args.docs / "uncertainty.md", f"{BEGIN}\nMade by `{command}`.\n\n"
               + (folder / "uncertainty.md").read_text() + END + "\n")
    stress = args.out / "stress"  # the calibration just stored, under failed inputs
    quality_stress.run(quality_stress.parse_args(["--data", str(args.data), "--split-file", str(args.split),
                                                  "--out", str(stress), "--models", *members, "--device", args.device,
                                                  "--registry", str(args.models_dir / "registry.json")]))
    begin, end = markers(STRESS)
    write_card(args.docs / "uncertainty.md", f"{begin}\nMade by `{command}`.\n\n"
               + (stress / "quality_stress.md").read_text() + end + "\n", STRESS)


def explain_all(args, members: list[str], command: str) -> None:
    """Per-network, per-region Grad-CAM defaults measured on the validation cases, into the registry entries."""
    folder = args.out / "explain"
    choices = explain_defaults.run(explain_defaults.parse_args([
        "--data", str(args.data), "--models", *members, "--split-file", str(args.split), "--out", str(folder),
        "--device", args.device]))
    registry = read_json(args.models_dir / "registry.json", "model registry", "re-run the bundle")
    register([{**entry, "explain": choices[entry["id"]]} for entry in registry["models"] if entry["id"] in members],
             args.models_dir / "registry.json")
    write_card(args.docs / "explanations.md", f"{BEGIN}\nMade by `{command}`.\n\n"
               + (folder / "explain_defaults.md").read_text() + END + "\n")


def bundle(args: argparse.Namespace, command: str) -> list[str]:
    loaded = [load_config(path) for path in args.configs]
    configs = {config.name: path for config, path in zip(loaded, args.configs)}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only:
        os.environ[REGISTRY_ENV] = str(args.models_dir / "registry.json")
        members = [model_id(config, args.tag) for config in loaded]
        {"trust": trust_all, "explain": explain_all}[args.only](args, members, command)
        return members
    train_all(args, configs)
    rules = calibrate.run(calibrate.parse_args(["--data", str(args.data), "--split-file", str(args.split),
                                                "--out", str(args.out / "rules.json"), "--device", args.device,
                                                "--models", *(str(args.out / name) for name in configs)]))
    members = publish_all(args, configs, {"models": rules}, command)
    score_all(args, configs, members, command)
    trust_all(args, members, command)
    explain_all(args, members, command)
    return members


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m training.bundle " + " ".join(sys.argv[1:] if argv is None else argv)

    def finish(members: list[str]) -> int:
        done = f"redid step {args.only} for" if args.only else "published"
        print(f"{done} {', '.join(members)} and their ensemble in {args.models_dir}")
        return 0

    return run_command(args, lambda parsed: bundle(parsed, command), finish)


if __name__ == "__main__":
    sys.exit(main())
