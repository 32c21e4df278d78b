"""Inference time and peak memory of the three networks beside MONAI's BasicUNet of the same widths.

    python Testing/Benchmarks/benchmark_inference.py [--shape 80x96x80] [--width 16] [--repeats 3] [--device cpu]
    python Testing/Benchmarks/benchmark_inference.py --shape 100x170x170 --width 24   # the study's crop

Every network runs through `BraTSXAILib.inference.predict` (whole volume, the product's code path) on the same
random 1×4×D×H×W input, with each backend (PyTorch, and OpenVINO where it is installed; on CUDA PyTorch only)
in float32 and in bf16 (PyTorch: bf16 autocast with channels-last memory; OpenVINO: its bf16 precision hint).
BasicUNet gets features (w, 2w, 4w, 8w, 8w, w): the same channels per level and the same four 2× downsamplings,
and runs on PyTorch. Each measurement runs in its own process, so its peak memory is its own: on CPU the
increase of the process's peak resident set size (VmHWM) over its size just before the first pass; on CUDA
torch's peak allocation. Each process reuses freed memory as `brats-xai` does (BraTSXAILib.memory). Seconds are
the median of the repeats after one warm-up pass. `time×` is the ratio to BasicUNet on PyTorch in float32 (the
peer), `same×` to BasicUNet on PyTorch at the row's precision. The default shape is the bundled models' input (a
brain box at 2 mm). A measurement, not a test: numbers depend on the machine (bf16 is emulated, hence slow, on
CPUs without AVX512_BF16/AMX).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

NETWORKS = ("unet", "resunet", "attunet")
PEER = "basicunet"
PRECISIONS = ("float32", "bf16")


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def build_network(network: str, width: int):
    """One of our networks, or the peer (MONAI's BasicUNet with features w, 2w, 4w, 8w, 8w, w)."""
    if network == PEER:
        from monai.networks.nets import BasicUNet

        model = BasicUNet(spatial_dims=3, in_channels=4, out_channels=3,
                          features=(width, 2 * width, 4 * width, 8 * width, 8 * width, width))
        model.width = width  # what predict() reads to estimate memory
        return model
    from BraTSXAILib.models import build_model

    return build_model(network, width)


def _runner(model, network: str, backend: str, precision: str):
    if backend == "torch":
        return model
    import tempfile

    from BraTSXAILib import openvino_backend

    os.environ.setdefault(openvino_backend.CACHE_ENV, tempfile.mkdtemp(prefix="benchmark-openvino-"))
    return openvino_backend.compile_network(f"benchmark-{network}-w{model.width}", precision, model.width,
                                            lambda: model)


def measure(network: str, backend: str, precision: str, shape: tuple[int, ...], width: int, repeats: int,
            device: str) -> dict:
    """One network, backend and precision, in this process."""
    import numpy as np
    import torch

    from BraTSXAILib.inference import predict

    torch.manual_seed(0)
    model = build_network(network, width).eval()
    array = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
    on_cuda = device == "cuda"
    if on_cuda:
        model = model.cuda()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _proc_status_kib("VmRSS") * 1024
    runner = _runner(model, network, backend, precision)
    seconds = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        predict(runner, array, device, precision, sliding_window=False)
        if on_cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if on_cuda else _proc_status_kib("VmHWM") * 1024
    parameters = sum(p.numel() for p in model.parameters())
    return {"seconds": statistics.median(seconds[1:]), "peak_mib": (peak - before) / 2**20, "parameters": parameters}


def _child(arguments: argparse.Namespace, network: str, backend: str, precision: str) -> dict:
    command = [sys.executable, __file__, "--one", network, backend, precision, "--shape", arguments.shape,
               "--width", str(arguments.width), "--repeats", str(arguments.repeats), "--device", arguments.device]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _machine(device: str) -> str:
    import torch

    from BraTSXAILib.inference import cpu_has_native_bf16

    if device == "cuda":
        return f"CUDA {torch.cuda.get_device_name()} | torch {torch.__version__}"
    return (f"CPU {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}, "
            f"{torch.get_num_threads()} threads | torch {torch.__version__}")


def _backends(device: str) -> list[str]:
    from BraTSXAILib.openvino_backend import openvino_installed

    return ["torch"] + (["openvino"] if device == "cpu" and openvino_installed() else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="80x96x80", help="input D×H×W (default 80x96x80, the bundled models')")
    parser.add_argument("--width", type=int, default=16, help="base width of every network (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes after one warm-up (default 3)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--one", nargs=3, metavar=("NETWORK", "BACKEND", "PRECISION"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    shape = tuple(int(size) for size in arguments.shape.lower().split("x"))
    if arguments.one:
        from BraTSXAILib.memory import reuse_freed_memory

        reuse_freed_memory()  # every measurement, the peer's too, uses memory as the command line does
        print(json.dumps(measure(*arguments.one, shape, arguments.width, arguments.repeats, arguments.device)))
        return
    print(f"input 1×4×{'×'.join(map(str, shape))}, width {arguments.width}, {_machine(arguments.device)}")
    peers = {precision: _child(arguments, PEER, "torch", precision) for precision in PRECISIONS}
    print(f"{'network':<10} {'backend':<9} {'precision':<9} {'params':>9} {'seconds':>8} {'peak MiB':>9} "
          f"{'time×':>6} {'same×':>6} {'mem×':>6}")
    rows = [(PEER, "torch", precision, peers[precision]) for precision in PRECISIONS]
    rows += [(network, backend, precision, _child(arguments, network, backend, precision))
             for network in NETWORKS for backend in _backends(arguments.device) for precision in PRECISIONS]
    for network, backend, precision, row in rows:
        peer, same = peers["float32"], peers[precision]
        print(f"{network:<10} {backend:<9} {precision:<9} {row['parameters']:>9,} {row['seconds']:>8.3f} "
              f"{row['peak_mib']:>9.1f} {row['seconds'] / peer['seconds']:>6.2f} "
              f"{row['seconds'] / same['seconds']:>6.2f} {row['peak_mib'] / max(peer['peak_mib'], 1e-9):>6.2f}")


if __name__ == "__main__":
    main()
