"""The module's Slicer-free path against the real `brats-xai segment --json-progress`, as the module runs it:
input files named as the module names them, the command it builds, its background runner, then the manifest
turned into node descriptions, the outputs checked to lie on the input grid, and agreement computed."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
import SimpleITK as sitk

import slicer_module
from BraTSXAIHelpers import inputs
from BraTSXAIHelpers.agreement import agreement_rows, region_dice
from BraTSXAIHelpers.command import RunOptions, segment_command
from BraTSXAIHelpers.geometry import ijk_to_ras, read_volume, same_grid
from BraTSXAIHelpers.manifest import plan_nodes
from BraTSXAIHelpers.progress import Done, Progress
from BraTSXAIHelpers.runner import BackgroundRun
from BraTSXAILib.labels import label_classes
from BraTSXAILib.phantom import make_phantom
from tiny_models import tiny_registry

pytestmark = pytest.mark.slow
CASE_ID = inputs.case_id_from_name("Phantom-7_t1ce")
MODELS = ("unet", "resunet", "attunet")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A case folder as the module writes it (plus the truth, so the library reports Dice) and tiny models."""
    folder = tmp_path_factory.mktemp("slicer_cli")
    registry = tiny_registry(folder / "models")
    environment = {**os.environ, "BRATSXAI_REGISTRY": str(registry), "BRATSXAI_MODELS": str(folder / "models")}
    case = make_phantom(shape=(32, 40, 32), spacing=(3.0, 3.0, 3.0), seed=7)
    case_dir = folder / "input" / CASE_ID
    case_dir.mkdir(parents=True)
    for modality in inputs.MODALITIES:
        sitk.WriteImage(case.images[modality], str(case_dir / inputs.input_file_name(CASE_ID, modality)))
    sitk.WriteImage(case.label, str(case_dir / f"{CASE_ID}_seg.nii"))
    return folder, case_dir, case, environment


@pytest.fixture(scope="module")
def finished(workspace):
    folder, case_dir, case, environment = workspace
    command = segment_command(sys.executable, case_dir, folder / "output", RunOptions(model="all", device="cpu"))
    run = BackgroundRun(command, cwd=slicer_module.ROOT, env=environment)
    events = []
    outcome = run.wait(events.append, interval=0.05)
    return events, outcome, case


def test_progress_lines_lead_to_a_manifest(finished):
    events, outcome, _ = finished
    assert outcome.succeeded, outcome.describe()
    fractions = [e.fraction for e in events if isinstance(e, Progress)]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [e for e in events if isinstance(e, Done)] == [Done(outcome.manifest)]
    assert os.path.isfile(outcome.manifest)


def test_manifest_becomes_node_descriptions(finished):
    _, outcome, _ = finished
    plan = plan_nodes(outcome.manifest)
    assert plan.case_id == CASE_ID and plan.reference_modality == "t1ce"
    assert [s.model for s in plan.segmentations] == ["ensemble", *MODELS]  # the primary result first
    assert [s.name for s in plan.segmentations] == [
        f"{CASE_ID} Ensemble segmentation", f"{CASE_ID} UNet segmentation",
        f"{CASE_ID} Residual UNet segmentation", f"{CASE_ID} Attention UNet segmentation"]
    assert [s.primary for s in plan.segmentations] == [True, False, False, False]
    expected_segments = [(c["value"], c["name"], tuple(c["color"])) for c in label_classes(4)]
    for segmentation in plan.segmentations:
        assert [(s.value, s.name, s.color) for s in segmentation.segments] == expected_segments
    shown = {(o.model, o.kind, o.target) for o in plan.overlays}
    for model in MODELS:
        for region in ("WT", "TC", "ET"):
            assert (model, "probability", region) in shown
            assert (model, "gradcam", region) in shown
    attention = [o for o in plan.overlays if o.kind == "attention"]
    assert attention and {o.model for o in attention} == {"attunet"}
    for overlay in plan.overlays:
        colormap = "ColdToHotRainbow" if overlay.kind == "uncertainty" else "Inferno"
        assert overlay.window == (0.0, 1.0) and overlay.colormap == colormap and overlay.path.is_file()
        assert overlay.name.startswith(CASE_ID + " ")


def test_every_output_lies_on_the_t1ce_grid(finished):
    _, outcome, case = finished
    reference = case.images["t1ce"]
    reference_shape = sitk.GetArrayViewFromImage(reference).shape
    plan = plan_nodes(outcome.manifest)
    for spec in (*plan.segmentations, *plan.overlays):
        array, matrix = read_volume(spec.path)
        assert same_grid(matrix, array.shape, ijk_to_ras(reference), reference_shape), spec.path.name
    for spec in plan.segmentations:
        assert set(np.unique(read_volume(spec.path)[0])) <= {0, 1, 2, 4}
    for spec in plan.overlays:
        values = read_volume(spec.path)[0]
        assert np.isfinite(values).all() and values.min() >= spec.window[0] and values.max() <= spec.window[1] + 1e-6


def test_agreement_matches_the_library_dice(finished):
    """The module's numpy Dice equals the library's (in the manifest); truth rows are taken from the manifest."""
    _, outcome, case = finished
    plan = plan_nodes(outcome.manifest)
    label_maps = {s.model: read_volume(s.path)[0] for s in plan.segmentations}
    models = [s.model for s in plan.segmentations]
    assert models == ["ensemble", *MODELS]
    truth = sitk.GetArrayFromImage(case.label)
    for model in models:
        library = tuple(plan.metrics[model][f"dice_{r}"] for r in ("WT", "TC", "ET"))
        assert region_dice(label_maps[model], truth) == pytest.approx(library, abs=1e-6)
    rows = agreement_rows(label_maps, plan.metrics)
    assert len(rows) == 6 + 4  # every pair of the four, then each vs truth
    for model, row in zip(models, rows[6:]):
        assert row.dice == tuple(plan.metrics[model][f"dice_{r}"] for r in ("WT", "TC", "ET"))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="checks process states in /proc (Linux)")
def test_cancel_stops_the_cli_before_it_writes_a_manifest(workspace):
    folder, case_dir, _, environment = workspace
    output = folder / "cancelled"
    command = segment_command(sys.executable, case_dir, output, RunOptions(model="all", device="cpu"))
    run = BackgroundRun(command, cwd=slicer_module.ROOT, env=environment)
    deadline = time.monotonic() + 120
    while not any(isinstance(e, Progress) for e in run.poll()) and time.monotonic() < deadline:
        time.sleep(0.05)
    run.cancel()
    outcome = run.wait(interval=0.05)
    assert outcome.cancelled and not outcome.succeeded and outcome.returncode != 0
    assert not (output / "manifest.json").exists()
    assert not os.path.exists(f"/proc/{run.pid}") or open(f"/proc/{run.pid}/stat").read().split(")")[-1].split()[0] == "Z"


def test_bad_input_comes_back_as_one_failure_with_exit_status_2(tmp_path):
    empty = tmp_path / "not_a_case"
    empty.mkdir()
    command = segment_command(sys.executable, empty, tmp_path / "out", RunOptions(model="all", device="cpu"))
    outcome = BackgroundRun(command, cwd=slicer_module.ROOT).wait(interval=0.05)
    assert outcome.returncode == 2 and not outcome.succeeded and not outcome.cancelled
    assert outcome.failure is not None and outcome.failure.hint
    assert outcome.failure.path == str(empty.resolve())
    assert outcome.describe() == outcome.failure.text()
