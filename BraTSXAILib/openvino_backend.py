"""Inference through OpenVINO: the same networks, converted once per weights file, about twice as fast on a CPU.

OpenVINO runs the passes that need no gradients (segmentation, test-time flips, ensemble members, modality
occlusion); Grad-CAM and attention maps stay on PyTorch. A network is converted with dynamic spatial sizes from its
`forward_padded` (the input is padded to a multiple of 16 before it reaches OpenVINO), so one converted file serves
every case. It is saved in the user cache under the weights' sha256 with a record of its own files' sha256; a
cached file that does not match its record is converted again, never used.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .choices import BACKENDS
from .errors import InputError
from .models.skeleton import IN_CHANNELS, pad_to_multiple

CACHE_ENV = "BRATSXAI_OPENVINO_CACHE"
FORMAT = "dynamic-spatial-16/1"  # the shape policy and conversion recipe, recorded with every cached file
PRECISION_HINTS = {"float32": "f32", "bf16": "bf16"}
INSTALL_HINT = "pip install 'brats-xai[openvino]' (or choose --backend torch)"


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def resolve_backend(name: str, device: torch.device) -> str:
    """`auto` is OpenVINO on a CPU where it is installed, else PyTorch; asking for OpenVINO without it is an error."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}", f"choose one of {', '.join(BACKENDS)}")
    if name == "openvino":
        if device.type != "cpu":
            raise InputError("the OpenVINO backend runs on the CPU only", "use --backend torch with a CUDA device")
        if not openvino_installed():
            raise InputError("OpenVINO is not installed", INSTALL_HINT)
        return "openvino"
    return "openvino" if name == "auto" and device.type == "cpu" and openvino_installed() else "torch"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "brats-xai" / "openvino").expanduser()


class _Padded(nn.Module):
    """The network without its own padding, so that the exported graph keeps every spatial size dynamic."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.forward_padded(x)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached(key: str) -> Path | None:
    """The cached graph for `key` when its files are complete and match their record."""
    folder = cache_dir() / key
    try:
        record = json.loads((folder / "record.json").read_text())
        intact = all(_digest(folder / name) == digest for name, digest in record["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return folder / "model.xml" if intact and record.get("format") == FORMAT else None


def _convert(network: nn.Module, key: str) -> Path:
    """Convert and save under a temporary folder, renamed into place only when every file is written."""
    import openvino

    example = torch.zeros(1, IN_CHANNELS, 16, 16, 16)
    graph = openvino.convert_model(_Padded(network).eval(), example_input=example,
                                   input=[openvino.PartialShape([1, IN_CHANNELS, -1, -1, -1])])
    final = cache_dir() / key
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        openvino.save_model(graph, str(scratch / "model.xml"), compress_to_fp16=False)
        files = {name: _digest(scratch / name) for name in ("model.xml", "model.bin")}
        (scratch / "record.json").write_text(json.dumps({"format": FORMAT, "files": files}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(scratch, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final / "model.xml"


class CompiledNetwork:
    """A network compiled by OpenVINO for one precision; called like the PyTorch network on a (1, 4, z, y, x) batch."""

    def __init__(self, network: nn.Module, sha256: str, precision: str):
        import openvino

        if precision not in PRECISION_HINTS:
            raise InputError(f"OpenVINO cannot run in {precision}", "choose --precision float32, bf16 or auto")
        self.width = network.width
        key = f"{sha256[:32]}-{type(network).__name__}-w{network.width}"
        path = _cached(key) or _convert(network, key)
        self.compiled = openvino.Core().compile_model(str(path), "CPU",
                                                      {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]})
        self.request = self.compiled.create_infer_request()

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        padded, crop = pad_to_multiple(batch.float())
        logits = self.request.infer([padded.numpy()])[0]
        return torch.from_numpy(np.array(logits[tuple(crop)]))

    def release(self) -> None:
        """Free the buffers of the last pass (OpenVINO keeps them for the next one: ~250 MB per network and case)."""
        self.compiled.release_memory()
