"""Running a network on a preprocessed case: device and precision choice, whole volume or sliding window.

Precision rule (`precision="auto"`):
- CUDA: automatic mixed precision, bfloat16 where the GPU supports it, else float16.
- CPU: bfloat16 autocast with channels-last 3D memory only when the CPU computes bf16 natively (x86 AVX512_BF16 or
  AMX, or an ARM core announcing `bf16`); elsewhere bf16 is emulated and slower than float32, so float32.
`precision="bf16"` forces bf16 autocast anyway (useful for tests); `"float32"` disables autocast.

The whole volume is run at once when its estimated activation memory fits in half of the free memory; otherwise
MONAI's sliding-window inferer blends overlapping patches with a Gaussian weight.

torch is imported only by the functions that run it: a whole-volume pass through OpenVINO on a machine without a
GPU driver never pays its 1.5–2.5 s import (`device_type` tells a CPU-only machine without asking torch).
"""
from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from .choices import DEVICES, PRECISIONS
from .errors import InputError

if TYPE_CHECKING:
    import torch

DEFAULT_ROI = (128, 128, 128)
DEFAULT_OVERLAP = 0.5
ACTIVATION_FACTOR = 14  # peak live feature maps ≈ 13 × width channels at full resolution (measured, no grad)
MEMORY_SHARE = 0.5  # use at most this share of the free memory for one whole-volume pass
FALLBACK_FREE_BYTES = 8 << 30

Progress = Callable[[float], None]
Network = Callable[["torch.Tensor"], "torch.Tensor"]  # a compiled network: (1, 4, z, y, x) -> logits, `.width`
Device = Union[str, "torch.device"]


def device_kind(device: Device) -> str:
    """`cpu` or `cuda` for a device given as a name or a torch.device."""
    return getattr(device, "type", device)


def _gpu_driver_present() -> bool:
    """Whether a CUDA (or ROCm) driver is installed; without one torch cannot see a GPU, so it need not be asked."""
    if platform.system() == "Darwin":
        return False
    if platform.system() == "Windows":
        return (Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvcuda.dll").exists()
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/kfd").exists()


def _cuda_available() -> bool:
    if "torch" not in sys.modules and not _gpu_driver_present():
        return False
    import torch

    return torch.cuda.is_available()


def device_type(name: str = "auto") -> str:
    """`auto` is `cuda` when a GPU is there, else `cpu`; asking for CUDA without one is the user's error."""
    if name not in DEVICES:
        raise InputError(f"unknown device {name!r}", f"choose one of {', '.join(DEVICES)}")
    if name == "cpu":
        return "cpu"
    available = _cuda_available()
    if name == "cuda" and not available:
        raise InputError("no CUDA GPU is available to this torch", "use --device cpu (or auto)")
    return "cuda" if available else "cpu"


def resolve_device(name: str = "auto") -> torch.device:
    """`device_type` as a torch.device."""
    import torch

    return torch.device(device_type(name))


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512_BF16 / AMX on x86, the `bf16` feature on ARM)."""
    flags = _cpu_flags()
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        if flags:  # Linux says it without torch
            return bool({"avx512_bf16", "amx_bf16"} & flags)
        import torch

        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check is not None and check() for check in checks)
    return "bf16" in flags


def resolve_precision(precision: str, device: Device) -> str:
    """`float32`, `bf16` or (CUDA only) `float16`, following the rule in the module docstring."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}", f"choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device_kind(device) == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "float16"
    return "bf16" if cpu_has_native_bf16() else "float32"


def autocast(device: Device, precision: str):
    """Mixed precision for a resolved precision (`float32`, `bf16`, `float16`); inference and training share it."""
    if precision == "float32":
        return nullcontext()
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device_kind(device), dtype=dtype)


def _free_bytes(device: Device) -> int:
    if device_kind(device) == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return FALLBACK_FREE_BYTES


def whole_volume_bytes(shape: Sequence[int], width: int, precision: str = "float32") -> int:
    """Estimated peak activation memory of one pass over a volume of `shape` (z, y, x), padded to 16."""
    voxels = math.prod(math.ceil(size / 16) * 16 for size in shape)
    element = 4 if precision == "float32" else 2
    return voxels * width * element * ACTIVATION_FACTOR


def fits_whole_volume(shape: Sequence[int], width: int, device: Device, precision: str) -> bool:
    return whole_volume_bytes(shape, width, precision) <= MEMORY_SHARE * _free_bytes(device)


def runs_whole_volume(shape: Sequence[int], width: int, device: Device, precision: str,
                      sliding_window: bool | None) -> bool:
    """Whether `predict` runs one pass over the whole volume: forced by `sliding_window`, or decided by memory."""
    return fits_whole_volume(shape, width, device, precision) if sliding_window is None else not sliding_window


def one_float32_pass(shape: Sequence[int], width: int, device: Device, precision: str,
                     sliding_window: bool | None) -> bool:
    """Whether `predict` would run the whole volume at once in float32: then any other float32 whole-volume pass
    of the same network (the Grad-CAM pass) yields the same probabilities, and segmentation can share it."""
    precision = resolve_precision(precision, device)
    return precision == "float32" and runs_whole_volume(shape, width, device, precision, sliding_window)


def window_count(shape: Sequence[int], roi: Sequence[int], overlap: float) -> int:
    """How many patches MONAI's sliding window visits (same scan rule as `sliding_window_inference`)."""
    count = 1
    for size, window in zip(shape, roi):
        if size <= window:
            continue
        step = max(int(window * (1 - overlap)), 1)
        count *= math.ceil((size - window) / step) + 1
    return count


def predict(
    model: torch.nn.Module | Network,
    array: np.ndarray,
    device: Device = "cpu",
    precision: str = "auto",
    *,
    sliding_window: bool | None = None,
    roi_size: Sequence[int] | None = None,
    overlap: float = DEFAULT_OVERLAP,
    progress: Progress | None = None,
) -> np.ndarray:
    """Sigmoid probabilities (3, z, y, x) float32 of WT, TC, ET for a (4, z, y, x) input.

    `model` is a PyTorch network or one compiled for another backend (`openvino_backend.CompiledNetwork`, whose
    precision was fixed when it was compiled; a whole volume through it needs no torch). `sliding_window=None`
    decides by memory; True forces patches of `roi_size` (default 128³; the pipeline passes the model's training
    patch), False forces one pass.
    """
    precision = resolve_precision(precision, device)
    shape = array.shape[1:]
    sliding_window = not runs_whole_volume(shape, model.width, device, precision, sliding_window)
    if not sliding_window and hasattr(model, "probabilities"):
        probabilities = model.probabilities(array)
        if progress is not None:
            progress(1.0)
        return probabilities
    return _torch_predict(model, array, device, precision, sliding_window, tuple(roi_size or DEFAULT_ROI), overlap,
                          progress)


def _torch_predict(model, array: np.ndarray, device: Device, precision: str, sliding_window: bool,
                   roi: tuple[int, ...], overlap: float, progress: Progress | None) -> np.ndarray:
    import torch

    device = torch.device(device)
    if isinstance(model, torch.nn.Module):
        channels_last = device.type == "cpu" and precision == "bf16"
        memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        model = model.to(device=device, memory_format=memory_format).eval()
        network = partial(_torch_logits, model, device, precision, memory_format)
    else:
        network = model
    total = window_count(array.shape[1:], roi, overlap) if sliding_window else 1
    done = 0

    def probabilities(batch: torch.Tensor) -> torch.Tensor:
        nonlocal done
        logits = network(batch)
        done += 1
        if progress is not None:
            progress(min(done / total, 1.0))
        return torch.sigmoid(logits.float())

    inputs = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    with torch.inference_mode():
        if sliding_window:
            from monai.inferers import sliding_window_inference  # MONAI costs 1–2 s to import: only when needed

            output = sliding_window_inference(
                inputs, roi, 1, probabilities, overlap=overlap, mode="gaussian", sw_device=device, device="cpu"
            )
        else:
            output = probabilities(inputs)
    return output[0].float().cpu().numpy()


def _torch_logits(model: torch.nn.Module, device: torch.device, precision: str, memory_format: torch.memory_format,
                  batch: torch.Tensor) -> torch.Tensor:
    with autocast(device, precision):
        return model(batch.to(device).contiguous(memory_format=memory_format))


def check_threshold(threshold: float) -> None:
    if not 0.0 < threshold < 1.0:
        raise InputError(f"threshold {threshold} is outside (0, 1)", "give a probability such as 0.5")
