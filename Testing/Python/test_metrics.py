"""Metrics against hand-computed cases, including empty regions and anisotropic spacing."""
import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from BraTSXAILib.metrics import confusion, dice, hd95, jaccard, region_metrics, voxel_scores


def masks(prediction, truth):
    return np.array(prediction, bool), np.array(truth, bool)


def test_overlap_scores_by_hand():
    prediction, truth = masks([1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 0, 0])  # tp 2, fp 1, fn 1, tn 2
    assert confusion(prediction, truth) == (2, 1, 1, 2)
    assert dice(prediction, truth) == pytest.approx(4 / 6)
    assert jaccard(prediction, truth) == pytest.approx(2 / 4)
    assert voxel_scores(prediction, truth) == pytest.approx(
        {"accuracy": 4 / 6, "precision": 2 / 3, "recall": 2 / 3, "f1": 4 / 6}
    )


def test_empty_regions_follow_the_documented_rule():
    empty = np.zeros(5, bool)
    some = np.array([0, 1, 0, 0, 0], bool)
    assert dice(empty, empty) == jaccard(empty, empty) == 1.0
    assert voxel_scores(empty, empty) == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert dice(empty, some) == dice(some, empty) == 0.0
    assert voxel_scores(empty, some)["precision"] == 0.0 and voxel_scores(some, empty)["recall"] == 0.0


def single_voxel(shape, index):
    mask = np.zeros(shape, bool)
    mask[index] = True
    return mask


@pytest.mark.parametrize("spacing, expected", [((1, 1, 2.5), 7.5), ((2.5, 1, 1), 3.0), ((1, 2, 1), 3.0)])
def test_hd95_uses_spacing_along_the_right_axis(spacing, expected):
    a, b = single_voxel((4, 4, 6), (1, 1, 1)), single_voxel((4, 4, 6), (1, 1, 4))
    assert hd95(a, b, spacing) == pytest.approx(expected)


def brute_force_hd95(a, b, spacing):
    """Reference: surface voxels (mask minus its erosion), all pairwise mm distances, 95th percentiles."""
    surfaces = [np.argwhere(m & ~binary_erosion(m)) * np.asarray(spacing) for m in (a, b)]
    distances = np.linalg.norm(surfaces[0][:, None] - surfaces[1][None], axis=-1)
    return max(np.percentile(distances.min(1), 95), np.percentile(distances.min(0), 95))


def test_hd95_of_shifted_blocks_matches_brute_force():
    a = np.zeros((12, 10, 9), bool)
    b = np.zeros_like(a)
    a[2:7, 2:6, 1:5] = True
    b[4:10, 3:7, 2:8] = True
    spacing = (2.0, 0.7, 1.3)
    assert hd95(a, b, spacing) == pytest.approx(brute_force_hd95(a, b, spacing), rel=1e-5)
    assert hd95(a, a, spacing) == 0.0


def test_hd95_empty_regions():
    empty, voxel = np.zeros((10, 20, 5), bool), single_voxel((10, 20, 5), (3, 3, 3))
    assert hd95(empty, empty) == 0.0
    diagonal = np.sqrt((10 * 2) ** 2 + 20**2 + 5**2)
    assert hd95(empty, voxel, (2, 1, 1)) == pytest.approx(diagonal)
    assert hd95(voxel, empty, (2, 1, 1)) == pytest.approx(diagonal)


def test_region_metrics_on_label_maps():
    truth = np.zeros((6, 6, 6), np.uint8)
    truth[1:5, 1:5, 1:5] = 2
    truth[2:4, 2:4, 2:4] = 4
    prediction = truth.copy()
    prediction[2:4, 2:4, 2:4] = 1  # enhancing called necrotic: TC still right, ET missed
    scores = region_metrics(prediction, truth)
    assert scores["dice_WT"] == scores["dice_TC"] == 1.0
    assert scores["dice_ET"] == 0.0 and scores["recall_ET"] == 0.0
    assert scores["hd95_WT"] == 0.0
    assert scores["hd95_ET"] == pytest.approx(np.sqrt(3 * 36))


def test_hd95_of_a_one_sided_empty_region_on_the_brats_grid_is_its_diagonal():
    empty, voxel = np.zeros((155, 240, 240), bool), single_voxel((155, 240, 240), (70, 120, 120))
    assert hd95(empty, voxel) == pytest.approx(373.13, abs=0.005)


def test_region_metrics_carry_the_voxel_counts_for_pooling():
    truth = np.zeros((4, 4, 4), np.uint8)
    truth[0, 0, :2] = 4  # 2 ET voxels
    prediction = np.zeros_like(truth)
    prediction[0, 0, 1:3] = 4  # 1 hit, 1 false positive, 1 miss
    scores = region_metrics(prediction, truth, with_hd95=False)
    for region in ("WT", "TC", "ET"):
        assert [scores[f"{name}_{region}"] for name in ("tp", "fp", "fn", "tn")] == [1, 1, 1, 61]


@pytest.mark.parametrize("seed", range(4))
def test_hd95_is_monais_definition_on_irregular_masks_touching_the_border(seed):
    import torch
    from monai.metrics import compute_hausdorff_distance
    from scipy.ndimage import binary_dilation

    rng = np.random.default_rng(seed)
    prediction = binary_dilation(rng.random((30, 40, 35)) > 0.998, iterations=3)
    truth = binary_dilation(rng.random((30, 40, 35)) > 0.998, iterations=2)
    prediction[:4, :9, :3] = True  # a piece on the array's border: the bounding-box crop must not move it
    spacing = (1.0, 1.5, 2.0)
    expected = compute_hausdorff_distance(torch.from_numpy(prediction)[None, None],
                                          torch.from_numpy(truth)[None, None], percentile=95,
                                          spacing=list(spacing)).item()
    assert hd95(prediction, truth, spacing) == pytest.approx(expected, rel=1e-6)
