"""`python -m training.explain_defaults --data DIR --models ID [ID ...] --split-file SPLIT --out DIR`.

Chooses, per network and region, the Grad-CAM layer and method that `segment` uses by default, on the validation
cases, by this rule over the faithfulness measures (BraTSXAILib.xai.faithfulness):
1. a candidate (layer × method) qualifies for a region if on every case its map is non-empty, and on average it
   puts at least half of its mass inside the true region (energy pointing game) and its triviality (correlation
   with the region's logit map) stays below 0.9;
2. among qualifying candidates, the one with the highest mean pointing game is tried first;
3. it must pass the cascading-randomisation sanity check (Adebayo et al. 2018) on the first `--sanity-cases`
   cases: after the decoder (and then also the encoder) is re-initialised, the map's rank correlation with the
   original falls below 0.5; otherwise the next candidate is tried;
4. if none qualifies and passes, the network has no faithful map for that region: `segment` writes none and says so.
Writes `DIR/explain_defaults.json` (the per-network choice that `training.bundle` stores in the registry entries,
key `explain`) and `DIR/explain_defaults.md` (the docs table).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import resolve_device, resolve_precision
from BraTSXAILib.labels import REGIONS
from BraTSXAILib.outputs import atomic_write, write_json
from BraTSXAILib.preprocess import preprocess, preprocess_label
from BraTSXAILib.xai.evaluate import evaluate_explanations
from BraTSXAILib.xai.faithfulness import TRIVIAL_THRESHOLD, cascading_randomisation
from BraTSXAILib.xai.targets import make_targets, predicted_masks

from .command import run_command
from .evaluate import open_model, readable_cases, validation_parser

LAYERS = ("bottleneck", "decoder.3", "decoder.2", "decoder.1", "decoder.0.conv")
METHODS = ("gradcam", "hirescam", "gradcam++", "layercam")
MIN_POINTING = 0.5
MAX_RANDOMISED_CORRELATION = 0.5


def candidate_scores(candidate, cases: list, precision: str) -> dict[tuple[str, str], dict[str, dict]]:
    """{(layer, method): {region: {pointing, triviality, empty_cases}}} over the network-space cases."""
    info, scores = candidate.info, {}
    spacing = info.spacing or (1.0, 1.0, 1.0)
    for layer in LAYERS:
        for method in METHODS:
            rows = [row for x, label in cases for row in evaluate_explanations(
                candidate.model, x, REGIONS, method, layer, label, curves=False, randomisation=False,
                rule=info.rule, spacing=spacing, precision=precision)]
            scores[(layer, method)] = {region: _summary([r for r in rows if r["class"] == region])
                                       for region in REGIONS}
    return scores


def _summary(rows: list[dict]) -> dict:
    empty = sum(r["pointing_prediction"] is None for r in rows)
    mean = lambda key: float(np.mean([r[key] for r in rows if r[key] is not None])) if len(rows) > empty else 0.0  # noqa: E731
    return {"pointing": mean("pointing_truth"), "triviality": mean("triviality"), "empty_cases": empty}


def sane(candidate, cases: list, layer: str, method: str, region: str, precision: str) -> tuple[bool, float]:
    """The randomisation check of one choice: the highest rank correlation after decoder/encoder randomisation."""
    worst = 0.0
    for x, _ in cases:
        with torch.no_grad():
            logits = candidate.model(x)
        spacing = candidate.info.spacing or (1.0, 1.0, 1.0)
        targets = make_targets([region], predicted_masks(logits, candidate.info.rule, spacing), x.device)
        correlations = cascading_randomisation(candidate.model, x, targets, method, layer, precision=precision)
        values = [abs(correlations[stage][region]) for stage in ("decoder", "encoder")
                  if not np.isnan(correlations[stage][region])]
        worst = max([worst, *values])
    return worst < MAX_RANDOMISED_CORRELATION, worst


def choose(candidate, cases: list, sanity_cases: int, precision: str) -> tuple[dict, dict]:
    """The rule of the module docstring for one network: its choice per region, and every candidate's scores."""
    scores = candidate_scores(candidate, cases, precision)
    choice = {}
    for region in REGIONS:
        ranked = sorted(((s[region]["pointing"], key) for key, s in scores.items()
                         if s[region]["empty_cases"] == 0 and s[region]["pointing"] >= MIN_POINTING
                         and s[region]["triviality"] < TRIVIAL_THRESHOLD), reverse=True)
        choice[region] = {"none": "no layer and method put half of its map inside the true region, non-empty and "
                                  "non-trivial, on the validation cases"}
        for pointing, (layer, method) in ranked:
            passed, correlation = sane(candidate, cases[:sanity_cases], layer, method, region, precision)
            if passed:
                choice[region] = {"layer": layer, "method": method, "pointing": round(pointing, 3),
                                  "triviality": round(scores[(layer, method)][region]["triviality"], 3),
                                  "randomised_correlation": round(correlation, 3)}
                break
            choice[region] = {"none": f"the best maps survive parameter randomisation (ρ {correlation:.2f})"}
    return choice, scores


def table(choices: dict, scores: dict, cases: list[str]) -> str:
    lines = [f"Validation cases ({len(cases)}): {', '.join(cases)}.", "",
             "| network | region | layer | method | pointing game (truth) | triviality | empty cases |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for model, per_candidate in scores.items():
        for (layer, method), regions in per_candidate.items():
            for region in REGIONS:
                s = regions[region]
                mark = " **(default)**" if choices[model][region].get("layer") == layer and \
                    choices[model][region].get("method") == method else ""
                lines.append(f"| `{model}` | {region} | {layer} | {method}{mark} | {s['pointing']:.3f} | "
                             f"{s['triviality']:.3f} | {s['empty_cases']} |")
    lines += ["", "Chosen (`none`: no faithful map; `segment` writes none and says so):", "",
              "| network | WT | TC | ET |", "| --- | --- | --- | --- |"]
    for model, choice in choices.items():
        cells = [f"{c['layer']} {c['method']} (ρ_rand {c['randomised_correlation']:.2f})" if "layer" in c
                 else f"none — {c['none']}" for c in (choice[r] for r in REGIONS)]
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = validation_parser("python -m training.explain_defaults", __doc__.splitlines()[0],
                               "folder for explain_defaults.json and .md", backend=False)  # gradients: PyTorch
    parser.add_argument("--sanity-cases", type=int, default=2, help="cases for the randomisation check")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    candidates = [open_model(selector, device) for selector in args.models]
    loaded = list(readable_cases(args.data, args.split_file, "validation"))
    if not loaded:
        raise InputError("no readable validation case", "fix the cases reported above", args.data)
    choices, scores = {}, {}
    for candidate in candidates:
        cases = []
        for case in loaded:
            array, geometry = preprocess(case, candidate.info.spacing, candidate.info.normalisation)
            cases.append((torch.from_numpy(array)[None].to(device), preprocess_label(case, geometry)))
        choices[candidate.name], scores[candidate.name] = choose(candidate, cases, args.sanity_cases,
                                                                 resolve_precision(args.precision, device))
    write_json({"cases": [c.case_id for c in loaded], "explain": choices}, args.out / "explain_defaults.json")
    with atomic_write(args.out / "explain_defaults.md") as temporary:
        temporary.write_text(table(choices, scores, [c.case_id for c in loaded]))
    return choices


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def finish(choices: dict) -> int:
        print((args.out / "explain_defaults.md").read_text())
        return 0

    return run_command(args, run, finish)


if __name__ == "__main__":
    sys.exit(main())
