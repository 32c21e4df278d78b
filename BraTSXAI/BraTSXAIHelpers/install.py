"""Installing what the library needs in background processes that Cancel can stop, never half-way through a package.

PyTorch comes through light-the-torch (the pip wrapper Slicer's PyTorch extension uses: it picks the build that
fits the computer's GPU), the rest through pip, each step a child process like a segmentation run. pip resolves
and downloads every package first and only then logs "Installing collected packages" and writes to
site-packages. Until that line a cancel kills the step's process tree and the step installs nothing; after it,
the cancel waits for the step to finish writing and skips the steps after it.
"""
from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .command import argv_text
from .dependencies import REQUIREMENTS, pip_requirements
from .progress import LogLine
from .runner import BackgroundRun

LIGHT_THE_TORCH = "light-the-torch>=0.5"  # the version PyTorchUtils installs
WRITING = "Installing collected packages"  # pip's line between downloading and writing


@dataclass(frozen=True)
class Step:
    label: str  # what the user reads: "PyTorch", "numpy>=1.24, monai>=1.3"
    command: tuple[str, ...]


def install_steps(python: str, unmet: Sequence[str],
                  find_spec: Callable[[str], object] = importlib.util.find_spec) -> list[Step]:
    """The commands that install the unmet requirements (import names, as dependencies.unmet_modules gives)."""
    steps = []
    if "torch" in unmet:
        if find_spec("light_the_torch") is None:
            steps.append(Step("light-the-torch", (python, "-m", "pip", "install", LIGHT_THE_TORCH)))
        steps.append(Step("PyTorch", (python, "-m", "light_the_torch", "install", REQUIREMENTS["torch"])))
    others = pip_requirements(unmet)
    if others:
        steps.append(Step(", ".join(others), (python, "-m", "pip", "install", *others)))
    return steps


@dataclass(frozen=True)
class InstallOutcome:
    installed: tuple[str, ...]  # labels of the steps that finished
    cancelled: bool
    failed: str | None  # label of the step that failed
    returncode: int | None

    @property
    def succeeded(self) -> bool:
        return not self.cancelled and self.failed is None

    def describe(self) -> str:
        done = f"{', '.join(self.installed)} installed" if self.installed else "nothing was installed"
        if self.failed is not None:
            return f"Installing {self.failed} failed (exit status {self.returncode}, see the log); {done}."
        if self.cancelled:
            return f"Installation cancelled: {done}, and no package was left half-written."
        return f"Installed {', '.join(self.installed)}."


class InstallRun:
    """The steps one after another; `poll()` returns their output lines as events and starts the next step."""

    def __init__(self, steps: Sequence[Step], cwd: str | Path):
        self.steps = list(steps)
        self._cwd = cwd
        self._index = 0
        self._installed: list[str] = []
        self._failed: tuple[str, int | None] | None = None
        self._cancel_requested = self._cancelled = False
        self._unread: list = []  # events not returned by poll() yet
        self._begin()

    def _begin(self) -> None:
        command = self.steps[self._index].command
        self._writing = False
        self._current = BackgroundRun(command, cwd=self._cwd)
        self._unread.append(LogLine(argv_text(command)))

    @property
    def status(self) -> str:
        if self._current is None:
            return self.outcome.describe()
        label = self.steps[self._index].label
        if self._cancel_requested:
            return (f"Cancelling: pip finishes writing {label} first, so that nothing is left half-installed…"
                    if self._writing else "Cancelling…")
        verb = "Installing" if self._writing else "Downloading"
        return f"{verb} {label} ({self._index + 1} of {len(self.steps)})…"

    @property
    def fraction(self) -> float:
        return self._index / len(self.steps)

    def poll(self) -> list:
        """Events since the last call (never blocks); moves on to the next step when one ends well."""
        events, self._unread = self._unread, []
        while self._current is not None:
            new = self._current.poll()
            self._writing |= any(isinstance(e, LogLine) and e.text.startswith(WRITING) for e in new)
            events += new
            if not self._current.finished:
                break
            self._finish_step(self._current.outcome)
        return events

    def _finish_step(self, outcome) -> None:
        step, self._current = self.steps[self._index], None
        if outcome.cancelled:
            self._cancelled = True
        elif outcome.returncode != 0:
            self._failed = (step.label, outcome.returncode)
        else:
            self._installed.append(step.label)
            self._index += 1
            if self._cancel_requested:
                self._cancelled = self._index < len(self.steps)
            elif self._index < len(self.steps):
                self._begin()

    @property
    def finished(self) -> bool:
        return self._current is None

    def cancel(self) -> None:
        """Kill the step while it downloads; once pip writes, let it finish and run no further step."""
        self._cancel_requested = True
        self._unread = self.poll()  # has pip said it writes? (its lines reach us through a reader thread)
        if self._current is not None and not self._writing:
            self._current.cancel()

    def wait(self, on_event: Callable[[object], None] | None = None, interval: float = 0.2) -> InstallOutcome:
        """Block until every step has ended; for the Python console and tests."""
        while True:
            for event in self.poll():
                if on_event is not None:
                    on_event(event)
            if self.finished:
                return self.outcome
            time.sleep(interval)

    @property
    def outcome(self) -> InstallOutcome:
        label, code = self._failed or (None, 0)
        return InstallOutcome(tuple(self._installed), self._cancelled, label, code)
