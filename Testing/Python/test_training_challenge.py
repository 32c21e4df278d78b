"""The BraTS challenge's lesion-wise scoring (training/challenge.py) on cases whose answer is known by hand, the
model-card section it feeds, and the one-line errors when the package or an option is missing."""
import math
import sys

import numpy as np
import pytest

from training import evaluate
from training.challenge import PENALTY_MM
from training.evaluate import write_rows
from training.model_card import challenge_section


@pytest.fixture(scope="module")
def evaluator():
    pytest.importorskip("brats_evaluation", reason="needs the optional package: pip install 'brats-xai[brats]'")
    from training.challenge import glioma_evaluator

    return glioma_evaluator()


def _cube(labels: np.ndarray, corner: tuple[int, int, int], side: int, value: int = 4) -> None:
    z, y, x = corner
    labels[z:z + side, y:y + side, x:x + side] = value


def _score(evaluator, prediction, truth, spacing=(1.0, 1.0, 1.0)):
    from training.challenge import challenge_scores

    return challenge_scores(evaluator, prediction, truth, spacing)


def test_one_of_two_lesions_found_scores_half(evaluator):
    """Two separate 6³ enhancing cubes, one predicted exactly: each region has one lesion of Dice 1 and one
    missed (Dice 0, HD95 373 mm), so lesion-wise Dice 0.5 and HD95 186.5 mm, while the found lesion alone is 1."""
    truth = np.zeros((40, 20, 20), np.uint8)
    _cube(truth, (2, 2, 2), 6)
    _cube(truth, (20, 2, 2), 6)
    prediction = np.zeros_like(truth)
    _cube(prediction, (2, 2, 2), 6)
    scores = _score(evaluator, prediction, truth)
    for region in ("WT", "TC", "ET"):
        assert scores[f"lesionwise_dice_{region}"] == pytest.approx(0.5)
        assert scores[f"lesionwise_hd95_{region}"] == pytest.approx(PENALTY_MM / 2)
        assert scores[f"matched_dice_{region}"] == pytest.approx(1.0)
        assert [scores[f"lesions_{c}_{region}"] for c in ("tp", "fn", "fp")] == [1, 1, 0]


def test_a_false_lesion_counts_and_a_missed_speck_does_not(evaluator):
    """Found cube (Dice 1) + a predicted cube with no lesion under it (0) + a missed 3³ = 27 mm³ speck, below the
    50 mm³ lesion size: (1 + 0) / 2. At 2 mm voxels the speck is 216 mm³ and counts: (1 + 0 + 0) / 3."""
    truth = np.zeros((40, 40, 20), np.uint8)
    _cube(truth, (2, 2, 2), 6)
    _cube(truth, (30, 30, 10), 3)
    prediction = np.zeros_like(truth)
    _cube(prediction, (2, 2, 2), 6)
    _cube(prediction, (20, 2, 2), 6)
    one_mm = _score(evaluator, prediction, truth)
    assert one_mm["lesionwise_dice_ET"] == pytest.approx(1 / 2)
    assert one_mm["lesionwise_hd95_ET"] == pytest.approx(PENALTY_MM / 2)
    assert [one_mm[f"lesions_{c}_ET"] for c in ("tp", "fn", "fp")] == [1, 1, 1]
    two_mm = _score(evaluator, prediction, truth, spacing=(2.0, 2.0, 2.0))
    assert two_mm["lesionwise_dice_ET"] == pytest.approx(1 / 3)
    assert two_mm["lesionwise_hd95_ET"] == pytest.approx(2 * PENALTY_MM / 3)


def test_label_3_and_label_4_are_the_same_enhancing_tumour(evaluator):
    """BraTS 2018 truth (ET = 4) against a BraTS 2023-style prediction (ET = 3), edema around it: a perfect match."""
    truth = np.zeros((30, 30, 30), np.uint8)
    _cube(truth, (5, 5, 5), 12, value=2)
    _cube(truth, (8, 8, 8), 6, value=4)
    prediction = np.where(truth == 4, 3, truth).astype(np.uint8)
    scores = _score(evaluator, prediction, truth)
    assert [scores[f"lesionwise_dice_{region}"] for region in ("WT", "TC", "ET")] == pytest.approx([1.0] * 3)


def test_a_region_empty_in_both_scores_one_and_zero(evaluator):
    truth = np.zeros((20, 20, 20), np.uint8)
    _cube(truth, (5, 5, 5), 6, value=2)  # edema only: no core, no enhancing tumour
    scores = _score(evaluator, truth.copy(), truth)
    assert (scores["lesionwise_dice_ET"], scores["lesionwise_hd95_ET"]) == (1.0, 0.0)
    assert math.isnan(scores["matched_dice_ET"])


def test_missing_package_is_one_line_saying_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "brats_evaluation", None)  # import fails as if not installed
    assert evaluate.main(["--data", str(tmp_path), "--models", "x.pt", "--out", str(tmp_path), "--brats-scoring"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "brats-evaluation" in lines[0] and "pip install" in lines[0]


def test_card_without_challenge_scoring_is_refused_in_one_line(tmp_path, capsys):
    assert evaluate.main(["--data", str(tmp_path), "--models", "x.pt", "--out", str(tmp_path),
                          "--card", str(tmp_path / "card.md")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --card writes the challenge's scores of one split — add --brats-scoring, give one --splits"]


def test_card_section_puts_our_scores_beside_the_challenges(tmp_path):
    def row(case, dice, lesionwise, tp, fn, fp):
        return {"model": "m", "case": case, **{f"{key}_{region}": value for region in ("WT", "TC", "ET")
                                               for key, value in (("dice", dice), ("hd95", 2.0),
                                                                  ("lesionwise_dice", lesionwise),
                                                                  ("matched_dice", 1.0),
                                                                  ("lesionwise_hd95", 100.0), ("lesions_tp", tp),
                                                                  ("lesions_fn", fn), ("lesions_fp", fp))}}
    write_rows([row("a", 0.9, 0.5, 1, 1, 0), row("b", 0.7, 1.0, 1, 0, 2)], tmp_path / "m_validation.csv")
    section = challenge_section(tmp_path, ["m"], "validation", "python -m training.evaluate ...")
    assert section.startswith("<!-- brats-scoring:begin -->\nScored on the 2 validation cases by "
                              "`python -m training.evaluate ...`")
    cells = "| `m` | ET | 0.800 ± 0.100 | 0.750 ± 0.250 | 1.000 ± 0.000 | 2.0 ± 0.0 | 100.0 ± 0.0 | 2 / 1 / 2 |"
    assert cells in section
    assert section.rstrip().endswith("<!-- brats-scoring:end -->")
