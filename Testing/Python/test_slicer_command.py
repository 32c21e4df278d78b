"""The command line the module builds is one the real `brats-xai` parser accepts, with the user's choices."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import slicer_module  # noqa: F401
from BraTSXAIHelpers.command import (
    DEVICE_CHOICES,
    EXPLANATIONS,
    LAYER_CHOICES,
    MEASURED,
    METHOD_CHOICES,
    MODEL_CHOICES,
    RunOptions,
    argv_text,
    python_executable,
    segment_command,
)
from BraTSXAILib import choices, inference, pipeline
from BraTSXAILib.cli import build_parser


def test_choices_are_values_the_library_accepts():
    assert set(DEVICE_CHOICES.values()) == set(inference.DEVICES)
    assert set(EXPLANATIONS) <= set(pipeline.EXPLANATIONS)  # the module offers a subset (no softmax view)
    assert set(MODEL_CHOICES.values()) == {"all", "unet", "resunet", "attunet"}
    assert list(LAYER_CHOICES.values()) == ["", *choices.LAYER_PRESETS]
    assert list(METHOD_CHOICES.values()) == ["", *choices.CAM_METHODS]


def test_the_advanced_layer_and_method_reach_the_command_only_when_chosen(tmp_path):
    chosen = RunOptions.from_labels("UNet", True, False, "CPU", layer_label="decoder.0.conv", method_label="LayerCAM")
    args = build_parser().parse_args(segment_command("python", tmp_path, tmp_path / "out", chosen)[3:])
    assert (args.layer, args.method) == ("decoder.0.conv", "layercam")
    measured = RunOptions.from_labels("UNet", True, False, "CPU", layer_label=MEASURED, method_label=MEASURED)
    command = segment_command("python", tmp_path, tmp_path / "out", measured)
    assert "--layer" not in command and "--method" not in command
    no_gradcam = RunOptions.from_labels("UNet", False, False, "CPU", layer_label="decoder.2")
    assert "--layer" not in segment_command("python", tmp_path, tmp_path / "out", no_gradcam)


def test_command_parses_with_the_cli(tmp_path):
    options = RunOptions(model="resunet", explain=("gradcam",), device="cpu")
    command = segment_command("/opt/Slicer/bin/PythonSlicer", tmp_path / "case", tmp_path / "out", options)
    assert command[:4] == ["/opt/Slicer/bin/PythonSlicer", "-m", "BraTSXAILib", "segment"]
    args = build_parser().parse_args(command[3:])
    assert args.command == "segment"
    assert [Path(p) for p in args.inputs] == [(tmp_path / "case").resolve()]
    assert args.out == (tmp_path / "out").resolve()
    assert (args.model, args.explain, args.device, args.json_progress) == ("resunet", ("gradcam",), "cpu", True)


def test_without_explanations_no_explain_flag(tmp_path):
    command = segment_command("python", tmp_path, tmp_path / "out", RunOptions(model="unet", explain=()))
    assert "--explain" not in command
    assert build_parser().parse_args(command[3:]).explain == ()


def test_paths_are_absolute_because_the_child_runs_in_the_project_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = segment_command("python", Path("case"), Path("out"), RunOptions())
    assert Path(command[4]).is_absolute() and Path(command[command.index("--out") + 1]).is_absolute()


@pytest.mark.parametrize("model_label, gradcam, attention, softmax, explain", [
    ("All three", True, True, False, ("gradcam", "attention")),
    ("Attention UNet", False, True, True, ("attention", "attention-softmax")),
    ("All three", False, False, True, ("attention-softmax",)),
    ("UNet", True, True, True, ("gradcam",)),  # a plain UNet has no attention gates to show
    ("Residual UNet", False, False, False, ()),
])
def test_options_from_the_widgets(model_label, gradcam, attention, softmax, explain):
    options = RunOptions.from_labels(model_label, gradcam, attention, "GPU (CUDA)", softmax)
    assert (options.model, options.explain, options.device) == (MODEL_CHOICES[model_label], explain, "cuda")


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="explanation"):
        RunOptions(explain=("saliency",))
    with pytest.raises(ValueError, match="device"):
        RunOptions(device="tpu")
    with pytest.raises(ValueError, match="model"):
        RunOptions(model=" ")


def test_python_is_pythonslicer_inside_slicer_else_this_interpreter():
    assert python_executable(lambda name: "/Slicer/bin/PythonSlicer" if name == "PythonSlicer" else None) \
        == "/Slicer/bin/PythonSlicer"
    assert python_executable(lambda name: None) == sys.executable


def test_pythonslicer_beside_slicer_and_never_the_slicer_binary(tmp_path):
    slicer_bin = tmp_path / "Slicer-5.8" / "bin"
    slicer_bin.mkdir(parents=True)
    application = slicer_bin / "SlicerApp-real"
    application.write_text("")
    with pytest.raises(FileNotFoundError, match="PythonSlicer"):  # not the application binary as a Python
        python_executable(lambda name: None, str(application))
    (slicer_bin / "PythonSlicer").write_text("")
    assert python_executable(lambda name: None, str(application)) == str(slicer_bin / "PythonSlicer")


def test_log_text_quotes_parts_with_spaces():
    assert argv_text(["python", "/a b/c", "-m"]) == 'python "/a b/c" -m'


def test_options_from_the_parameter_node_carry_every_choice():
    from types import SimpleNamespace

    parameters = SimpleNamespace(model="Attention UNet", gradcam=True, attention=True, device="CPU",
                                 attentionSoftmax=False, uncertainty=False, modality=True,
                                 gradcamLayer="decoder.2", gradcamMethod="HiResCAM")
    assert RunOptions.from_parameters(parameters) == RunOptions(
        model="attunet", explain=("gradcam", "attention", "modality"), device="cpu", layer="decoder.2",
        method="hirescam")
