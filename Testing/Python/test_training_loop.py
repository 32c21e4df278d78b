"""The epoch loop's gradient accumulation, early stopping, the checkpoint's random states, the report's statistics."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from BraTSXAILib.losses import BCEDiceLoss
from BraTSXAILib.models import build_model
from training.checkpoint import load_checkpoint, restore_rng, save_checkpoint
from training.config import TrainConfig
from training.distributed import Context
from training.log import selected_row
from training.loop import train_epoch, validate
from training.stats import mean_se, paired_wilcoxon
from training.train import Counters, advance


def batches(count: int, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(5)
    return [(torch.randn(1, 4, size, size, size, generator=generator),
             (torch.rand(1, 3, size, size, size, generator=generator) > 0.7).float()) for _ in range(count)]


def sgd_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("unet", 8)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def run_loop(data, accumulation: int):
    model, optimizer = sgd_model()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    totals = train_epoch(model, data, len(data), optimizer, scaler, BCEDiceLoss(), Context(), "float32", accumulation)
    assert totals.count == len(data)
    return model


def assert_same_weights(model, reference, atol=1e-6):
    for (name, tensor), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(tensor, expected, atol=atol, rtol=1e-5, msg=name)


def test_accumulating_two_batches_equals_one_step_on_a_batch_of_two():
    data = batches(2)
    reference, optimizer = sgd_model()
    BCEDiceLoss()(reference(torch.cat([d[0] for d in data])), torch.cat([d[1] for d in data])).backward()
    optimizer.step()
    assert_same_weights(run_loop(data, accumulation=2), reference)


def test_a_short_last_group_is_not_under_weighted():
    """Batches a, b, c with accumulation 2: a step on (loss a + loss b) / 2, then a step on the whole loss c.

    Compared with the same sequence written out (a random 16³ network amplifies rounding ~1000× per step, so the
    comparison with a batch of two is made after one step, above)."""
    data = batches(3)
    reference, optimizer = sgd_model()
    for image, target in data[:2]:
        (BCEDiceLoss()(reference(image), target) / 2).backward()
    optimizer.step()
    optimizer.zero_grad()
    BCEDiceLoss()(reference(data[2][0]), data[2][1]).backward()
    optimizer.step()
    assert_same_weights(run_loop(data, accumulation=2), reference, atol=1e-7)


def test_a_step_with_non_finite_gradients_is_skipped_not_taken():
    model, optimizer = sgd_model()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    poisoned = lambda logits, target: BCEDiceLoss()(logits, target) * float("nan")  # noqa: E731
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    totals = train_epoch(model, batches(2), 2, optimizer, scaler, poisoned, Context(), "float32", accumulation=1)
    assert totals.skipped_steps == 2
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())


def test_validation_scores_a_perfect_prediction_as_dice_one():
    """A head whose logits are +20 inside the target and −20 outside: Dice and Jaccard 1 for every region."""
    target = torch.zeros(1, 3, 8, 8, 8)
    target[..., 2:6, 2:6, 2:6] = 1

    class Oracle(torch.nn.Module):
        def forward(self, image):
            return 40 * image[:, :3] - 20

    totals = validate(Oracle(), [(target.clone(), target)], BCEDiceLoss(), Context(), "float32")
    means = totals.means("validation")
    assert all(means[f"validation_{m}_{r}"] == 1.0 for m in ("dice", "jaccard") for r in ("WT", "TC", "ET"))
    assert means["validation_loss"] < 1e-3


def test_checkpoint_restores_every_random_state(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    save_checkpoint(tmp_path / "checkpoint.pt", epoch=3)
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    restore_rng(state["rng"])
    assert state["epoch"] == 3
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


def test_mean_and_standard_error_known_answers():
    assert mean_se([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1 / math.sqrt(3)))
    mean, se = mean_se([4.0])
    assert mean == 4.0 and math.isnan(se)


def test_wilcoxon_known_answers():
    # Six positive differences with distinct ranks: exact two-sided p = 2 / 2**6.
    median, p = paired_wilcoxon([1.1, 2.2, 3.3, 4.4, 5.5, 6.6], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert median == pytest.approx(0.35) and p == pytest.approx(2 / 64)
    assert paired_wilcoxon([0.5, 0.6], [0.5, 0.6]) == (0.0, 1.0)


def test_early_stopping_counts_epochs_without_improvement_and_keeps_the_best():
    config = TrainConfig(early_stopping_patience=3, epochs=100)
    counters, improved = Counters(), []
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.0, 2.7], start=1):
        improved.append(advance(counters, {"epoch": epoch, "validation_loss": loss}, config))
        if counters.stopped:
            break
    assert improved == [True, True, False, False, False]  # an equal loss is no improvement
    assert (counters.epoch, counters.best_epoch, counters.best_loss, counters.stopped) == (5, 2, 2.0, "early stopping")
    last = Counters()
    advance(last, {"epoch": 1, "validation_loss": 1.0}, TrainConfig(epochs=1))
    assert last.stopped == "maximum epochs"


def _row(epoch: int, loss: float, dice: tuple[float, float, float]) -> dict:
    return {"epoch": epoch, "validation_loss": loss,
            **{f"validation_dice_{region}": value for region, value in zip(("WT", "TC", "ET"), dice)}}


def test_selection_keeps_the_lowest_loss_or_the_highest_mean_dice():
    rows = [_row(1, 1.0, (0.5, 0.2, 0.2)), _row(2, 0.8, (0.0, 0.0, 0.0)),  # epoch 2: collapsed to "no tumour"
            _row(3, 0.9, (0.6, 0.3, 0.3)), _row(4, 0.95, (0.3, 0.6, 0.3))]
    assert selected_row(rows, "loss")["epoch"] == 2
    assert selected_row(rows, "dice")["epoch"] == 3  # mean 0.4, tied with epoch 4: the earlier one is kept
    assert selected_row([], "dice") == {}
