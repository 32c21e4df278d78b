"""DistributedDataParallel on CPU: two gloo processes, each with its own sample, end one step with identical weights,
and those weights are the ones a single process reaches with both samples in one batch (DDP averages gradients)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from BraTSXAILib.losses import BCEDiceLoss
from BraTSXAILib.models import build_model
from training import distributed
from training.loop import train_epoch

WORLD = 2
SIZE = 16
LR = 0.1  # plain SGD: the update is LR × gradient, so equal gradients mean equal weights


def free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def sample(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image with a planted cube whose position depends on `seed`; the cube is every region's target."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(1, 4, SIZE, SIZE, SIZE, generator=generator)
    target = torch.zeros(1, 3, SIZE, SIZE, SIZE)
    corner = 2 + 6 * seed
    target[..., corner:corner + 6, corner:corner + 6, corner:corner + 6] = 1
    image[:, 1] += 2 * target[:, 0]
    return image, target


def one_rank_step(rank: int, port: int, folder: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    context = distributed.setup("cpu")
    try:
        torch.manual_seed(100 + rank)  # different initial weights on each rank: DDP must start all from rank 0's
        model = build_model("unet", 8)
        network = distributed.wrap(model, context)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        train_epoch(network, [sample(rank)], 1, optimizer, scaler, BCEDiceLoss(), context, "float32", accumulation=1)
        torch.save(model.state_dict(), Path(folder) / f"rank{rank}.pt")
    finally:
        distributed.teardown(context)


def test_two_gloo_ranks_hold_identical_weights_equal_to_one_process_on_both_samples(tmp_path):
    mp.spawn(one_rank_step, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert all(torch.equal(ranks[0][name], ranks[1][name]) for name in ranks[0])

    torch.manual_seed(100)  # rank 0's initial weights
    model = build_model("unet", 8)
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    images, targets = zip(*(sample(rank) for rank in range(WORLD)))
    BCEDiceLoss()(model(torch.cat(images)), torch.cat(targets)).backward()
    optimizer.step()

    moved = max((ranks[0][name] - initial[name]).abs().max().item() for name in initial)
    assert moved > 1e-3  # a real step was taken
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(ranks[0][name], tensor, atol=1e-6, rtol=1e-5)
