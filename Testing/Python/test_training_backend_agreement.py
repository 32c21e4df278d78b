"""`training.backend_agreement` runs both backends on every case it finds and says whether any label differs."""
import importlib.util

import pytest

from BraTSXAILib.inference import cpu_has_native_bf16
from BraTSXAILib.phantom import write_phantom
from training import backend_agreement

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="the [openvino] extra")


def test_both_backends_on_every_case_found(tmp_path, capsys):
    for seed in (1, 2):
        write_phantom(tmp_path / "cases", f"Phantom{seed}", shape=(40, 48, 40), seed=seed)
    assert backend_agreement.main([str(tmp_path / "cases"), "--models", "unet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["Phantom1", "unet"], ["Phantom2", "unet"]]
    assert "labels differing 0 of" in lines[0] and "tumour Dice 1.00000" in lines[0]
    assert "0 with any label differing (at most 0 voxels; lowest tumour Dice between the backends 1.00000)" in lines[-1]


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="bf16 is emulated here: OpenVINO may run float32 instead")
def test_bf16_compares_each_backends_own_bf16(tmp_path, capsys):
    write_phantom(tmp_path / "cases", "Phantom1", shape=(40, 48, 40), seed=1)
    backend_agreement.main([str(tmp_path / "cases"), "--models", "unet", "--precision", "bf16"])
    first = capsys.readouterr().out.strip().splitlines()[0]
    difference = float(first.split("max |Δp| ")[1].split()[0])
    assert 1e-5 < difference < 0.5  # bf16 rounding, not float32's 1e-6, and not a different network


def test_a_folder_without_cases_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert backend_agreement.main([str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
