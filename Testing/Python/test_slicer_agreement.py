"""Agreement between networks and with a ground truth: Dice per WT/TC/ET region, known answers."""
from __future__ import annotations

import numpy as np
import pytest

import slicer_module  # noqa: F401
from BraTSXAIHelpers.agreement import REGIONS, agreement_rows
from BraTSXAIHelpers.manifest import MODEL_LABELS
from BraTSXAILib import labels
from BraTSXAILib.models import DISPLAY_NAMES


def test_names_match_the_library():
    assert REGIONS == labels.REGIONS
    assert MODEL_LABELS == DISPLAY_NAMES


def label_map(core: slice, edema: slice, enhancing: slice) -> np.ndarray:
    """A 1×1×20 row of voxels with the given spans of necrotic core (1), edema (2) and enhancing tumour (4)."""
    row = np.zeros((1, 1, 20), np.uint8)
    row[..., edema] = 2
    row[..., core] = 1
    row[..., enhancing] = 4
    return row


def test_pairs_then_truth_with_exact_dice():
    unet = label_map(slice(4, 6), slice(0, 10), slice(6, 8))  # WT 0-9 (10), TC 4-7 (4), ET 6-7 (2)
    resunet = label_map(slice(4, 6), slice(0, 10), slice(6, 8))  # identical
    attunet = label_map(slice(5, 7), slice(2, 12), slice(7, 9))  # WT 2-11, TC 5-8, ET 7-8
    rows = agreement_rows({"unet": unet, "resunet": resunet, "attunet": attunet}, truth=unet)
    assert [r.comparison for r in rows] == [
        "UNet vs Residual UNet", "UNet vs Attention UNet", "Residual UNet vs Attention UNet",
        "UNet vs ground truth", "Residual UNet vs ground truth", "Attention UNet vs ground truth",
    ]
    assert rows[0].dice == (1.0, 1.0, 1.0)
    # WT: overlap 2..9 = 8 of 10+10; TC: 5..7 = 3 of 4+4; ET: voxel 7 = 1 of 2+2
    assert rows[1].dice == pytest.approx((16 / 20, 6 / 8, 2 / 4))
    assert rows[5].dice == rows[1].dice


def test_both_empty_counts_as_agreement_and_one_model_needs_truth():
    empty = np.zeros((2, 2, 2), np.uint8)
    assert agreement_rows({"unet": empty, "attunet": empty})[0].dice == (1.0, 1.0, 1.0)
    assert agreement_rows({"unet": empty}) == []
    [row] = agreement_rows({"unet": empty}, truth=np.full((2, 2, 2), 2, np.uint8))
    assert row.comparison == "UNet vs ground truth" and row.dice == (0.0, 1.0, 1.0)


def test_brats_2023_enhancing_label_3_is_enhancing_too():
    a = label_map(slice(0, 0), slice(0, 0), slice(0, 4))
    b = a.copy()
    b[b == 4] = 3
    assert agreement_rows({"unet": a, "resunet": b})[0].dice == (1.0, 1.0, 1.0)


def test_different_grids_are_refused():
    with pytest.raises(ValueError, match="shapes"):
        agreement_rows({"unet": np.zeros((2, 2, 2)), "resunet": np.zeros((2, 2, 3))})
