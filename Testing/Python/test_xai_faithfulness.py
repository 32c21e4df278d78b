"""Faithfulness measures: known answers, planted evidence, and parameter randomisation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from BraTSXAILib.errors import InputError
from BraTSXAILib.models import build_model
from BraTSXAILib.xai import make_cam, make_targets, predicted_masks
from BraTSXAILib.xai.faithfulness import (area_under, cascading_randomisation, deletion_insertion,
                                          energy_pointing_game, rank_correlation, triviality)
from xai_planted import PlantedCubeNet, planted_case


def test_known_answers():
    assert energy_pointing_game(np.array([1.0, 3.0, 0.0]), np.array([False, True, True])) == pytest.approx(0.75)
    assert np.isnan(energy_pointing_game(np.zeros(3), np.ones(3, dtype=bool)))
    assert area_under(np.linspace(0, 1, 11), np.linspace(0, 1, 11)) == pytest.approx(0.5)
    logits = np.linspace(-3, 3, 50)
    assert triviality(np.maximum(2 * logits + 1, 0), logits) == pytest.approx(1.0)  # affine where shown
    assert rank_correlation(np.arange(10.0), np.arange(10.0) ** 3) == pytest.approx(1.0)
    assert np.isnan(rank_correlation(np.ones(5), np.arange(5.0)))


def test_deletion_and_insertion_beat_a_random_ranking_for_planted_evidence():
    model, x = PlantedCubeNet().eval(), planted_case()
    with torch.no_grad():
        targets = make_targets(["ET"], predicted_masks(model(x)))
    maps = make_cam("gradcam", model, "act")(x, targets).maps
    curves = deletion_insertion(model, x, targets, maps, steps=10)["ET"]
    assert len(curves["deletion"]) == len(curves["insertion"]) == 11
    assert curves["deletion"][0] == pytest.approx(curves["insertion"][-1])  # both: the untouched input
    assert curves["deletion_auc"] < curves["deletion_auc_random"] - 0.2
    assert curves["insertion_auc"] > curves["insertion_auc_random"] + 0.1
    with pytest.raises(InputError, match="steps"):
        deletion_insertion(model, x, targets, maps, steps=5)


def test_randomising_parameters_lowers_the_rank_correlation():
    torch.manual_seed(0)
    model = build_model("unet", 8).eval()
    before = [p.clone() for p in model.parameters()]
    x = torch.randn(1, 4, 16, 16, 16)
    mask = np.zeros((16, 16, 16), dtype=bool)
    mask[4:12, 4:12, 4:12] = True
    targets = make_targets(["WT"], {"WT": mask})
    again = make_cam("gradcam", model, "decoder.2")(x, targets).maps["WT"]
    correlations = cascading_randomisation(model, x, targets, "gradcam", "decoder.2", original={"WT": again})
    assert list(correlations) == ["head", "decoder", "encoder"]
    original = make_cam("gradcam", model, "decoder.2")(x, targets).maps["WT"]
    assert rank_correlation(original, again) == pytest.approx(1.0)  # unchanged weights, unchanged map
    assert all(abs(stage["WT"]) < 0.9 for stage in correlations.values())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the copy was randomised
