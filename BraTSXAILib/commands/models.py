"""`brats-xai models`: what the registry knows, and which weights files this computer holds."""
from __future__ import annotations

import argparse
import json

from ..labels import REGIONS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list the registered models and what is installed",
                                   description="List the model registry and whether each weights file is here.")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(run=run)


def _state(entry) -> tuple[str, str | None]:
    from ..weights import find_weights_file, sha256_of

    path = find_weights_file(entry)
    if path is None:
        return "not installed", None
    return ("installed" if sha256_of(path) == entry.sha256 else "damaged (sha256 mismatch)"), str(path)


def validation_line(validation: dict) -> str:
    """`Dice WT 0.61 TC 0.46 ET 0.51, HD95 WT 42 ... mm, forward 0.89 s` from a registry entry's validation scores."""
    parts = []
    metrics = (("dice", "Dice", 2, ""), ("jaccard", "Jaccard", 2, ""), ("hd95", "HD95", 0, " mm"))
    for metric, label, digits, unit in metrics:
        values = [f"{region} {validation[f'{metric}_{region}']:.{digits}f}" for region in REGIONS
                  if isinstance(validation.get(f"{metric}_{region}"), (int, float))]
        if values:
            parts.append(f"{label} {' '.join(values)}{unit}")
    if isinstance(validation.get("seconds"), (int, float)):
        parts.append(f"forward {validation['seconds']:.2f} s")
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from ..models import ARCHITECTURES
    from ..weights import cache_dir, default_entry, load_registry, registry_path

    entries = load_registry()
    defaults = {default_entry(a, entries).id for a in ARCHITECTURES if default_entry(a, entries)}
    rows = []
    for entry in entries:
        state, path = _state(entry)
        rows.append({"id": entry.id, "architecture": entry.architecture, "width": entry.width,
                     "spacing": entry.spacing, "default": entry.id in defaults, "state": state, "path": path,
                     "url": entry.url, "trained_on": entry.trained_on, "validation": entry.validation})
    if args.json:
        print(json.dumps({"registry": str(registry_path()), "cache": str(cache_dir()), "models": rows}, indent=2))
        return 0
    print(f"registry: {registry_path()}\nuser cache: {cache_dir()}")
    if not rows:
        print("No trained weights are registered yet: `segment` and `demo` need them. Train models with the "
              "training/ toolkit and register them, or pass --model path/to/weights.pt.")
        return 0
    for row in rows:
        scores = validation_line(row["validation"])
        spacing = "native" if row["spacing"] is None else "×".join(f"{s:g}" for s in row["spacing"]) + " mm"
        print(f"{'*' if row['default'] else ' '} {row['id']}: {row['architecture']} width {row['width']}, "
              f"spacing {spacing}, {row['state']}" + (f" ({row['path']})" if row["path"] else ""))
        if row["trained_on"] or scores:
            print(f"    trained on {row['trained_on'] or '?'}" + (f"; validation {scores}" if scores else ""))
    print("* = used for --model <architecture> and --model all")
    return 0
