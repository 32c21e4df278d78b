"""Inference: precision choice, bf16 against float32, sliding-window stitching."""
import numpy as np
import pytest
import torch
from torch import nn

from BraTSXAILib import inference
from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import (
    predict,
    resolve_device,
    resolve_precision,
    window_count,
)
from BraTSXAILib.models import ARCHITECTURES, build_model


class Pointwise(nn.Module):
    """A network whose output at a voxel depends only on that voxel: patches must stitch back exactly."""

    width = 8

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(4, 3, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


def _volume(shape=(32, 32, 32), seed=0):
    return np.random.default_rng(seed).standard_normal((4, *shape)).astype(np.float32)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_bf16_probabilities_match_float32(architecture):
    """bf16 keeps 8 mantissa bits: through ~20 convolutions an untrained network (all outputs near p = 0.5, where
    the sigmoid is steepest) drifts by up to ~2.5e-2 at a handful of voxels, so the bound is on 99.5 % of them."""
    torch.manual_seed(0)
    model = build_model(architecture, width=8)
    array = _volume()
    exact = predict(model, array, "cpu", "float32", sliding_window=False)
    reduced = predict(model, array, "cpu", "bf16", sliding_window=False)
    assert exact.shape == reduced.shape == (3, 32, 32, 32)
    assert exact.dtype == reduced.dtype == np.float32
    difference = np.abs(exact - reduced)
    assert np.mean(difference <= 1e-2) >= 0.995
    assert difference.mean() < 2e-3 and difference.max() < 5e-2
    assert np.mean((exact >= 0.5) == (reduced >= 0.5)) >= 0.99


def test_sliding_window_stitches_patches_exactly():
    torch.manual_seed(0)
    model = Pointwise()
    array = _volume((40, 36, 44))
    whole = predict(model, array, "cpu", "float32", sliding_window=False)
    seen = []
    patched = predict(
        model, array, "cpu", "float32", sliding_window=True, roi_size=(16, 16, 16), overlap=0.5, progress=seen.append
    )
    np.testing.assert_allclose(patched, whole, atol=1e-5)
    expected = torch.sigmoid(model(torch.from_numpy(array)[None]))[0].detach().numpy()
    np.testing.assert_allclose(whole, expected, atol=1e-6)
    assert len(seen) == window_count((40, 36, 44), (16, 16, 16), 0.5) > 1
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_sliding_window_is_chosen_when_memory_is_short(monkeypatch):
    array = _volume((24, 24, 24))
    seen = []
    monkeypatch.setattr(inference, "_free_bytes", lambda device: 1 << 20)
    predict(Pointwise(), array, "cpu", "float32", roi_size=(16, 16, 16), progress=seen.append)
    assert len(seen) == 8
    seen.clear()
    monkeypatch.setattr(inference, "_free_bytes", lambda device: 1 << 40)
    predict(Pointwise(), array, "cpu", "float32", roi_size=(16, 16, 16), progress=seen.append)
    assert seen == [1.0]


def test_precision_rule(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "float32"
    with pytest.raises(InputError):
        resolve_precision("float8", cpu)


def test_native_bf16_detection_on_arm_reads_the_cpu_features(monkeypatch):
    monkeypatch.setattr(inference.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(inference, "_cpu_flags", lambda: {"fp", "asimd", "bf16"})
    assert inference.cpu_has_native_bf16()
    monkeypatch.setattr(inference, "_cpu_flags", lambda: {"fp", "asimd"})
    assert not inference.cpu_has_native_bf16()


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA"):
            resolve_device("cuda")
