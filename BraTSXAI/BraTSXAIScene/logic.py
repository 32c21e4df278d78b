"""A segmentation run: inputs written to a temporary case folder, `brats-xai segment` in the background, results
imported, files deleted; and the installation of what the library needs, in the background too. Usable from the
Python console and tests; questions go to callables or come back as text, never as dialogs.
"""
from __future__ import annotations

import importlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import slicer

from BraTSXAIHelpers import dependencies, inputs, install, paths, progress
from BraTSXAIHelpers.command import DEFAULT_EXPLANATIONS, RunOptions, argv_text, python_executable, segment_command
from BraTSXAIHelpers.runner import BackgroundRun

from . import results, volumes

MODULE_DIR = Path(__file__).resolve().parents[1]
PROJECT_ROOT = paths.project_root(MODULE_DIR)


@dataclass
class PendingRun:
    """A segmentation in progress: the child process and where its files go."""

    process: BackgroundRun
    workDir: Path
    volumes: dict  # modality -> input volume node; outputs lie on the reference modality's grid


@dataclass
class PendingInstall:
    """An installation in progress, and the versions of the requirements Slicer had loaded when it began."""

    process: install.InstallRun
    loadedBefore: dict


def logEvent(event) -> None:
    if isinstance(event, progress.Progress):
        logging.info("BraTSXAI [%3d%%] %s", progress.percent(event.fraction), event.stage)
    elif isinstance(event, progress.Failure):
        logging.error("BraTSXAI: %s", event.text())
    elif isinstance(event, progress.LogLine):
        logging.info("BraTSXAI: %s", event.text)


class SegmentLogic:
    """Start, follow, cancel and import a run; the widget and BraTSXAILogic build on this."""

    def ensureDependencies(self) -> bool:
        """Here: refuse when a requirement is missing or too old; BraTSXAILogic asks the user and installs."""
        unmet = self.unmetDependencies()
        if unmet:
            raise RuntimeError(f"BraTSXAI needs {', '.join(dependencies.REQUIREMENTS[m] for m in unmet)}")
        return True

    @staticmethod
    def unmetDependencies() -> list:
        importlib.invalidate_caches()  # see what an installation has just written
        return dependencies.unmet_modules()

    @staticmethod
    def installQuestion(unmet) -> str:
        wanted = [dependencies.REQUIREMENTS[m] + (" (the build for this computer's GPU or CPU, chosen by "
                                                 "light-the-torch)" if m == "torch" else "") for m in unmet]
        return (f"BraTSXAI needs these Python packages, missing or too old in Slicer's Python: {', '.join(wanted)}. "
                "Download and install them now? It can take several minutes; Cancel stops it and leaves no "
                "package half-installed.")

    @staticmethod
    def startInstall(unmet, python: Optional[str] = None) -> PendingInstall:
        """Start installing the unmet requirements in the background; returns at once (poll, cancel, wait)."""
        steps = install.install_steps(python or python_executable(), unmet)
        loaded = dependencies.imported_distribution_versions()
        return PendingInstall(install.InstallRun(steps, cwd=slicer.app.temporaryPath), loaded)

    @staticmethod
    def restartNeeded(pending: PendingInstall) -> list:
        """Packages Slicer had loaded that the installation replaced: only a restart makes Slicer use them."""
        return dependencies.restart_needed(pending.loadedBefore, dependencies.imported_distribution_versions())

    def start(self, inputVolumes: Mapping, options: RunOptions, groundTruth=None) -> PendingRun:
        """Write the volumes (and the ground truth, as the case's `_seg` file) and start the run; returns at once.

        With a ground truth on the T1ce grid the library reports each network's Dice against it in the manifest.
        """
        problems = volumes.inputProblems(inputVolumes, groundTruth)
        if problems:
            raise ValueError(" ".join(problems))
        reference = inputVolumes["t1ce"]
        caseId = inputs.case_id_from_name(reference.GetName())
        workDir = Path(tempfile.mkdtemp(prefix="BraTSXAI-", dir=slicer.app.temporaryPath))
        try:
            caseDir = workDir / "input" / caseId
            caseDir.mkdir(parents=True)
            for modality in inputs.MODALITIES:
                volumes.writeVolume(inputVolumes[modality], caseDir / inputs.input_file_name(caseId, modality))
            if groundTruth is not None:
                volumes.writeVolume(groundTruth, caseDir / inputs.input_file_name(caseId, "seg"))
            command = segment_command(python_executable(), caseDir, workDir / "output", options)
            logging.info("BraTSXAI: %s", argv_text(command))
            process = BackgroundRun(command, cwd=PROJECT_ROOT)
        except BaseException:
            shutil.rmtree(workDir, ignore_errors=True)
            raise
        return PendingRun(process, workDir, dict(inputVolumes))

    @staticmethod
    def cancel(task) -> None:
        """Stop a PendingRun (its process tree is killed) or a PendingInstall (see install.InstallRun.cancel)."""
        task.process.cancel()

    @staticmethod
    def discard(run: PendingRun) -> None:
        """Delete a run's temporary files (nodes hold their own copies of the data)."""
        shutil.rmtree(run.workDir, ignore_errors=True)

    @staticmethod
    def importResults(run: PendingRun, shouldStop: Optional[Callable[[], bool]] = None) -> results.SegmentationResult:
        """Nodes for a finished run, in a new folder under the T1ce's study; all of them or none (also when
        `shouldStop` says to stop: results.ImportCancelled)."""
        manifestPath = Path(run.process.outcome.manifest)
        if not manifestPath.is_absolute():
            manifestPath = PROJECT_ROOT / manifestPath  # the child's working directory
        return results.importResults(manifestPath, run.volumes, shouldStop)

    def segment(self, t1, t1ce, t2, flair, model: str = "all", explain=DEFAULT_EXPLANATIONS, device: str = "auto",
                groundTruth=None, onEvent: Optional[Callable] = None) -> results.SegmentationResult:
        """Segment and explain one case, blocking until done; raises RuntimeError on failure.

        `model` is a `brats-xai --model` selector: unet, resunet, attunet, all, a registry id or a weights path.
        `explain` holds "gradcam", "attention" and/or "attention-softmax"; `device` is auto, cpu or cuda.
        """
        if not self.ensureDependencies():
            raise RuntimeError("the required Python packages are not installed")
        options = RunOptions(model=model, explain=tuple(explain), device=device)
        run = self.start({"t1": t1, "t1ce": t1ce, "t2": t2, "flair": flair}, options, groundTruth)
        try:
            outcome = run.process.wait(onEvent or logEvent)
            if not outcome.succeeded:
                raise RuntimeError(f"segmentation failed: {outcome.describe()}")
            return self.importResults(run)
        finally:
            run.process.cancel()  # stops the child if waiting was interrupted (nothing to do once it has ended)
            self.discard(run)
