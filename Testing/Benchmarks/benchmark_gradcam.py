"""The explanation stage against the inference stage it accompanies, per bundled network, on a BraTS-sized case.

    python Testing/Benchmarks/benchmark_gradcam.py [CASE_FOLDER] [--models all] [--backend auto]
                                                  [--precision auto] [--repeats 3]

Both stages are timed end to end, in one process, as `brats-xai segment` runs them (pipeline.py):
- inference stage: the network's pass through the backend (OpenVINO or PyTorch), the probabilities and labels
  mapped onto the reference grid, both written;
- explanation stage: `write_explanations` with the network's measured defaults — Grad-CAM passes (PyTorch, with
  gradients), the attention maps (Attention UNet), every map mapped onto the reference grid and written.
Printed: the median of `--repeats` runs after a warm-up, the inference pass alone, and the ratio
explanation ÷ inference stage (the target: ≤ 1.5). Memory is reused as the command line reuses it
(memory.py) unless `--system-allocator` is given. Without a case folder a phantom of BraTS size
(240×240×155 at 1 mm) is used. A measurement, not a test.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from benchmark_case import brats_sized_phantom  # this folder is on sys.path when the script runs

from BraTSXAILib.inference import predict, resolve_precision
from BraTSXAILib.io import load_case
from BraTSXAILib.memory import reuse_freed_memory
from BraTSXAILib.openvino_backend import resolve_backend
from BraTSXAILib.pipeline import load_models
from BraTSXAILib.postprocess import segment_probabilities
from BraTSXAILib.preprocess import preprocess
from BraTSXAILib.writer import OutputWriter, write_segmentation
from BraTSXAILib.xai.attention import has_attention
from BraTSXAILib.xai.write import write_explanations


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up: kernels, allocator, OpenVINO's first inference
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", type=Path, help="a BraTS case folder (default: a BraTS-sized phantom)")
    parser.add_argument("--models", default="all")
    parser.add_argument("--backend", default="auto", help="of the inference stage (auto, torch, openvino)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--system-allocator", action="store_true",
                        help="leave glibc's defaults (the command line calls memory.reuse_freed_memory)")
    args = parser.parse_args(argv)
    if not args.system_allocator:
        reuse_freed_memory()
    device = torch.device("cpu")
    precision = resolve_precision(args.precision, device)
    backend = resolve_backend(args.backend, device)
    with tempfile.TemporaryDirectory() as scratch:
        case = load_case(args.case or brats_sized_phantom(Path(scratch) / "in"))
        print(f"case {case.case_id}, inference backend {backend}, precision {precision}, "
              f"{torch.get_num_threads()} threads, median of {args.repeats}")
        print(f"  {'network':10s} {'inference pass':>15s} {'inference stage':>16s} {'explanation stage':>18s}"
              f" {'explanation ÷ inference stage':>30s}")
        for loaded in load_models(args.models, "cpu"):
            info = loaded.info
            array, geometry = preprocess(case, info.spacing, info.normalisation)
            runner = loaded.network if backend == "torch" else loaded.openvino(precision)
            writer = OutputWriter(Path(tempfile.mkdtemp(dir=scratch)))
            kinds = ["gradcam", "attention"] if has_attention(loaded.network) else ["gradcam"]

            def infer():
                return predict(runner, array, device, precision, sliding_window=False)

            def inference_stage():
                on_reference, labels = segment_probabilities(infer(), geometry, info.rule)
                write_segmentation(writer, info.architecture, on_reference, labels, geometry, 4, True)
                writer.flush()  # the files are written in the background: the stage ends when they are

            def explanation_stage():
                write_explanations(writer, info.architecture, loaded.network, array, geometry, kinds, device,
                                   rule=info.rule, defaults=info.explain, precision=precision)
                writer.flush()

            passed = median_seconds(infer, args.repeats)
            inferred = median_seconds(inference_stage, args.repeats)
            explained = median_seconds(explanation_stage, args.repeats)
            print(f"  {info.architecture:10s} {passed:13.2f} s {inferred:14.2f} s {explained:16.2f} s"
                  f" {explained / inferred:29.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
