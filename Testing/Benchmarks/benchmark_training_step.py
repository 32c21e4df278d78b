"""Seconds per training step of the three networks beside MONAI's BasicUNet of the same widths.

    python Testing/Benchmarks/benchmark_training_step.py [--size 64] [--width 16] [--repeats 4] [--threads 1]

One step is what `training.loop.train_epoch` does per patch: forward under the run's autocast, the BCE-Dice loss,
backward and an Adam step, on a random 1×4×S³ patch. Each network is measured in float32, in float32 with
channels-last 3D memory, and with bf16 autocast (what `precision: auto` picks on CPUs with native bf16, e.g.
AVX512_BF16 or AMX; emulated, hence slow, elsewhere). Seconds are the median of the repeats after one warm-up
step; ratios are to BasicUNet (features w, 2w, 4w, 8w, 8w, w) in float32. A measurement, not a test.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from BraTSXAILib.inference import autocast, cpu_has_native_bf16
from BraTSXAILib.losses import BCEDiceLoss
from BraTSXAILib.models import build_model

NETWORKS = ("unet", "resunet", "attunet", "basicunet")
VARIANTS = {"float32": ("float32", False), "float32 channels-last": ("float32", True), "bf16": ("bf16", False)}


def network(name: str, width: int) -> torch.nn.Module:
    if name == "basicunet":
        from monai.networks.nets import BasicUNet

        return BasicUNet(spatial_dims=3, in_channels=4, out_channels=3,
                         features=(width, 2 * width, 4 * width, 8 * width, 8 * width, width))
    return build_model(name, width)


def step_seconds(name: str, variant: str, size: int, width: int, repeats: int) -> float:
    precision, channels_last = VARIANTS[variant]
    memory = torch.channels_last_3d if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = network(name, width).to(memory_format=memory).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = torch.randn(1, 4, size, size, size).contiguous(memory_format=memory)
    target = (torch.rand(1, 3, size, size, size) > 0.9).float()
    loss_function, device, seconds = BCEDiceLoss(), torch.device("cpu"), []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with autocast(device, precision):
            logits = model(x)
        loss_function(logits.float(), target).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="edge of the cubic patch (default 64)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (training runs use 1 each)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"patch 1×4×{args.size}³, width {args.width}, {args.threads} thread(s), native bf16: "
          f"{cpu_has_native_bf16()} | torch {torch.__version__}")
    results = {(n, v): step_seconds(n, v, args.size, args.width, args.repeats) for n in NETWORKS for v in VARIANTS}
    baseline = results[("basicunet", "float32")]
    print(f"{'network':<10} {'variant':<22} {'s/step':>7} {'× BasicUNet f32':>16} {'× own f32':>10}")
    for name in NETWORKS:
        for variant in VARIANTS:
            seconds = results[(name, variant)]
            print(f"{name:<10} {variant:<22} {seconds:>7.2f} {seconds / baseline:>16.2f} "
                  f"{seconds / results[(name, 'float32')]:>10.2f}")


if __name__ == "__main__":
    main()
