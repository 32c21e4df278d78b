"""The whole job on one case: each stage's share of the time and the peak memory, beside a peer network.

    python Testing/Benchmarks/benchmark_case.py [CASE_FOLDER] [--model all] [--explain gradcam,attention,uncertainty]

Runs `segment_case` in this process (start-up excluded: it is printed apart, as the seconds to import the
pipeline) on a real case folder, or without one on a synthetic phantom of BraTS size (240×240×155 at 1 mm), with
the bundled models; prints the manifest's timings per stage with their share, the wall time, the peak resident
memory (VmHWM), and for reference the forward pass of MONAI's BasicUNet with the same widths on the same
preprocessed input, in the same process and precision: `inference <model> ÷ BasicUNet` is the ratio to compare.
A measurement, not a test.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

START = time.perf_counter()
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - START


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def basic_unet_seconds(case_folder: Path, width: int, spacing, precision: str, repeats: int = 3) -> float:
    """Median forward seconds of MONAI's BasicUNet (features w, 2w, 4w, 8w, 8w, w) through `predict`."""
    from monai.networks.nets import BasicUNet

    from BraTSXAILib.inference import predict
    from BraTSXAILib.io import load_case
    from BraTSXAILib.preprocess import preprocess

    array, _ = preprocess(load_case(case_folder), spacing)
    model = BasicUNet(spatial_dims=3, in_channels=4, out_channels=3,
                      features=(width, 2 * width, 4 * width, 8 * width, 8 * width, width))
    model.width = width  # what predict() reads to plan memory
    seconds = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        predict(model, array, "cpu", precision, sliding_window=False)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", type=Path, help="a BraTS case folder (default: a BraTS-sized phantom)")
    parser.add_argument("--model", default="all")
    parser.add_argument("--explain", default="gradcam,attention,uncertainty")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        case = args.case
        if case is None:
            from BraTSXAILib.phantom import write_phantom

            case = write_phantom(Path(scratch) / "in", "BraTS-sized", shape=(155, 240, 240), spacing=(1.0, 1.0, 1.0))
        models = load_models(args.model, "cpu")
        options = SegmentOptions(device="cpu", precision=args.precision,
                                 explain=tuple(e for e in args.explain.split(",") if e))
        started = time.perf_counter()
        manifest = segment_case(case, Path(scratch) / "out", models, options)
        wall = time.perf_counter() - started
        first = models[0].info
        peer = basic_unet_seconds(case, first.width, first.spacing, args.precision)
    print(f"case {manifest['case_id']}: {', '.join(m.info.id for m in models)}; explain {args.explain or 'none'}")
    print(f"import of the pipeline (start-up): {IMPORT_SECONDS:.2f} s; segment_case: {wall:.2f} s wall; "
          f"peak memory {peak_mib():.0f} MiB")
    for stage, seconds in manifest["timings"].items():
        print(f"  {stage:<34} {seconds:7.2f} s  {100 * seconds / wall:5.1f} %")
    print(f"BasicUNet forward (width {first.width}, same input): {peer:.2f} s")
    for stage, seconds in manifest["timings"].items():
        if stage.startswith("inference "):
            print(f"  {stage} ÷ BasicUNet forward: {seconds / peer:.2f}")


if __name__ == "__main__":
    main()
