"""The Slicer tier: the module's scene code and logic on Slicer's real core libraries (slicer-core, trame-slicer).

One scene for the whole session (as in Slicer, runs add to what is there); the phantom case is loaded once and
segmented once with tiny untrained networks through the module's logic and the real `brats-xai segment`.
The screenshot tests segment the sample case with the bundled trained networks instead (test_scene_screenshots);
with BRATSXAI_SCREENSHOTS=DIR they also write their PNGs to DIR.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT / "BraTSXAI", ROOT / "Testing" / "Python", Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

MISSING = "Slicer's core libraries are not installed: pip install -e '.[test]' brings slicer-core and trame-slicer"
SHAPE, SPACING = (32, 36, 32), (2.0, 2.0, 2.0)  # a small phantom: one run of the three tiny networks in seconds


def require_slicer():
    pytest.importorskip("slicer_core", reason=MISSING)
    pytest.importorskip("trame_slicer", reason=MISSING)


@pytest.fixture(scope="session")
def core(tmp_path_factory):
    """Slicer's scene, logics and slice views, exposed as slicer.mrmlScene / slicer.app / slicer.modules."""
    require_slicer()
    from slicer_core_app import SlicerCore

    built = SlicerCore(tmp_path_factory.mktemp("slicer-core"))
    built.install()
    yield built
    import slicer

    for name in ("mrmlScene", "app", "modules"):
        delattr(slicer, name)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Untrained width-8 networks in a registry the child process reads (BRATSXAI_REGISTRY)."""
    from tiny_models import tiny_registry

    folder = tmp_path_factory.mktemp("models")
    registry = tiny_registry(folder)
    saved = {key: os.environ.get(key) for key in ("BRATSXAI_REGISTRY", "BRATSXAI_MODELS")}
    os.environ.update({"BRATSXAI_REGISTRY": str(registry), "BRATSXAI_MODELS": str(folder)})
    yield registry
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def phantom(core):
    """The sample case as the module loads it: four named volumes and the truth label map (`"seg"`)."""
    from BraTSXAIScene import sampledata

    return sampledata.loadPhantomCase(shape=SHAPE, spacing=SPACING)


@pytest.fixture(scope="session")
def finished_run(core, tiny_models, phantom):
    """One real run of all three networks (Grad-CAM, attention, uncertainty, modality shares) through the logic;
    files kept till the end."""
    from BraTSXAIHelpers.command import RunOptions
    from BraTSXAIScene.logic import SegmentLogic

    logic = SegmentLogic()
    inputs = {m: phantom[m] for m in ("t1", "t1ce", "t2", "flair")}
    options = RunOptions(model="all", device="cpu", explain=("gradcam", "attention", "uncertainty", "modality"))
    run = logic.start(inputs, options, groundTruth=phantom["seg"])
    outcome = run.process.wait()
    assert outcome.succeeded, outcome.describe()
    yield run
    logic.discard(run)


@pytest.fixture(scope="session")
def imported(core, finished_run):
    """The run's results as nodes, with the scene's census before the import."""
    from BraTSXAIScene.logic import SegmentLogic

    before = core.node_census()
    return SegmentLogic.importResults(finished_run), before


@pytest.fixture
def screenshot_dir(tmp_path):
    folder = os.environ.get("BRATSXAI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path
