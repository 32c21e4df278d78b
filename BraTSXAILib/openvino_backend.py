"""Inference through OpenVINO: the same networks, converted once per weights file, about twice as fast on a CPU.

OpenVINO runs the passes that need no gradients (segmentation, test-time flips, ensemble members, modality
occlusion); Grad-CAM and attention maps stay on PyTorch. A network is converted with dynamic spatial sizes from its
`forward_padded` (the input is padded to a multiple of 16 before it reaches OpenVINO), so one converted file serves
every case. It is saved in the user cache under the weights' sha256 with a record of its own files' sha256 and of
the model's header (architecture, width, spacing, normalisation, patch size); a cached file that does not match its
record is converted again, never used. A run from the cache needs neither torch nor the weights file's contents
(only its sha256, checked against the registry): `cached_graph`, `weights.model_info`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .choices import BACKENDS
from .errors import InputError
from .inference import Device, device_kind
from .shapes import pad_array

if TYPE_CHECKING:
    import torch

CACHE_ENV = "BRATSXAI_OPENVINO_CACHE"
FORMAT = "dynamic-spatial-16/3"  # the shape policy, conversion recipe and record layout of every cached file
PRECISION_HINTS = {"float32": "f32", "bf16": "bf16"}
INSTALL_HINT = "pip install 'brats-xai[openvino]' (or choose --backend torch)"


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def resolve_backend(name: str, device: Device) -> str:
    """`auto` is OpenVINO on a CPU where it is installed, else PyTorch; asking for OpenVINO without it is an error."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}", f"choose one of {', '.join(BACKENDS)}")
    on_cpu = device_kind(device) == "cpu"
    if name == "openvino":
        if not on_cpu:
            raise InputError("the OpenVINO backend runs on the CPU only", "use --backend torch with a CUDA device")
        if not openvino_installed():
            raise InputError("OpenVINO is not installed", INSTALL_HINT)
        return "openvino"
    return "openvino" if name == "auto" and on_cpu and openvino_installed() else "torch"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "brats-xai" / "openvino").expanduser()


def cache_key(sha256: str, architecture: str, width: int) -> str:
    """The cache folder of one weights file's conversion."""
    return f"{sha256[:32]}-{architecture}-w{width}"


def key_of_file(sha256: str) -> str | None:
    """The cache key of the one conversion of these weights bytes, whatever network they hold (for a file given by
    path, whose architecture and width are known only from inside it)."""
    keys = [folder.name for folder in cache_dir().glob(f"{sha256[:32]}-*") if folder.is_dir()]
    return keys[0] if len(keys) == 1 else None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record(key: str) -> dict | None:
    """The record of the cached graph for `key` when its files are complete and match it."""
    folder = cache_dir() / key
    try:
        record = json.loads((folder / "record.json").read_text())
        intact = all(_digest(folder / name) == digest for name, digest in record["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return record if intact and record.get("format") == FORMAT and isinstance(record.get("model"), dict) else None


def cached_graph(key: str) -> tuple[Path, dict] | None:
    """An intact cached graph for `key` and the model header saved with it (None when there is none)."""
    record = _record(key) if openvino_installed() else None
    return (cache_dir() / key / "model.xml", record["model"]) if record else None


def _convert(network, key: str, header: dict) -> Path:
    """Convert and save under a temporary folder, renamed into place only when every file is written."""
    from .openvino_export import export

    final = cache_dir() / key
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        export(network, scratch / "model.xml")
        files = {name: _digest(scratch / name) for name in ("model.xml", "model.bin")}
        (scratch / "record.json").write_text(json.dumps({"format": FORMAT, "files": files, "model": header}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(scratch, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final / "model.xml"


def compile_network(key: str, precision: str, width: int, network: Callable[[], object],
                    header: dict | None = None, graph: Path | None = None) -> CompiledNetwork:
    """The graph for `key` compiled for `precision`: `graph` when the caller already found it intact
    (`cached_graph`), else the cached one, else converted first from `network()` (called only then: it may load
    torch and the weights) and cached with `header`."""
    if precision not in PRECISION_HINTS:
        raise InputError(f"OpenVINO cannot run in {precision}", "choose --precision float32, bf16 or auto")
    if graph is None:
        graph = cache_dir() / key / "model.xml" if _record(key) else _convert(network(), key, header or {})
    return CompiledNetwork(graph, precision, width)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)  # no overflow for any logit


class CompiledNetwork:
    """A converted network compiled by OpenVINO for one precision: numpy in, numpy out (`probabilities`), or called
    like the PyTorch network on a (1, 4, z, y, x) tensor batch (the sliding window's patches)."""

    def __init__(self, path: Path, precision: str, width: int):
        import openvino

        self.width = width
        self.compiled = openvino.Core().compile_model(str(path), "CPU",
                                                      {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]})
        self.request = self.compiled.create_infer_request()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        padded, crop = pad_array(np.ascontiguousarray(batch, dtype=np.float32))
        return np.array(self.request.infer([padded])[0][crop])

    def probabilities(self, array: np.ndarray) -> np.ndarray:
        """Sigmoid probabilities (3, z, y, x) of one preprocessed case (4, z, y, x)."""
        return _sigmoid(self.logits(array[None])[0])

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.logits(batch.float().numpy()))

    def release(self) -> None:
        """Free the buffers of the last pass (OpenVINO keeps them for the next one: ~250 MB per network and case)."""
        self.compiled.release_memory()
