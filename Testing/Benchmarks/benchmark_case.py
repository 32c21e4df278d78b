"""The whole job on one case, as a user runs it: wall time with start-up, each stage's share, peak memory, beside a
peer network.

    python Testing/Benchmarks/benchmark_case.py [CASE_FOLDER] [--backend auto]

Runs `brats-xai segment` in a fresh process twice per job (once to convert the networks for OpenVINO if needed,
then timed): job 1 is one network (labels + probabilities), job 2 the three networks with Grad-CAM, attention and
uncertainty. For each it prints the wall time including start-up, the peak resident memory of the process, and
the manifest's stages with their share. Without a case folder it uses a synthetic phantom of BraTS size
(240×240×155 at 1 mm). For reference, MONAI's BasicUNet with the bundled models' widths runs on the same
preprocessed input in PyTorch float32, and each network's inference stage is printed as a ratio to it.
A measurement, not a test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBS = {"one network (labels + probabilities)": ["--model", "unet"],
        "three networks + Grad-CAM, attention, uncertainty": ["--model", "all", "--explain",
                                                               "gradcam,attention,uncertainty"]}


CHILD = """import resource, sys
from BraTSXAILib.cli import main
status = main(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(status)
"""


def run_segment(case: Path, out: Path, arguments: list[str]) -> tuple[float, float, dict]:
    """Wall seconds of a fresh `brats-xai segment` process, its own peak resident MiB, and its manifest."""
    peak_file = out.parent / "peak-kib"
    command = [sys.executable, "-c", CHILD, str(peak_file), "segment", str(case), "--out", str(out), "--redo",
               *arguments]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    return wall, int(peak_file.read_text()) / 1024, json.loads((out / "manifest.json").read_text())


def brats_sized_phantom(folder: Path) -> Path:
    """A synthetic case of BraTS size (240×240×155 at 1 mm), for machines without real cases."""
    from BraTSXAILib.phantom import write_phantom

    return write_phantom(folder, "BraTS-sized", shape=(155, 240, 240), spacing=(1.0, 1.0, 1.0))


def basic_unet_seconds(case: Path, repeats: int = 3) -> float:
    """Median float32 PyTorch forward seconds of MONAI's BasicUNet (features w, 2w, 4w, 8w, 8w, w), with freed memory
    reused as in the jobs it is compared with (memory.py)."""
    from benchmark_inference import PEER, build_network  # this folder is on sys.path when the script runs

    from BraTSXAILib.inference import predict
    from BraTSXAILib.io import load_case
    from BraTSXAILib.memory import reuse_freed_memory
    from BraTSXAILib.pipeline import load_models
    from BraTSXAILib.preprocess import preprocess

    reuse_freed_memory()
    info = load_models("unet", "cpu")[0].info
    array, _ = preprocess(load_case(case), info.spacing, info.normalisation)
    model = build_network(PEER, info.width)
    seconds = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        predict(model, array, "cpu", "float32", sliding_window=False)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", type=Path, help="a BraTS case folder (default: a BraTS-sized phantom)")
    parser.add_argument("--backend", default="auto", help="passed to segment (default auto)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        case = args.case or brats_sized_phantom(Path(scratch) / "in")
        peer = basic_unet_seconds(case)
        print(f"case {case.name}, backend {args.backend}; BasicUNet float32 PyTorch forward: {peer:.3f} s")
        for job, arguments in JOBS.items():
            out = Path(scratch) / "out"
            run_segment(case, out, [*arguments, "--backend", args.backend])  # conversion, caches warm
            wall, peak, manifest = run_segment(case, out, [*arguments, "--backend", args.backend])
            print(f"\n{job}: {wall:.2f} s wall including start-up, peak {peak:.0f} MiB, "
                  f"backend {manifest['backend']}")
            inside = sum(manifest["timings"].values())
            print(f"  {'start-up, loading models, exit':<36} {wall - inside:7.2f} s  {100 * (wall - inside) / wall:5.1f} %")
            for stage, seconds in manifest["timings"].items():
                ratio = f"  {seconds / peer:.2f}× BasicUNet" if stage.startswith("inference ") else ""
                print(f"  {stage:<36} {seconds:7.2f} s  {100 * seconds / wall:5.1f} %{ratio}")


if __name__ == "__main__":
    main()
