"""Measured faithfulness of explanation maps: does the map point at what the network actually uses?

- Energy pointing game (Wang et al. 2020, Score-CAM): share of the map's mass inside a region.
- Deletion / insertion (Petsiuk et al. 2018): brain voxels ranked by the map are replaced by a baseline
  (blurred input or zeros) step by step (deletion), or restored onto the baseline (insertion); the score is the
  mean sigmoid of the class's logit expression over the class's fixed voxel set. A faithful map makes deletion
  fall faster (lower area) and insertion rise faster (higher area) than a random ranking does.
- Cascading parameter randomisation (Adebayo et al. 2018): Spearman rank correlation of the map after
  re-initialising the head, then also the decoder (with skip transforms), then also bottleneck and encoder,
  against the original map. A map that does not change when the weights it explains are destroyed is an
  edge detector, not an explanation: correlations should fall.
- Triviality: Pearson correlation of the map with the class's logit map where the map is positive. Near 1 the
  map only repeats the prediction (what a map at the 1×1×1 head, or the block right before it, does).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from ..choices import BASELINES, DEFAULT_LAYER, MIN_STEPS
from ..errors import InputError
from .cam import make_cam
from .targets import RegionTarget

BLUR_SIGMA = 5.0  # voxels: removes the tumour's local contrast while keeping the brain's gross intensities
TRIVIAL_THRESHOLD = 0.9
RANDOMISATION_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("head", ("head",)),
    ("decoder", ("decoder", "skips")),
    ("encoder", ("bottleneck", "encoder")),
)


def energy_pointing_game(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Σ map inside `mask` / Σ map; NaN for a map with no mass."""
    saliency = np.asarray(saliency, dtype=np.float64)
    total = saliency.sum()
    return float(saliency[np.asarray(mask, dtype=bool)].sum() / total) if total > 0 else float("nan")


def _correlation(a: np.ndarray, b: np.ndarray, rank: bool) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    if not rank:  # numpy's Pearson: every Grad-CAM job needs it, and scipy.stats costs 0.4–1.3 s to import
        return float(np.corrcoef(a, b)[0, 1])
    from scipy import stats  # only the faithfulness measurements rank

    return float(stats.spearmanr(a, b)[0])


def triviality(saliency: np.ndarray, logit_map: np.ndarray, brain: np.ndarray | None = None) -> float:
    """Pearson correlation of the map with the class's logit map, over the (brain) voxels where the map is > 0.

    Restricted to the map's support because every map is ReLU-ed: a map at the head is max(c·z, 0), at the last
    block before a linear head max(c·(z − b), 0); on its support each is exactly affine in z (score 1), while
    zeros elsewhere would only measure how large the predicted region is. NaN with fewer than two such voxels.
    """
    saliency, logit_map = np.asarray(saliency), np.asarray(logit_map)
    support = saliency > 0 if brain is None else (saliency > 0) & np.asarray(brain, dtype=bool)
    return _correlation(saliency[support], logit_map[support], rank=False)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two maps; NaN when either is constant."""
    return _correlation(a, b, rank=True)


def area_under(fractions: np.ndarray, scores: np.ndarray) -> float:
    """Trapezoidal area under a curve sampled at `fractions` in [0, 1]."""
    fractions, scores = np.asarray(fractions, dtype=float), np.asarray(scores, dtype=float)
    return float(np.sum(0.5 * (scores[1:] + scores[:-1]) * np.diff(fractions)))


def baseline_input(x: torch.Tensor, baseline: str = "blur") -> torch.Tensor:
    """What removed voxels are replaced by: each channel Gaussian-blurred (σ = BLUR_SIGMA voxels), or zeros."""
    if baseline not in BASELINES:
        raise InputError(f"unknown baseline '{baseline}'", f"choose from {', '.join(BASELINES)}")
    if baseline == "zero":
        return torch.zeros_like(x)
    array = x.detach().float().cpu().numpy()
    blurred = np.stack([[ndimage.gaussian_filter(channel, BLUR_SIGMA) for channel in case] for case in array])
    return torch.from_numpy(blurred).to(device=x.device, dtype=x.dtype)


def _ranking(saliency: np.ndarray, brain: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """Flat indices of brain voxels, most salient first; ties broken at random so no axis order leaks in."""
    voxels = np.flatnonzero(brain)
    values = np.asarray(saliency).ravel()[voxels]
    order = np.lexsort((generator.random(voxels.size), -values))
    return voxels[order]


def _scores(model: nn.Module, x: torch.Tensor, targets: Sequence[RegionTarget]) -> list[float]:
    logits = model(x)
    return [float(target.probability(logits)) for target in targets]


def _curves(model: nn.Module, x: torch.Tensor, blank: torch.Tensor, ranking: np.ndarray,
            targets: Sequence[RegionTarget], steps: int, ends: tuple[list[float], list[float]],
            ) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion scores (steps + 1, targets) along one ranking; `ends` = scores of x and of blank."""
    spatial = x.shape[2:]
    counts = np.round(np.linspace(0, ranking.size, steps + 1)).astype(int)
    deletion, insertion = [ends[0]], [ends[1]]
    for count in counts[1:-1]:
        chosen = torch.zeros(int(np.prod(spatial)), dtype=torch.bool)
        chosen[torch.from_numpy(ranking[:count])] = True
        chosen = chosen.reshape(spatial).to(x.device)
        deletion.append(_scores(model, torch.where(chosen, blank, x), targets))
        insertion.append(_scores(model, torch.where(chosen, x, blank), targets))
    deletion.append(ends[1])
    insertion.append(ends[0])
    return np.asarray(deletion), np.asarray(insertion)


def deletion_insertion(model: nn.Module, x: torch.Tensor, targets: Sequence[RegionTarget],
                       saliencies: Mapping[str, np.ndarray], brain: np.ndarray | None = None, steps: int = 10,
                       baseline: str = "blur", seed: int = 0) -> dict[str, dict[str, object]]:
    """Deletion and insertion curves per target, for its map's ranking and for one random ranking.

    Returns {class: {"fractions", "deletion", "insertion", "deletion_random", "insertion_random" (lists),
    "deletion_auc", "insertion_auc", "deletion_auc_random", "insertion_auc_random"}}.
    """
    if steps < MIN_STEPS:
        raise InputError(f"{steps} steps are too few for a deletion/insertion curve", f"use at least {MIN_STEPS}")
    brain = (x[0] != 0).any(0).cpu().numpy() if brain is None else np.asarray(brain, dtype=bool)
    generator = np.random.default_rng(seed)
    blank = baseline_input(x, baseline)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    results: dict[str, dict[str, object]] = {}
    with torch.inference_mode():
        ends = (_scores(model, x, targets), _scores(model, blank, targets))
        random_order = _ranking(np.zeros(brain.shape), brain, generator)  # all tied: a random permutation
        random_deletion, random_insertion = _curves(model, x, blank, random_order, targets, steps, ends)
        for index, target in enumerate(targets):
            ranking = _ranking(saliencies[target.name], brain, generator)
            deletion, insertion = _curves(model, x, blank, ranking, [target], steps,
                                          ([ends[0][index]], [ends[1][index]]))
            curves = {"deletion": deletion[:, 0], "insertion": insertion[:, 0],
                      "deletion_random": random_deletion[:, index], "insertion_random": random_insertion[:, index]}
            results[target.name] = {
                "fractions": fractions.tolist(),
                **{name: curve.tolist() for name, curve in curves.items()},
                "deletion_auc": area_under(fractions, curves["deletion"]),
                "insertion_auc": area_under(fractions, curves["insertion"]),
                "deletion_auc_random": area_under(fractions, curves["deletion_random"]),
                "insertion_auc_random": area_under(fractions, curves["insertion_random"]),
            }
    return results


def randomise(model: nn.Module, prefixes: Sequence[str]) -> None:
    """Re-initialise (in place) every parameterised module whose top-level name is in `prefixes`."""
    for name, module in model.named_modules():
        if name.split(".")[0] in prefixes and callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()


def cascading_randomisation(model: nn.Module, x: torch.Tensor, targets: Sequence[RegionTarget],
                            method: str = "gradcam", layer: str = DEFAULT_LAYER, seed: int = 0,
                            original: Mapping[str, np.ndarray] | None = None, precision: str = "float32",
                            ) -> dict[str, dict[str, float]]:
    """{stage: {class: Spearman ρ(original map, map after randomising up to this stage)}} for head, decoder,
    encoder in turn (cumulative), on a copy of the model; the targets' voxel sets stay fixed."""
    if original is None:
        original = make_cam(method, model, layer, precision)(x, targets).maps
    randomised = copy.deepcopy(model)
    correlations: dict[str, dict[str, float]] = {}
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.manual_seed(seed)
        for stage, prefixes in RANDOMISATION_STAGES:
            randomise(randomised, prefixes)
            maps = make_cam(method, randomised, layer, precision)(x, targets).maps
            correlations[stage] = {name: rank_correlation(original[name], maps[name]) for name in original}
    return correlations
