"""Choose the default Grad-CAM layer by measurement, not by habit: `python -m BraTSXAILib.xai.choose_layer`.

For each network (small width, on synthetic phantom cases with known truth, BraTSXAILib.phantom) untrained and
after light training, every preset layer is scored by
- pointing game against the ground truth (share of map mass inside the true region: higher is better), and
- triviality (correlation with the logit map where the map is positive: near 1 = it only repeats the prediction).
Rule: among layers whose mean triviality stays below faithfulness.TRIVIAL_THRESHOLD for every trained network,
take the one with the highest mean pointing game (truth) over the trained networks; if no layer qualifies, take
the layer whose highest triviality over the networks is lowest (layers with all-zero maps excluded). The table
(Markdown) goes to stdout and, with --out, to a file. Re-run it with trained weights once they exist:
`--weights ID_OR_FILE ... --data DIR --cases ID ...` scores them on the named labelled BraTS cases (held out from
training; preprocessed as each model expects).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..batch import labelled_sources
from ..io import load_case
from ..labels import REGIONS, labels_to_regions
from ..losses import BCEDiceLoss
from ..models import ARCHITECTURES, build_model
from ..outputs import atomic_write
from ..phantom import make_phantom
from ..preprocess import preprocess, preprocess_label
from ..weights import load_model
from .evaluate import evaluate_explanations
from .faithfulness import TRIVIAL_THRESHOLD
from .layers import PRESETS


def network_cases(cases, spacing=None, normalisation: str = "zscore") -> list[tuple[torch.Tensor, np.ndarray]]:
    """(input (1, 4, z, y, x), label map) of loaded cases, in network space."""
    prepared = []
    for case in cases:
        array, geometry = preprocess(case, spacing, normalisation)
        prepared.append((torch.from_numpy(array)[None], preprocess_label(case, geometry)))
    return prepared


def phantom_cases(seeds: Sequence[int], shape: Sequence[int]) -> list[tuple[torch.Tensor, np.ndarray]]:
    """(input, label map) of phantoms in network space at their own spacing."""
    return network_cases([make_phantom(shape, seed=seed) for seed in seeds])


def labelled_cases(folder: Path, case_ids: Sequence[str]) -> list:
    """The named cases of a folder of BraTS cases, loaded; each must have a ground truth (score held-out cases)."""
    sources, _ = labelled_sources(folder)
    missing = [case_id for case_id in case_ids if case_id not in sources]
    if missing or not case_ids:
        raise InputError(f"no labelled case {', '.join(missing) or '(none named)'} in the folder",
                         "name held-out cases with _seg files, e.g. a run's validation cases", folder)
    return [load_case(sources[case_id]) for case_id in case_ids]


def train_lightly(model: torch.nn.Module, cases: Sequence[tuple[torch.Tensor, np.ndarray]], steps: int,
                  seed: int = 0) -> torch.nn.Module:
    """A few hundred Adam steps of the study's BCE-Dice loss on whole phantom volumes, random flips."""
    generator = torch.Generator().manual_seed(seed)
    targets = [torch.from_numpy(labels_to_regions(labels).astype(np.float32))[None] for _, labels in cases]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_function = BCEDiceLoss()
    model.train()
    for step in range(steps):
        index = step % len(cases)
        x, y = cases[index][0], targets[index]
        flips = [axis for axis in (2, 3, 4) if torch.rand(1, generator=generator) < 0.5]
        if flips:
            x, y = x.flip(flips), y.flip(flips)
        optimiser.zero_grad()
        loss_function(model(x), y).backward()
        optimiser.step()
    return model.eval()


def _mean(values: Sequence[float | None]) -> float:
    """Mean of the defined values (None: an empty map or region); NaN when none is defined."""
    defined = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def score_layers(model: torch.nn.Module, cases: Sequence[tuple[torch.Tensor, np.ndarray]], method: str,
                 ) -> dict[str, dict[str, float]]:
    """Mean pointing game (truth, prediction) and triviality per preset layer over cases and WT/TC/ET."""
    scores = {}
    for layer in PRESETS:
        rows = [row for x, labels in cases for row in evaluate_explanations(
            model, x, REGIONS, method, layer, labels, curves=False, randomisation=False)]
        scores[layer] = {key: _mean([row[key] for row in rows])
                         for key in ("pointing_truth", "pointing_prediction", "triviality")}
    return scores


def choose(trained: dict[str, dict[str, dict[str, float]]]) -> str:
    """The rule in the module docstring, over {network: {layer: scores}} of trained networks."""
    allowed = [layer for layer in PRESETS
               if all(scores[layer]["triviality"] < TRIVIAL_THRESHOLD for scores in trained.values())]
    if not allowed:  # nothing is non-trivial everywhere: the least trivial layer with maps, never the head by habit
        return min(PRESETS, key=lambda layer: _worst_triviality(layer, trained))
    return max(allowed, key=lambda layer: np.nanmean([s[layer]["pointing_truth"] for s in trained.values()]))


def _worst_triviality(layer: str, trained: dict[str, dict[str, dict[str, float]]]) -> float:
    """The highest triviality of a layer over the networks; infinite where some network's maps were all zero."""
    values = [scores[layer]["triviality"] for scores in trained.values()]
    return float("inf") if any(np.isnan(values)) else max(values)


def table(results: dict[tuple[str, str], dict[str, dict[str, float]]]) -> str:
    lines = ["| network | state | layer | pointing game (truth) | pointing game (prediction) | triviality |",
             "| --- | --- | --- | --- | --- | --- |"]
    for (network, state), scores in results.items():
        for layer, values in scores.items():
            lines.append(f"| {network} | {state} | {layer} | {values['pointing_truth']:.3f} | "
                         f"{values['pointing_prediction']:.3f} | {values['triviality']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m BraTSXAILib.xai.choose_layer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=3, default=(48, 56, 48), help="phantom size z y x")
    parser.add_argument("--train-seeds", type=int, default=4, help="phantoms to train on (seeds 0..n-1)")
    parser.add_argument("--test-seeds", type=int, default=2, help="held-out phantoms scored (seeds 100..)")
    parser.add_argument("--steps", type=int, default=150, help="training steps per network")
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--weights", nargs="*", default=(), help="trained weights files or registry ids to score "
                        "instead of training on phantoms")
    parser.add_argument("--data", type=Path, help="with --weights: folder of labelled BraTS cases to score on")
    parser.add_argument("--cases", nargs="*", default=(), help="with --data: ids of held-out cases to score on")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    results, trained = {}, {}
    if args.weights:
        try:
            loaded = labelled_cases(args.data, args.cases) if args.data else None
        except InputError as error:
            print(error.one_line(), file=sys.stderr)
            return 2
        phantoms = None if loaded else phantom_cases(range(100, 100 + args.test_seeds), args.shape)
        for selector in args.weights:
            model, info = load_model(selector, "cpu")
            test = network_cases(loaded, info.spacing, info.normalisation) if loaded else phantoms
            print(f"{info.id}: scoring on {len(test)} cases", file=sys.stderr, flush=True)
            trained[info.id] = results[(info.id, "trained weights")] = score_layers(model, test, args.method)
    else:
        test = phantom_cases(range(100, 100 + args.test_seeds), args.shape)
        train = phantom_cases(range(args.train_seeds), args.shape)
        for architecture in ARCHITECTURES:
            model = build_model(architecture, args.width).eval()
            print(f"{architecture}: scoring untrained", file=sys.stderr, flush=True)
            results[(architecture, "untrained")] = score_layers(model, test, args.method)
            print(f"{architecture}: training {args.steps} steps", file=sys.stderr, flush=True)
            train_lightly(model, train, args.steps)
            trained[architecture] = results[(architecture, f"{args.steps} steps")] = score_layers(
                model, test, args.method)
    text = table(results) + f"\n\nChosen by the rule: `{choose(trained)}`\n"
    print(text)
    if args.out:
        with atomic_write(args.out) as temporary:
            temporary.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
