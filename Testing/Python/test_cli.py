"""`brats-xai`: demo, segment, models, the JSON progress contract, and every bad input as exit 2 + one line."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from tiny_models import tiny_registry, write_registry

from BraTSXAILib.cli import main
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.weights import CACHE_ENV, REGISTRY_ENV

SHAPE = (24, 28, 24)


@pytest.fixture(scope="module")
def registry_path(tmp_path_factory):
    return tiny_registry(tmp_path_factory.mktemp("models"), spacing=None)


@pytest.fixture
def registry(registry_path, monkeypatch, tmp_path):
    monkeypatch.setenv(REGISTRY_ENV, str(registry_path))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return registry_path


@pytest.fixture
def case(tmp_path):
    return write_phantom(tmp_path / "in", "Case", shape=SHAPE, seed=1)


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_demo_uses_whatever_the_registry_has(tmp_path, monkeypatch, capsys):
    """Here the registry holds only a ResUNet trained at 2 mm: the demo must run it at that resolution."""
    monkeypatch.setenv(REGISTRY_ENV, str(tiny_registry(tmp_path / "models", ["resunet"], spacing=[2.0, 2.0, 2.0])))
    out = tmp_path / "demo"
    status, stdout, stderr = run_cli(capsys, "demo", "--out", out, "--device", "cpu")
    assert status == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    written = {entry["path"] for entry in manifest["outputs"]}
    assert written == {"resunet_labels.nii.gz", "overview.png"} | {
        f"resunet_{kind}_{r}.nii.gz" for r in ("WT", "TC", "ET") for kind in ("probability", "gradcam")}
    assert any("attention" in warning for warning in manifest["warnings"])  # a ResUNet has no attention gates
    dice = manifest["metrics"]["resunet"]["dice_WT"]
    assert f"resunet: Dice against the phantom's truth WT {dice:.3f}" in stdout
    assert (out / "overview.png").read_bytes()[:4] == b"\x89PNG"
    reference = sitk.ReadImage(manifest["reference"]["path"])
    assert sitk.ReadImage(str(out / "resunet_labels.nii.gz")).GetSize() == reference.GetSize()
    assert sorted(p.name for p in (out / "input" / "BraTSXAI-Phantom").iterdir())[-1].endswith("_t2.nii.gz")


def test_segment_json_progress_contract(registry, case, tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, stderr = run_cli(capsys, "segment", case, "--out", out, "--model", "attunet", "--json-progress",
                                     "--et-label", "3", "--threshold", "0.4")
    assert status == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    fractions = [line["progress"] for line in lines if "progress" in line]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(isinstance(line["stage"], str) for line in lines if "progress" in line)
    assert lines[-1] == {"done": True, "manifest": str(out / "manifest.json"), "skipped": False}
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "attunet_labels.nii.gz")))
    assert set(np.unique(labels)) <= {0, 1, 2, 3}
    status, stdout, _ = run_cli(capsys, "segment", case, "--out", out, "--model", "attunet", "--json-progress",
                                "--et-label", "3", "--threshold", "0.4")
    assert status == 0 and json.loads(stdout.splitlines()[-1])["skipped"] is True
    status, stdout, _ = run_cli(capsys, "segment", case, "--out", out, "--model", "attunet", "--json-progress")
    assert status == 0 and json.loads(stdout.splitlines()[-1])["skipped"] is False  # other options: redone


def test_segment_four_files_and_a_folder_of_cases(registry, tmp_path, capsys):
    one = write_phantom(tmp_path / "cases", "One", naming="2023", shape=SHAPE, seed=2)
    write_phantom(tmp_path / "cases", "Two", shape=SHAPE, seed=3)
    images = sorted(p for p in one.iterdir() if "-seg" not in p.name)
    status, _, stderr = run_cli(capsys, "segment", *images, "--out", tmp_path / "a",
                                "--model", "unet")
    assert status == 0, stderr
    assert (tmp_path / "a" / "unet_labels.nii.gz").is_file()
    status, stdout, _ = run_cli(capsys, "segment", tmp_path / "cases", "--out", tmp_path / "b", "--model", "unet")
    assert status == 0
    assert (tmp_path / "b" / "One" / "manifest.json").is_file() and (tmp_path / "b" / "Two" / "manifest.json").is_file()
    assert "2 cases: 2 segmented, 0 skipped, 0 failed" in stdout


def test_batch_with_a_bad_case_exits_2_after_the_others(registry, tmp_path, capsys):
    for name, seed in (("Good", 1), ("Bad", 2)):
        write_phantom(tmp_path / "cases", name, shape=SHAPE, seed=seed)
    (tmp_path / "cases" / "Bad" / "Bad_t1.nii.gz").write_bytes(b"\x1f\x8b truncated")
    status, stdout, stderr = run_cli(capsys, "segment", tmp_path / "cases", "--out", tmp_path / "out", "--model",
                                     "unet")
    assert status == 2
    assert (tmp_path / "out" / "Good" / "manifest.json").is_file() and not (tmp_path / "out" / "Bad").exists()
    assert "1 segmented, 0 skipped, 1 failed (Bad)" in stdout
    problems = [line for line in stderr.splitlines() if not line.startswith("  warning: ")]  # Good's warnings
    assert len(problems) == 1 and problems[0].startswith("Bad: error:") and "Traceback" not in stderr


def test_models_lists_registry(registry, capsys):
    status, stdout, _ = run_cli(capsys, "models")
    assert status == 0 and "* unet-tiny-w8: unet width 8, spacing native, installed" in stdout
    status, stdout, _ = run_cli(capsys, "models", "--json")
    rows = json.loads(stdout)["models"]
    assert [row["state"] for row in rows] == ["installed"] * 3


def test_validation_scores_are_listed_by_metric():
    from BraTSXAILib.commands.models import validation_line

    scores = {"dice_WT": 0.614, "dice_TC": 0.464, "dice_ET": 0.512, "hd95_WT": 42.4, "seconds": 0.888}
    assert validation_line(scores) == "Dice WT 0.61 TC 0.46 ET 0.51, HD95 WT 42 mm, forward 0.89 s"
    assert validation_line({}) == ""


def test_empty_registry_is_said_plainly(tmp_path, monkeypatch, case, capsys):
    monkeypatch.setenv(REGISTRY_ENV, str(write_registry(tmp_path, [])))
    status, stdout, _ = run_cli(capsys, "models")
    assert status == 0 and "No trained weights are registered yet" in stdout
    for command in (["demo"], ["segment", case, "--model", "unet"]):
        status, stdout, stderr = run_cli(capsys, *command, "--out", tmp_path / "out")
        assert status == 2 and stderr.startswith("error: no trained weights are installed for unet")
        assert not (tmp_path / "out").exists()


# --- every bad input: exit status 2, one line on stderr naming the problem, no traceback, nothing in --out ----

def _write(image, path):
    sitk.WriteImage(image, str(path))


def _modality(case, name):
    return next(case.glob(f"*_{name}.nii.gz"))


def missing_modality(case):
    _modality(case, "flair").unlink()
    return [case], "lacks the flair image"


def duplicate_modality(case):
    (case / "Other_t1.nii.gz").write_bytes(_modality(case, "t1").read_bytes())
    return [case], "more than one t1 image"


def truncated_file(case):
    path = _modality(case, "t2")
    path.write_bytes(path.read_bytes()[:200])
    return [case], "Case_t2.nii.gz"


def image_2d(case):
    _write(sitk.Image(24, 28, sitk.sitkFloat32) + 1, _modality(case, "t1"))
    return [case], "not a 3D volume"


def image_4d(case):
    _write(sitk.GetImageFromArray(np.ones((3, *SHAPE), np.float32)), _modality(case, "t1"))
    return [case], "Case_t1.nii.gz"


def not_finite(case):
    image = sitk.Cast(sitk.ReadImage(str(_modality(case, "flair"))), sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(image)
    array[5, 5, 5] = np.nan
    nan_image = sitk.GetImageFromArray(array)
    nan_image.CopyInformation(image)
    _write(nan_image, _modality(case, "flair"))
    return [case], "NaN"


def all_zero(case):
    image = sitk.ReadImage(str(_modality(case, "t1ce")))
    _write(image * 0, _modality(case, "t1ce"))
    return [case], "empty"


def no_overlap(case):
    image = sitk.ReadImage(str(_modality(case, "t2")))
    image.SetOrigin((500.0, 500.0, 500.0))
    _write(image, _modality(case, "t2"))
    return [case], "does not overlap"


def unknown_model(case):
    return [case, "--model", "vnet"], "unknown model 'vnet'"


BAD_INPUTS = [missing_modality, duplicate_modality, truncated_file, image_2d, image_4d, not_finite, all_zero,
              no_overlap, unknown_model]


@pytest.mark.parametrize("spoil", BAD_INPUTS, ids=lambda f: f.__name__)
def test_bad_input_is_one_line_and_exit_2(spoil, registry, case, tmp_path, capsys):
    arguments, expected = spoil(case)
    out = tmp_path / "out"
    status, stdout, stderr = run_cli(capsys, "segment", "--out", out, "--model", "unet", *arguments)
    assert status == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert expected in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_bad_input_as_a_json_line(registry, case, tmp_path, capsys):
    missing_modality(case)
    status, stdout, stderr = run_cli(capsys, "segment", case, "--out", tmp_path / "out", "--json-progress")
    error = json.loads(stdout.strip().splitlines()[-1])
    assert status == 2 and "lacks the flair image" in error["error"] and error["hint"]


def test_output_folder_in_the_way_or_read_only(registry, case, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, stderr = run_cli(capsys, "segment", case, "--out", blocker / "out", "--model", "unet")
    assert status == 2 and "output folder cannot be created" in stderr and stderr.count("\n") == 1
    if os.geteuid() == 0:
        pytest.skip("root may write into read-only folders")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    status, _, stderr = run_cli(capsys, "segment", case, "--out", locked / "out", "--model", "unet")
    assert status == 2 and "not writable" in stderr and not (locked / "out").exists()


def test_entry_point_process(tmp_path):
    """The real process: `python -m BraTSXAILib`, exit status and stderr as a user sees them."""
    result = subprocess.run([sys.executable, "-m", "BraTSXAILib", "segment", str(tmp_path / "absent"), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: input does not exist") and result.stderr.count("\n") == 1


def test_segment_prints_each_case_warnings_after_its_line(registry, case, tmp_path, capsys):
    shutil.copyfile(case / "Case_t1.nii.gz", case / "Case_t1ce.nii.gz")  # one image given for two sequences
    status, stdout, stderr = run_cli(capsys, "segment", case, "--out", tmp_path / "out", "--model", "unet")
    assert status == 0, stderr
    warnings = json.loads((tmp_path / "out" / "manifest.json").read_text())["warnings"]
    assert any("t1 and t1ce are the same image" in warning for warning in warnings)
    assert [line for line in stderr.splitlines() if line.startswith("  warning: ")] == [
        f"  warning: {warning}" for warning in warnings]
    status, stdout, stderr = run_cli(capsys, "segment", case, "--out", tmp_path / "out", "--model", "unet")
    assert "skipped" in stdout and "warning:" not in stderr  # said once, when the case was segmented
