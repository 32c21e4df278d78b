"""`training.backend_agreement` runs both backends on every case it finds and says whether any label differs."""
import importlib.util

import pytest

from BraTSXAILib.phantom import write_phantom
from training import backend_agreement

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="the [openvino] extra")


def test_both_backends_on_every_case_found(tmp_path, capsys):
    for seed in (1, 2):
        write_phantom(tmp_path / "cases", f"Phantom{seed}", shape=(40, 48, 40), seed=seed)
    assert backend_agreement.main([str(tmp_path / "cases"), "--models", "unet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["Phantom1", "unet"], ["Phantom2", "unet"]]
    assert "labels differing 0 of" in lines[0] and lines[-1].endswith("0 with any label differing")


def test_a_folder_without_cases_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert backend_agreement.main([str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
