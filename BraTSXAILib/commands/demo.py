"""`brats-xai demo`: the whole job offline on a synthetic BraTS-like case whose truth is known.

The phantom (BraTSXAILib.phantom) is written as an ordinary case folder under `<out>/input/`, segmented like any
user case, drawn as `overview.png`, and the Dice of each model against the phantom's truth is printed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..labels import REGIONS
from .options import add_model_options
from .reporting import Reporter
from .segment import options_from

CASE_ID = "BraTSXAI-Phantom"
DESCRIPTION = """Run the whole job offline on a synthetic BraTS-like case with known truth: it is written to
<out>/input/, segmented and explained (Grad-CAM, attention maps; --explain '' for none), drawn as
<out>/overview.png, and each model's Dice against the truth is printed."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="segment a synthetic case offline and draw an overview",
                                   description=DESCRIPTION)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default demo-output)")
    parser.add_argument("--seed", type=int, default=0, help="which phantom (tumour position, size, shape)")
    add_model_options(parser)
    parser.set_defaults(run=run, explain=("gradcam", "attention"))  # the demo shows what the product is for


def run(args: argparse.Namespace) -> int:
    from ..phantom import ADULT_SHAPE, write_phantom
    from ..pipeline import check_output_folder, load_models, segment_case

    options = options_from(args, overview=True)
    check_output_folder(args.out)
    models = load_models(args.model, args.device)
    with Reporter(args.json_progress) as reporter:
        reporter.progress(0.0, "Writing the synthetic case")
        case = write_phantom(args.out / "input", CASE_ID, seed=args.seed, shape=ADULT_SHAPE)
        manifest = segment_case(case, args.out, models, options, reporter.progress)
        path = args.out / "manifest.json"
        reporter.event({"done": True, "manifest": str(path)})
        reporter.say(f"demo outputs in {args.out} (overview: {args.out / 'overview.png'}, manifest: {path})")
        for model, scores in manifest["metrics"].items():
            reporter.say(f"{model}: Dice against the phantom's truth " +
                         ", ".join(f"{region} {scores[f'dice_{region}']:.3f}" for region in REGIONS))
    return 0
