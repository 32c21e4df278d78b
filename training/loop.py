"""One training epoch (gradient accumulation, mixed precision, DDP) and one validation pass.

Both return per-sample sums (loss, Dice and Jaccard per region, sample count) already added up over all ranks,
so every rank sees the same means and takes the same scheduler and early-stopping decisions.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from BraTSXAILib.inference import autocast
from BraTSXAILib.labels import REGIONS, enforce_nesting
from BraTSXAILib.metrics import dice, jaccard

from .distributed import Context, sum_over_ranks, unwrap
from .log import SCORES


@dataclass
class Totals:
    """Sums over samples; `means()` gives the epoch's loss and scores."""

    loss: float = 0.0
    scores: np.ndarray = field(default_factory=lambda: np.zeros(len(SCORES)))  # in the order of log.SCORES
    count: int = 0
    skipped_steps: int = 0  # optimiser steps left out because a gradient was not finite

    def add(self, loss: float, logits: torch.Tensor, target: torch.Tensor) -> None:
        batch = logits.shape[0]
        self.loss += loss * batch
        self.count += batch
        for predicted, truth in zip((logits > 0).cpu().numpy(), target.cpu().numpy().astype(bool)):
            self.scores += sample_scores(enforce_nesting(predicted), truth)

    def over_ranks(self, context: Context) -> Totals:
        summed = sum_over_ranks([self.loss, *self.scores, self.count], context)
        # Gradients are identical on all ranks after DDP's all-reduce, so every rank skipped the same steps.
        return Totals(summed[0], np.array(summed[1:-1]), int(round(summed[-1])), self.skipped_steps)

    def means(self, prefix: str) -> dict[str, float]:
        count = max(self.count, 1)
        return {f"{prefix}_loss": self.loss / count,
                **{f"{prefix}_{name}": float(value) / count for name, value in zip(SCORES, self.scores)}}


def sample_scores(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice then Jaccard for WT, TC, ET of one sample's boolean (3, ...) masks (the shared metrics' rules)."""
    return np.array([dice(predicted[i], truth[i]) for i in range(len(REGIONS))]
                    + [jaccard(predicted[i], truth[i]) for i in range(len(REGIONS))])


def gradients_finite(optimizer: torch.optim.Optimizer) -> bool:
    gradients = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    return bool(torch.stack([torch.isfinite(g).all() for g in gradients]).all()) if gradients else True


def train_epoch(
    model: nn.Module,
    batches: Iterable,
    steps: int,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loss_function: Callable,
    context: Context,
    precision: str,
    accumulation: int,
    memory_format: torch.memory_format = torch.contiguous_format,
    on_step: Callable[[float], None] = lambda loss: None,
) -> Totals:
    """Optimizer step every `accumulation` batches (and after the last); each batch's loss is divided by the size
    of its accumulation group, so a short last group is not under-weighted. DDP synchronises gradients only on
    the batch that ends a group. A step whose gradients are not all finite is skipped (as the float16 gradient
    scaler does), so one overflow in bf16 cannot turn every weight into NaN; `Totals.skipped_steps` counts them."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    totals = Totals()
    for step, (image, target) in enumerate(batches):
        group_start = step - step % accumulation
        group_size = min(accumulation, steps - group_start)
        ends_group = step - group_start == group_size - 1
        image = image.to(context.device, non_blocking=True).contiguous(memory_format=memory_format)
        target = target.to(context.device, non_blocking=True)
        defer_sync = isinstance(model, DistributedDataParallel) and not ends_group
        with model.no_sync() if defer_sync else nullcontext():
            with autocast(context.device, precision):
                logits = model(image)
            loss = loss_function(logits, target)
            scaler.scale(loss / group_size).backward()
        if ends_group:
            if scaler.is_enabled() or gradients_finite(optimizer):  # the float16 scaler checks by itself
                scaler.step(optimizer)
            else:
                totals.skipped_steps += 1
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        totals.add(loss.item(), logits.detach(), target)
        on_step(loss.item())
    return totals.over_ranks(context)


@torch.inference_mode()
def validate(
    model: nn.Module,
    volumes: Iterable,
    loss_function: Callable,
    context: Context,
    precision: str,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Totals:
    """Whole volumes, one at a time; each rank takes its own share of the cases, the sums are then combined."""
    network = unwrap(model).eval()
    totals = Totals()
    for image, target in volumes:
        image = image.to(context.device).contiguous(memory_format=memory_format)
        target = target.to(context.device)
        with autocast(context.device, precision):
            logits = network(image)
        totals.add(loss_function(logits, target).item(), logits, target)
    return totals.over_ranks(context)
