"""The `brats-xai segment` command line the module runs, built from the user's choices.

The child runs `python -m BraTSXAILib` with the project root as working directory, so the library that ships
with the module is the one that runs, whether or not it is also pip-installed (`-m` puts the working directory
first on sys.path). Every path given is absolute, so the working directory changes nothing else.
"""
from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Labels shown in the module (and stored in its parameter node) -> command-line values.
MODEL_CHOICES = {"All three": "all", "UNet": "unet", "Residual UNet": "resunet", "Attention UNet": "attunet"}
DEVICE_CHOICES = {"Automatic": "auto", "CPU": "cpu", "GPU (CUDA)": "cuda"}
EXPLANATIONS = ("gradcam", "attention", "attention-softmax", "uncertainty", "modality")
DEFAULT_EXPLANATIONS = ("gradcam", "attention", "uncertainty")
ATTENTION_MODELS = ("attunet", "all")  # only the Attention UNet has attention gates to show
MEASURED = "Measured default"  # each network's layer and method per region, chosen on validation cases
# The library's BraTSXAILib.choices.LAYER_PRESETS and CAM_METHODS (a test keeps them equal; the module does not
# import the library into Slicer's process).
LAYER_CHOICES = {MEASURED: "", **{name: name for name in ("bottleneck", "decoder.3", "decoder.2", "decoder.1",
                                                           "decoder.0.conv", "decoder.0", "final")}}
METHOD_CHOICES = {MEASURED: "", "Grad-CAM": "gradcam", "HiResCAM": "hirescam", "Grad-CAM++": "gradcam++",
                  "LayerCAM": "layercam"}


@dataclass(frozen=True)
class RunOptions:
    """What to run: a `--model` selector (architecture, `all`, registry id or weights path), explanations, device."""

    model: str = "all"
    explain: tuple[str, ...] = DEFAULT_EXPLANATIONS
    device: str = "auto"
    layer: str = ""  # Grad-CAM layer and method for every region; "" = the networks' measured defaults
    method: str = ""

    def __post_init__(self):
        unknown = [e for e in self.explain if e not in EXPLANATIONS]
        if unknown:
            raise ValueError(f"unknown explanation {', '.join(unknown)}; choose from {', '.join(EXPLANATIONS)}")
        if self.device not in DEVICE_CHOICES.values():
            raise ValueError(f"unknown device {self.device!r}; choose from {', '.join(DEVICE_CHOICES.values())}")
        if not self.model.strip():
            raise ValueError("no model given")

    @classmethod
    def from_labels(cls, model_label: str, gradcam: bool, attention: bool, device_label: str,
                    attention_softmax: bool = False, uncertainty: bool = False,
                    modality: bool = False, layer_label: str = MEASURED,
                    method_label: str = MEASURED) -> "RunOptions":
        """Options from the module's widgets; attention maps are asked for only when an Attention UNet runs."""
        model = MODEL_CHOICES[model_label]
        gated = model in ATTENTION_MODELS
        wishes = (("gradcam", gradcam), ("attention", attention and gated),
                  ("attention-softmax", attention_softmax and gated), ("uncertainty", uncertainty),
                  ("modality", modality))
        explain = tuple(e for e, wanted in wishes if wanted)
        return cls(model=model, explain=explain, device=DEVICE_CHOICES[device_label],
                   layer=LAYER_CHOICES[layer_label], method=METHOD_CHOICES[method_label])

    @classmethod
    def from_parameters(cls, parameters) -> "RunOptions":
        """Options from the module's parameter node (its attributes are named as the widgets bind them)."""
        return cls.from_labels(parameters.model, parameters.gradcam, parameters.attention, parameters.device,
                               parameters.attentionSoftmax, parameters.uncertainty, parameters.modality,
                               parameters.gradcamLayer, parameters.gradcamMethod)


def python_executable(which: Callable[[str], str | None] = shutil.which, executable: str = sys.executable) -> str:
    """Slicer's `PythonSlicer` (on PATH, as slicer.util finds it for pip, or beside Slicer's binary), else this
    interpreter when it is a Python. Inside Slicer `sys.executable` is the Slicer application itself, which cannot
    run `-m BraTSXAILib`, so it is never used as a fallback there: FileNotFoundError says what is missing.
    """
    found = which("PythonSlicer")
    if found:
        return found
    here = Path(executable).resolve().parent
    for folder in (here, here.parent / "bin"):
        for name in ("PythonSlicer", "PythonSlicer.exe"):
            if (folder / name).is_file():
                return str(folder / name)
    if Path(executable).name.lower().startswith("python"):
        return executable
    raise FileNotFoundError(f"PythonSlicer was not found on PATH or beside {executable}; "
                            "the segmentation needs Slicer's Python interpreter to run in the background")


def segment_command(python: str, case_folder: Path, output_folder: Path, options: RunOptions) -> list[str]:
    """argv for one case: `python -m BraTSXAILib segment CASE --model M --out DIR [--explain ..] --device D --json-progress`."""
    command = [
        python, "-m", "BraTSXAILib", "segment", str(Path(case_folder).resolve()),
        "--model", options.model,
        "--out", str(Path(output_folder).resolve()),
    ]
    if options.explain:
        command += ["--explain", ",".join(options.explain)]
    if "gradcam" in options.explain:
        command += [*(["--layer", options.layer] if options.layer else []),
                    *(["--method", options.method] if options.method else [])]
    return command + ["--device", options.device, "--json-progress"]


def argv_text(command: Sequence[str]) -> str:
    """The command as one line for the log, quoted where a part holds spaces."""
    return " ".join(f'"{part}"' if " " in part else part for part in command)
