"""Benchmark: Grad-CAM for WT, TC and ET at one layer, against one forward pass and against the naive way.

- forward: one inference forward pass (`torch.inference_mode`), what segmentation itself costs;
- one pass: BraTSXAILib's GradCAM — one forward pass with the graph starting at the layer, then
  `torch.autograd.grad` per class w.r.t. the activation only, parameters frozen;
- naive: per class, a separate forward pass and a full `backward()` (parameter gradients included), reading the
  activation's gradient from a hook, as Grad-CAM code for classifiers usually does.
All three are timed in the same run, interleaved, and the median of the repeats is reported. The pipeline segments
from the Grad-CAM pass when it would run the whole volume in float32, so what Grad-CAM adds to a segmentation is
"one pass" minus "forward"; that is printed too.

    python Testing/Benchmarks/benchmark_gradcam.py --architecture unet --width 16 --shape 96 96 96 \
        --layers bottleneck decoder.2 decoder.1
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from BraTSXAILib.labels import REGIONS
from BraTSXAILib.models import build_model
from BraTSXAILib.xai import GradCAM, make_targets
from BraTSXAILib.xai.layers import resolve_layer


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward(model, x, targets, layer):
    with torch.inference_mode():
        model(x)


def one_pass(model, x, targets, layer):
    GradCAM(model, layer)(x, targets)


def naive(model, x, targets, layer):
    _, module = resolve_layer(model, layer)
    captured = []

    def keep(module, inputs, output):
        output.retain_grad()
        captured.append(output)

    handle = module.register_forward_hook(keep)
    try:
        for target in targets:
            captured.clear()
            model.zero_grad(set_to_none=True)
            target(model(x)).backward()
            activation = captured[0]
            weights = activation.grad.mean(dim=(2, 3, 4), keepdim=True)
            torch.relu((weights * activation.detach()).sum(1))
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="unet", choices=("unet", "resunet", "attunet"))
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--shape", type=int, nargs=3, default=(96, 96, 96))
    parser.add_argument("--layers", nargs="+", default=("bottleneck", "decoder.2", "decoder.1"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(args.architecture, args.width).to(device).eval()
    x = torch.randn(1, 4, *args.shape, device=device)
    masks = {region: np.zeros(args.shape, dtype=bool) for region in REGIONS}
    for index, region in enumerate(REGIONS):  # nested boxes, like WT ⊃ TC ⊃ ET
        masks[region][tuple(slice(n // 4 + 2 * index, 3 * n // 4 - 2 * index) for n in args.shape)] = True
    targets = make_targets(REGIONS, masks, device)
    runs = [("forward", None, forward)] + [(f"{name} {layer}", layer, run) for layer in args.layers
                                           for name, run in (("one pass", one_pass), ("naive", naive))]
    times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for _, layer, run in runs:  # warm-up: allocator, kernels
        run(model, x, targets, layer)
    for _ in range(args.repeats):
        for label, layer, run in runs:
            synchronise(device)
            start = time.perf_counter()
            run(model, x, targets, layer)
            synchronise(device)
            times[label].append(time.perf_counter() - start)
    median = {label: statistics.median(values) for label, values in times.items()}
    print(f"{args.architecture} width {args.width}, input {tuple(args.shape)}, {device}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}; WT, TC and ET")
    for label, value in median.items():
        print(f"  {label:22s} {value:8.3f} s   {value / median['forward']:5.2f} × forward")
    for layer in args.layers:
        one = median[f"one pass {layer}"]
        print(f"  {layer}: one pass is {median[f'naive {layer}'] / one:.2f} × faster than naive; added to a "
              f"segmentation that shares the pass: {(one - median['forward']) / median['forward']:.2f} × forward")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
