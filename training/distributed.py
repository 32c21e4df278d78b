"""One process or many (`torchrun --nproc_per_node N`): who am I, which device, and how ranks agree.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them the run is a single process and every helper here is
a no-op. Backend: NCCL when the ranks use CUDA GPUs, gloo on CPU. Only rank 0 writes files.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from BraTSXAILib.inference import resolve_device


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> Context:
    """Join the process group torchrun describes (if any) and pick this rank's device (`cuda:<local rank>`)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return Context(rank, world_size, local_rank, chosen)


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()


def sum_over_ranks(values: Sequence[float], context: Context) -> list[float]:
    """Element-wise sum of `values` over all ranks (float64), identical on every rank afterwards."""
    tensor = torch.tensor(list(values), dtype=torch.float64)
    if context.distributed:
        if context.device.type == "cuda":
            tensor = tensor.to(context.device)
        dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def wrap(model: nn.Module, context: Context) -> nn.Module:
    """DistributedDataParallel around `model` when several ranks run; DDP copies rank 0's weights to all."""
    if not context.distributed:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model
