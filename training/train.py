"""`python -m training.train --config CONFIG --data DIR --out RUN [--resume]`: fit one network.

Also runs unchanged under `torchrun --nproc_per_node N -m training.train ...` (DistributedDataParallel; each rank
trains on its own shard of the patches and validates its own share of the cases; only rank 0 writes).

The run folder receives: `config.json`, `split.json`, `log.csv` (one row per epoch), `checkpoint.pt` (after every
epoch; `--resume` continues from it exactly), and `<name>.pt` + `<name>.sha256`, the weights of the best epoch so
far by the config's `selection` (lowest validation loss, or highest mean validation Dice), in the format the model
registry reads. The scheduler and early stopping always follow the validation loss, as in the study.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import DEVICES, resolve_precision
from BraTSXAILib.batch import labelled_sources
from BraTSXAILib.losses import BCEDiceLoss
from BraTSXAILib.models import build_model
from BraTSXAILib.outputs import write_json
from BraTSXAILib.weights import load_model

from . import distributed
from .cache import build_cache, cache_folder
from .checkpoint import export_weights, load_checkpoint, restore_rng, save_checkpoint
from .config import TrainConfig, load_config
from .data import PatchDataset, VolumeDataset
from .log import read_log, selected_row, validation_dice, write_log
from .loop import train_epoch, validate
from .split import SPLITS, make_split, read_split, write_split

CHECKPOINT, CONFIG, SPLIT, LOG, INIT = "checkpoint.pt", "config.json", "split.json", "log.csv", "init.json"


@dataclass
class Counters:
    """Where the run stands; saved in the checkpoint."""

    epoch: int = 0  # last completed epoch (1-based)
    best_loss: float = math.inf
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the validation loss last improved
    stopped: str = ""  # why training ended, once it has



def worker_start() -> str | None:
    """How loader workers start: forked (the default) unless this process has loaded OpenVINO, whose thread pool
    does not survive a fork (the workers crash); then from a fork server. Training alone never loads it."""
    return "forkserver" if "openvino" in sys.modules else None

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="training config JSON (training/configs/); optional with --resume")
    parser.add_argument("--data", type=Path, required=True, help="folder of BraTS case folders with labels")
    parser.add_argument("--out", type=Path, required=True, help="run folder (created)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--split", type=Path, help="use this split JSON instead of making a seeded one")
    parser.add_argument("--cache", type=Path, default=Path("cache"), help="folder for preprocessed cases")
    parser.add_argument("--epochs", type=int, help="override the config's maximum number of epochs")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on a busy, shared machine)")
    parser.add_argument("--init", help="start a new run warm from these weights (registry id or .pt file) instead of "
                                       "random ones; architecture and width must match the config")
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The config of a new run, or the stored one of a resumed run (a given --config must then agree with it)."""
    stored = args.out / CONFIG
    if args.resume:
        if not (args.out / CHECKPOINT).exists():
            raise InputError("there is no checkpoint to resume from", "start the run without --resume", args.out)
        config = TrainConfig.from_dict(json.loads(stored.read_text()), stored)
        if args.config is not None:
            given = load_config(args.config)
            if given.with_epochs(config.epochs) != config:
                raise InputError("--config differs from the config the run was started with",
                                 "resume without --config, or start a new run in another --out", args.config)
    else:
        if (args.out / CHECKPOINT).exists():
            raise InputError("the run folder already holds a run",
                             "add --resume to continue it, or choose another --out", args.out)
        if args.config is None:
            raise InputError("no --config given", "pass one of training/configs/*.json")
        config = load_config(args.config)
    return config.with_epochs(args.epochs) if args.epochs is not None else config


def resolve_split(args: argparse.Namespace, config: TrainConfig, labelled: list[str]) -> dict:
    """The split of a new run; a resumed run keeps its own (a given --split must then list the same cases)."""
    if args.resume:
        split = read_split(args.out / SPLIT, labelled)
        if args.split is not None and any(read_split(args.split, labelled)[name] != split[name] for name in SPLITS):
            raise InputError("--split differs from the split the run was started with",
                             "resume without --split, or start a new run in another --out", args.split)
        return split
    if args.split is not None:
        return read_split(args.split, labelled)
    return make_split(labelled, config.split, config.seed)


def read_init(run: Path) -> dict | None:
    """What a resumed run was warm-started from (None for random initial weights)."""
    path = run / INIT
    return json.loads(path.read_text()) if path.exists() else None


def prepare_cache(args, config, split, sources, context: distributed.Context) -> tuple[dict, dict]:
    """Rank 0 preprocesses the training and validation cases; the others wait, then find them up to date.
    Returns the cached cases and the cases that could not be read (id -> error)."""
    folder = cache_folder(args.cache, config.spacing, config.normalisation)
    needed = [sources[case_id] for case_id in split["train"] + split["validation"] if case_id in sources]
    if context.is_main:
        bar = partial(tqdm, desc="preprocess", unit="case")
        found = build_cache(needed, folder, config.spacing, config.normalisation, bar)
    distributed.barrier(context)
    if not context.is_main:
        found = build_cache(needed, folder, config.spacing, config.normalisation)
    return found


def usable_split(split: dict, cached: dict, broken: dict, context: distributed.Context) -> dict:
    """The split without the cases that cannot be read, each reported in one line; refused if nothing is left."""
    for case_id, error in sorted(broken.items()):
        if context.is_main and any(case_id in split[name] for name in SPLITS):
            tqdm.write(f"warning: case {case_id} left out: {error.one_line()}")
    usable = {**split, **{name: [c for c in split[name] if c in cached] for name in ("train", "validation")}}
    if not usable["train"] or not usable["validation"]:
        raise InputError("no readable training or validation case is left", "fix the cases reported above")
    return usable


def training_summary(config: TrainConfig, counters: Counters, rows: list[dict], split: dict,
                     init: dict | None = None) -> dict:
    """The free-form `training` entry of the weights file: what the registry and the report want to know."""
    best = selected_row(rows, config.selection)
    return {
        "config": config.to_dict(),
        "init": init,
        "selection": config.selection,
        "best_epoch": best["epoch"],
        "epochs_run": counters.epoch,
        "validation_loss": best["validation_loss"],
        "validation": validation_dice(best),
        "cases": {name: len(split[name]) for name in ("train", "validation", "test")},
        "torch": str(torch.__version__),
    }


@dataclass
class Parts:
    """The model and what updates it; `network` is the model wrapped for DDP (the model itself otherwise)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: ReduceLROnPlateau
    scaler: torch.amp.GradScaler
    network: torch.nn.Module | None = None

    def state(self, counters: Counters, config: TrainConfig) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "counters": asdict(counters), "config": config.to_dict()}

    def restore(self, state: dict) -> Counters:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        return Counters(**state["counters"])


def build_parts(config: TrainConfig, context: distributed.Context, precision: str, memory_format) -> Parts:
    torch.manual_seed(config.seed)
    model = build_model(config.architecture, config.width).to(context.device, memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, eps=config.eps,
                                 weight_decay=config.weight_decay)
    scheduler = ReduceLROnPlateau(optimizer, mode="min", patience=config.plateau_patience,
                                  factor=config.plateau_factor)
    scaler = torch.amp.GradScaler(context.device.type, enabled=precision == "float16")
    return Parts(model, optimizer, scheduler, scaler)


def warm_start(model: torch.nn.Module, selector: str, config: TrainConfig) -> dict:
    """Load the weights a new run starts from; they must be the config's architecture and width."""
    warm, info = load_model(selector)
    if (info.architecture, info.width) != (config.architecture, config.width):
        raise InputError(f"--init holds a {info.architecture} of width {info.width}, the config asks for "
                         f"{config.architecture} of width {config.width}", "give weights of the same network",
                         info.path)
    model.load_state_dict(warm.state_dict())
    return {"from": info.id, "sha256": info.sha256}


def advance(counters: Counters, row: dict, config: TrainConfig) -> bool:
    """Count the finished epoch in; True when its validation loss is the best so far."""
    counters.epoch = row["epoch"]
    improved = row["validation_loss"] < counters.best_loss
    if improved:
        counters.best_loss, counters.best_epoch, counters.stale_epochs = row["validation_loss"], row["epoch"], 0
    else:
        counters.stale_epochs += 1
    if counters.stale_epochs >= config.early_stopping_patience:
        counters.stopped = "early stopping"
    elif counters.epoch >= config.epochs:
        counters.stopped = "maximum epochs"
    return improved


def epoch_line(row: dict, improved: bool, kept: bool) -> str:
    notes = [note for note, holds in (("best loss", improved), ("weights kept", kept)) if holds]
    return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, validation loss {row['validation_loss']:.4f}, "
            f"Dice WT/TC/ET {row['validation_dice_WT']:.3f}/{row['validation_dice_TC']:.3f}/"
            f"{row['validation_dice_ET']:.3f}, {row['epoch_seconds']:.0f} s" + (f" ({', '.join(notes)})" if notes else ""))


def fit(args: argparse.Namespace, context: distributed.Context) -> Counters:
    config = resolve_config(args)
    sources, broken = labelled_sources(args.data)
    split = resolve_split(args, config, sorted(sources | broken))
    if context.is_main:
        write_json(config.to_dict(), args.out / CONFIG)
        write_split(split, args.out / SPLIT)
    cached, unreadable = prepare_cache(args, config, split, sources, context)
    split = usable_split(split, cached, broken | unreadable, context)
    precision = resolve_precision(config.precision, context.device)
    memory_format = torch.channels_last_3d if config.channels_last else torch.contiguous_format
    parts, counters, rows = build_parts(config, context, precision, memory_format), Counters(), []
    init = read_init(args.out) if args.resume else None
    if args.init and not args.resume:
        init = warm_start(parts.model, args.init, config)
        if context.is_main:
            write_json(init, args.out / INIT)
    if args.resume:
        counters = parts.restore(load_checkpoint(args.out / CHECKPOINT))
        rows = [row for row in read_log(args.out / LOG) if row["epoch"] <= counters.epoch]
        if counters.stopped == "early stopping" or counters.epoch >= config.epochs:
            return counters
        counters.stopped = ""
    parts.network = distributed.wrap(parts.model, context)

    patches = PatchDataset([cached[case_id] for case_id in split["train"]], config)
    sampler = DistributedSampler(patches, context.world_size, context.rank, shuffle=True, seed=config.seed)
    start = worker_start() if config.workers else None
    loader = DataLoader(patches, config.batch_size, sampler=sampler, num_workers=config.workers,
                        pin_memory=context.device.type == "cuda", multiprocessing_context=start)
    mine = split["validation"][context.rank::context.world_size]  # this rank's share of the validation cases
    volumes = DataLoader(VolumeDataset([cached[case_id] for case_id in mine], config), batch_size=1,
                         num_workers=min(config.workers, 1), multiprocessing_context=start)
    if context.is_main:
        tqdm.write(f"{config.name}: {config.architecture} width {config.width}, {precision}, "
                   f"{len(split['train'])} training / {len(split['validation'])} validation cases, "
                   f"{context.world_size} process(es) on {context.device}")

    for epoch in range(counters.epoch + 1, config.epochs + 1):
        sampler.set_epoch(epoch)
        patches.set_epoch(epoch)
        row, skipped = run_epoch(parts, loader, volumes, epoch, config, context, precision, memory_format)
        rows.append(row)
        parts.scheduler.step(row["validation_loss"])
        improved = advance(counters, row, config)
        kept = selected_row(rows, config.selection) is row
        if context.is_main:
            if kept:
                export_weights(parts.model, args.out / f"{config.name}.pt", config,
                               training_summary(config, counters, rows, split, init))
            write_log(rows, args.out / LOG)
            save_checkpoint(args.out / CHECKPOINT, **parts.state(counters, config))
            tqdm.write(epoch_line(row, improved, kept))
            if skipped:
                tqdm.write(f"warning: {skipped} optimiser step(s) skipped in epoch {epoch}: non-finite gradients")
        distributed.barrier(context)
        if counters.stopped:
            break
    return counters


def run_epoch(parts: Parts, loader: DataLoader, volumes: DataLoader, epoch: int, config: TrainConfig,
              context: distributed.Context, precision: str, memory_format) -> tuple[dict, int]:
    """Train on this epoch's patches, validate; return the log row (learning rate as used in this epoch) and the
    number of optimiser steps skipped for non-finite gradients."""
    started = time.perf_counter()
    lr = parts.optimizer.param_groups[0]["lr"]
    loss_function = BCEDiceLoss()
    with tqdm(total=len(loader), desc=f"epoch {epoch}/{config.epochs}", unit="patch", leave=False,
              disable=not context.is_main) as bar:

        def on_step(loss: float) -> None:
            bar.update()
            bar.set_postfix(loss=f"{loss:.4f}")

        trained = train_epoch(parts.network, loader, len(loader), parts.optimizer, parts.scaler, loss_function,
                              context, precision, config.accumulation, memory_format, on_step)
    train_seconds = time.perf_counter() - started
    validated = validate(parts.network, volumes, loss_function, context, precision, memory_format)
    validation_seconds = time.perf_counter() - started - train_seconds
    row = {"epoch": epoch, "lr": lr, **trained.means("train"), **validated.means("validation"),
           "train_seconds": train_seconds, "validation_seconds": validation_seconds,
           "epoch_seconds": train_seconds + validation_seconds}
    return row, trained.skipped_steps


def kept_line(run: Path) -> str:
    """Which epoch's weights the run exported, by its selection rule (lowest loss or highest mean Dice)."""
    config = TrainConfig.from_dict(json.loads((run / CONFIG).read_text()))
    kept = selected_row(read_log(run / LOG), config.selection)
    return f"kept the weights of epoch {kept['epoch']} (selection: {config.selection}) in {run}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        context = distributed.setup(args.device)
    except InputError as error:
        print(error.one_line(), file=sys.stderr)
        return 2
    try:
        counters = fit(args, context)
    except InputError as error:
        print(error.one_line(), file=sys.stderr)
        return 2
    finally:
        distributed.teardown(context)
    if context.is_main:
        print(f"{counters.stopped or 'stopped'} after epoch {counters.epoch}; lowest validation loss "
              f"{counters.best_loss:.4f} at epoch {counters.best_epoch}; {kept_line(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
