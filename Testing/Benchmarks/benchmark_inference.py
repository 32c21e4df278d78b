"""Inference time and peak memory of the three networks beside MONAI's BasicUNet of the same widths.

    python Testing/Benchmarks/benchmark_inference.py [--size 96] [--width 16] [--repeats 3] [--device cpu]

Every network runs through `BraTSXAILib.inference.predict` (whole volume, the product's code path, including
bf16 autocast with channels-last memory) on the same random 1×4×S×S×S input, in float32 and in bf16. BasicUNet
gets features (w, 2w, 4w, 8w, 8w, w): the same channels per level and the same four 2× downsamplings.
Each measurement runs in its own process, so its peak memory is its own: on CPU the increase of the process's
peak resident set size (VmHWM) over its size just before the first pass; on CUDA torch's peak allocation.
Seconds are the median of the repeats after one warm-up pass. Ratios are to BasicUNet at the same precision.
This is a measurement, not a test: numbers depend on the machine (bf16 is emulated, hence slow, on CPUs without
AVX512_BF16/AMX).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

NETWORKS = ("unet", "resunet", "attunet", "basicunet")
PRECISIONS = ("float32", "bf16")


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _build(network: str, width: int):
    if network == "basicunet":
        from monai.networks.nets import BasicUNet

        model = BasicUNet(spatial_dims=3, in_channels=4, out_channels=3,
                          features=(width, 2 * width, 4 * width, 8 * width, 8 * width, width))
        model.width = width  # what predict() reads to estimate memory
        return model
    from BraTSXAILib.models import build_model

    return build_model(network, width)


def measure(network: str, precision: str, size: int, width: int, repeats: int, device: str) -> dict:
    """One network at one precision, in this process."""
    import numpy as np
    import torch

    from BraTSXAILib.inference import predict

    torch.manual_seed(0)
    model = _build(network, width).eval()
    array = np.random.default_rng(0).standard_normal((4, size, size, size)).astype(np.float32)
    on_cuda = device == "cuda"
    if on_cuda:
        model = model.cuda()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _proc_status_kib("VmRSS") * 1024
    seconds = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        predict(model, array, device, precision, sliding_window=False)
        if on_cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if on_cuda else _proc_status_kib("VmHWM") * 1024
    parameters = sum(p.numel() for p in model.parameters())
    return {"network": network, "precision": precision, "seconds": statistics.median(seconds[1:]),
            "peak_mib": (peak - before) / 2**20, "parameters": parameters}


def _child(arguments: argparse.Namespace, network: str, precision: str) -> dict:
    command = [sys.executable, __file__, "--one", network, precision, "--size", str(arguments.size), "--width",
               str(arguments.width), "--repeats", str(arguments.repeats), "--device", arguments.device]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _machine(device: str) -> str:
    import torch

    from BraTSXAILib.inference import cpu_has_native_bf16

    if device == "cuda":
        return f"CUDA {torch.cuda.get_device_name()} | torch {torch.__version__}"
    return (f"CPU {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}, "
            f"{torch.get_num_threads()} threads | torch {torch.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="edge of the cubic input (default 96)")
    parser.add_argument("--width", type=int, default=16, help="base width of every network (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes after one warm-up (default 3)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--one", nargs=2, metavar=("NETWORK", "PRECISION"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one:
        print(json.dumps(measure(*arguments.one, arguments.size, arguments.width, arguments.repeats,
                                 arguments.device)))
        return
    print(f"input 1×4×{arguments.size}³, width {arguments.width}, {_machine(arguments.device)}")
    results = {(n, p): _child(arguments, n, p) for p in PRECISIONS for n in NETWORKS}
    print(f"{'network':<10} {'precision':<9} {'params':>9} {'seconds':>8} {'peak MiB':>9} {'time×':>6} {'mem×':>6}")
    for precision in PRECISIONS:
        baseline = results[("basicunet", precision)]
        for network in NETWORKS:
            row = results[(network, precision)]
            print(f"{network:<10} {precision:<9} {row['parameters']:>9,} {row['seconds']:>8.3f} "
                  f"{row['peak_mib']:>9.1f} {row['seconds'] / baseline['seconds']:>6.2f} "
                  f"{row['peak_mib'] / max(baseline['peak_mib'], 1e-9):>6.2f}")


if __name__ == "__main__":
    main()
