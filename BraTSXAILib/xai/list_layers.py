"""List every layer a map can be taken at: `python -m BraTSXAILib.xai.list_layers --model unet`.

Prints name, module type, channels, map size for the given input size, and voxels per map cell (stride); presets
are marked. `--model` is an architecture (built untrained at `--width`), a registry id or a weights file.
"""
from __future__ import annotations

import argparse

from ..choices import DEFAULT_LAYER
from ..models import ARCHITECTURES, build_model
from ..weights import load_model
from .layers import PRESETS, candidate_layers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m BraTSXAILib.xai.list_layers", description=__doc__)
    parser.add_argument("--model", default="unet", help="unet, resunet, attunet, a registry id or a .pt file")
    parser.add_argument("--width", type=int, default=24, help="base width when --model is an architecture")
    parser.add_argument("--shape", type=int, nargs=3, default=(128, 128, 128), help="input size z y x")
    parser.add_argument("--all", action="store_true", help="also list modules inside the blocks")
    args = parser.parse_args(argv)
    if args.model in ARCHITECTURES:
        model = build_model(args.model, args.width).eval()
    else:
        model, _ = load_model(args.model, "cpu")
    preset_of = {module: preset for preset, modules in PRESETS.items() for module in modules}
    print(f"{'layer':28s} {'module':22s} {'channels':>8s} {'map size (z, y, x)':>20s} {'stride':>8s}  preset")
    for info in candidate_layers(model, args.shape):
        if not args.all and info.name.count(".") > 1 and info.name not in preset_of:
            continue
        preset = preset_of.get(info.name, "")
        mark = f"{preset}{' (default)' if preset == DEFAULT_LAYER else ''}"
        print(f"{info.name:28s} {info.module:22s} {info.channels:8d} {str(info.shape):>20s} "
              f"{info.stride[0]:8d}  {mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
