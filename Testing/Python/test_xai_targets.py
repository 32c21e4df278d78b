"""Segmentation targets: which voxels and which logits each class's score sums."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from BraTSXAILib.errors import InputError
from BraTSXAILib.xai.targets import (class_masks, component_mask, make_targets, predicted_masks, truth_masks,
                                     voxel_mask)


def test_exclusive_classes_follow_the_label_map():
    labels = np.array([[[0, 2, 1, 4, 4, 2]]], dtype=np.uint8)
    masks = truth_masks(labels)
    assert masks["WT"].ravel().tolist() == [0, 1, 1, 1, 1, 1]
    assert masks["TC"].ravel().tolist() == [0, 0, 1, 1, 1, 0]
    assert masks["ET"].ravel().tolist() == [0, 0, 0, 1, 1, 0]
    assert masks["ED"].ravel().tolist() == [0, 1, 0, 0, 0, 1]
    assert masks["NCR"].ravel().tolist() == [0, 0, 1, 0, 0, 0]


def test_predicted_regions_are_nested_before_classes_are_cut():
    logits = torch.tensor([[-1.0, 2.0, 2.0], [3.0, -1.0, 3.0], [1.0, 1.0, -2.0]]).reshape(1, 3, 1, 1, 3)
    masks = predicted_masks(logits)  # voxel 0: TC and ET without WT; voxel 1: ET without TC
    assert masks["WT"].ravel().tolist() == [False, True, True]
    assert masks["ET"].ravel().tolist() == [False, False, False]
    assert masks["NCR"].ravel().tolist() == [False, False, True]


def test_score_is_the_masked_sum_of_logits_and_its_gradient_is_the_mask():
    logits = torch.randn(1, 3, 4, 5, 6, requires_grad=True)
    mask = np.zeros((4, 5, 6), dtype=bool)
    mask[1:3, 2:4, 0:5] = True
    whole, edema = make_targets(["WT", "ED"], {"WT": mask, "ED": mask})
    expected_score = logits[0, 0][torch.from_numpy(mask)].sum()
    assert whole(logits).item() == pytest.approx(expected_score.item(), rel=1e-6)
    (gradient,) = torch.autograd.grad(edema(logits), logits)
    expected = torch.zeros_like(logits)
    expected[0, 0][torch.from_numpy(mask)] = 1.0
    expected[0, 1][torch.from_numpy(mask)] = -1.0
    torch.testing.assert_close(gradient, expected)


def test_component_and_voxel_sets():
    mask = np.zeros((5, 5, 9), dtype=bool)
    mask[1:3, 1:3, 0:2] = True  # 8 voxels
    mask[1:4, 1:4, 5:8] = True  # 27 voxels
    assert component_mask(mask).sum() == 27
    assert component_mask(mask, voxel=(1, 1, 0)).sum() == 8
    with pytest.raises(InputError):
        component_mask(mask, voxel=(0, 0, 0))
    assert voxel_mask((5, 5, 9), (4, 4, 8)).sum() == 1
    with pytest.raises(InputError):
        voxel_mask((5, 5, 9), (5, 0, 0))


def test_empty_and_unknown_classes():
    empty = class_masks(np.zeros((3, 2, 2, 2), dtype=bool))
    assert all(target.empty for target in make_targets(["WT", "ET"], empty))
    with pytest.raises(InputError, match="class"):
        make_targets(["XX"], empty)
