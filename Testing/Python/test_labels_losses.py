"""Label map ⇄ regions conversion and the BCE-Dice loss against hand-computed values."""
import math

import numpy as np
import pytest
import torch

from BraTSXAILib.labels import enforce_nesting, labels_to_regions, regions_to_labels
from BraTSXAILib.losses import BCEDiceLoss


@pytest.mark.parametrize("et_label", [4, 3])
def test_label_map_round_trip(et_label):
    labels = np.array([[0, 1, 2], [et_label, 2, 0]], dtype=np.uint8)
    regions = labels_to_regions(labels)
    assert regions[0].tolist() == [[False, True, True], [True, True, False]]  # WT
    assert regions[1].tolist() == [[False, True, False], [True, False, False]]  # TC
    assert regions[2].tolist() == [[False, False, False], [True, False, False]]  # ET
    assert np.array_equal(regions_to_labels(regions, et_label), labels)


def test_nesting_is_enforced_by_intersection():
    wt = np.array([1, 1, 0, 1], bool)
    tc = np.array([1, 0, 1, 1], bool)
    et = np.array([1, 1, 1, 0], bool)
    nested = enforce_nesting(np.stack([wt, tc, et]))
    assert nested[1].tolist() == [True, False, False, True]
    assert nested[2].tolist() == [True, False, False, False]
    assert regions_to_labels(np.stack([wt, tc, et])).tolist() == [4, 2, 0, 1]


def test_unknown_enhancing_label_is_refused():
    with pytest.raises(ValueError):
        regions_to_labels(np.zeros((3, 2), bool), et_label=5)


def test_bce_dice_matches_hand_computation():
    logits = torch.tensor([0.0, 2.0, -1.0, 1.0]).reshape(1, 1, 4, 1, 1)
    target = torch.tensor([0.0, 1.0, 0.0, 1.0]).reshape(1, 1, 4, 1, 1)
    p = [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1)), 1 / (1 + math.exp(-1))]
    bce = -sum(math.log(pi) if t else math.log(1 - pi) for pi, t in zip(p, [0, 1, 0, 1])) / 4
    dice = (2 * (p[1] + p[3]) + 1) / (sum(p) + 2 + 1)
    loss = BCEDiceLoss()(logits, target)
    assert loss.item() == pytest.approx(bce + 1 - dice, rel=1e-6)


def test_loss_gradient_matches_finite_differences():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    target = (torch.rand(1, 3, 3, 2, 2) > 0.5).double()
    assert torch.autograd.gradcheck(lambda x: BCEDiceLoss()(x, target).double(), (logits,))
