"""`brats-xai segment`: one case, several, or a folder of cases, with one model or all three."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..choices import MODALITIES
from ..labels import REGIONS
from .options import add_model_options
from .reporting import Reporter

DESCRIPTION = """Segment brain tumours in BraTS MRI. INPUT is a case folder (<id>_t1/_t1ce/_t2/_flair files,
or 2023 names -t1n/-t1c/-t2w/-t2f), several case folders, a folder of case folders, or the four image files.
With one case the outputs go into --out; with several, into --out/<case id>/. Each folder gets labels,
probability maps and manifest.json. Finished cases are skipped when run again, unless --redo."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("segment", help="segment one or more cases", description=DESCRIPTION)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="case folder(s), folder of cases, or 4 files")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    add_model_options(parser)
    parser.add_argument("--reference", choices=MODALITIES, default="t1ce",
                        help="modality whose grid every output lies on (default t1ce)")
    parser.add_argument("--overview", action="store_true", help="also write overview.png (needs matplotlib)")
    parser.add_argument("--redo", action="store_true", help="segment cases again even if their outputs are complete")
    parser.set_defaults(run=run)


def options_from(args: argparse.Namespace, overview: bool):
    """The pipeline's SegmentOptions from the parsed arguments (checked)."""
    from ..pipeline import SegmentOptions

    options = SegmentOptions(device=args.device, precision=args.precision, backend=args.backend,
                             threshold=args.threshold,
                             et_label=args.et_label, reference=getattr(args, "reference", "t1ce"),
                             explain=args.explain, sliding_window=True if args.window else None, overview=overview,
                             flips=args.flips, layer=args.layer, method=args.method)
    options.check()
    return options


def _dice_text(manifest: dict) -> str:
    """Dice per model when the case has a truth, and the primary result's expected Dice when it was asked for."""
    parts = [f"{model} Dice " + " ".join(f"{region} {scores[f'dice_{region}']:.3f}" for region in REGIONS)
             for model, scores in manifest.get("metrics", {}).items()]
    if manifest.get("quality"):
        parts.append(f"{manifest['primary']} expected Dice " + " ".join(
            f"{region} {manifest['quality'][region]['expected_dice']:.2f}" for region in REGIONS))
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    from ..batch import find_cases, segment_cases
    from ..pipeline import check_output_folder, load_models

    options = options_from(args, args.overview)
    cases = find_cases(args.inputs)
    check_output_folder(args.out)
    models = load_models(args.model, args.device)
    several = len(cases) > 1
    with Reporter(args.json_progress) as reporter:

        def announce(result) -> None:
            case = {"case": result.case_id} if several else {}
            if result.status == "failed":
                reporter.event({**case, **result.error.as_json()})
                reporter.problem(f"{result.case_id}: {result.error.one_line()}")
                return
            skipped = result.status == "skipped"
            reporter.event({**case, "done": True, "manifest": str(result.manifest), "skipped": skipped})
            what = "already done, skipped (--redo to run again)" if skipped else f"written to {result.manifest.parent}"
            manifest = json.loads(result.manifest.read_text())
            dice = _dice_text(manifest)
            reporter.say(f"{result.case_id}: {what}" + (f" — {dice}" if dice else ""))
            for warning in [] if skipped else manifest.get("warnings", []):  # also in the manifest, for Slicer
                reporter.problem(f"  warning: {warning}")

        results = segment_cases(cases, args.out, models, options, args.redo, reporter.progress, announce)
        failed = [r for r in results if r.status == "failed"]
        if several:
            counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
            reporter.event({"summary": {**counts, "failed_cases": [r.case_id for r in failed]}})
            reporter.say(f"{len(results)} cases: {counts['done']} segmented, {counts['skipped']} skipped, "
                         f"{counts['failed']} failed" + (f" ({', '.join(r.case_id for r in failed)})" if failed else ""))
    if not failed:
        return 0
    return 1 if any(r.unexpected for r in failed) else 2
