"""Agreement between networks and with a ground truth: Dice per WT/TC/ET region, known answers."""
from __future__ import annotations

import numpy as np
import pytest

import slicer_module
from BraTSXAIHelpers.agreement import REGIONS, agreement_rows, region_dice
from BraTSXAIHelpers.manifest import MODEL_LABELS
from BraTSXAILib import labels
from BraTSXAILib.models import DISPLAY_NAMES


def test_names_match_the_library():
    assert REGIONS == labels.REGIONS
    assert MODEL_LABELS == {**DISPLAY_NAMES, "ensemble": "Ensemble"}


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
    metrics = {m: {"dice_WT": 0.9, "dice_TC": 0.8, "dice_ET": 0.7, "hd95_WT": 3.0} for m in ("unet", "attunet")}
    rows = agreement_rows({"unet": unet, "resunet": resunet, "attunet": attunet}, metrics)
    assert [r.comparison for r in rows] == [
        "UNet vs Residual UNet", "UNet vs Attention UNet", "Residual UNet vs Attention UNet",
        "UNet vs ground truth", "Attention UNet vs ground truth",  # Residual UNet has no Dice in the metrics
    ]
    assert rows[0].dice == (1.0, 1.0, 1.0)
    # WT: overlap 2..9 = 8 of 10+10; TC: 5..7 = 3 of 4+4; ET: voxel 7 = 1 of 2+2
    assert rows[1].dice == pytest.approx((16 / 20, 6 / 8, 2 / 4))
    assert rows[4].dice == (0.9, 0.8, 0.7)
    assert region_dice(attunet, unet) == rows[1].dice


def test_both_empty_counts_as_agreement_and_one_model_needs_truth():
    empty = np.zeros((2, 2, 2), np.uint8)
    assert agreement_rows({"unet": empty, "attunet": empty})[0].dice == (1.0, 1.0, 1.0)
    assert agreement_rows({"unet": empty}) == []
    [row] = agreement_rows({"unet": empty}, {"unet": {"dice_WT": 0.0, "dice_TC": 1.0, "dice_ET": 1.0}})
    assert row.comparison == "UNet vs ground truth" and row.dice == (0.0, 1.0, 1.0)
    assert region_dice(empty, np.full((2, 2, 2), 2, np.uint8)) == (0.0, 1.0, 1.0)


def test_the_module_dice_needs_no_torch():
    import ast

    tree = ast.parse((slicer_module.HELPERS_DIR / "agreement.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.startswith("BraTSXAILib") or m in ("torch", "monai")}


def test_brats_2023_enhancing_label_3_is_enhancing_too():
    a = label_map(slice(0, 0), slice(0, 0), slice(0, 4))
    b = a.copy()
    b[b == 4] = 3
    assert agreement_rows({"unet": a, "resunet": b})[0].dice == (1.0, 1.0, 1.0)


def test_different_grids_are_refused():
    with pytest.raises(ValueError, match="shapes"):
        agreement_rows({"unet": np.zeros((2, 2, 2)), "resunet": np.zeros((2, 2, 3))})
