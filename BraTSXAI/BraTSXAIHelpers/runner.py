"""Running the library in a background process that the GUI can follow, and cancel, without freezing.

A reader thread turns the child's output lines into events on a queue; the GUI drains the queue from a timer
(as SlicerMONAIAuto3DSeg does) so no Qt object is touched outside the main thread. The child starts in its own
process group (a new session on POSIX, a new process group on Windows), so cancelling kills the launcher, the
Python it starts and any worker processes together, not just the launcher.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .progress import Done, Failure, parse_line


@dataclass(frozen=True)
class Outcome:
    """How a run ended. `manifest` is set only on success (exit status 0 and a `done` line)."""

    returncode: int | None
    cancelled: bool
    manifest: str | None
    failure: Failure | None

    @property
    def succeeded(self) -> bool:
        return not self.cancelled and self.returncode == 0 and self.manifest is not None

    def describe(self) -> str:
        if self.cancelled:
            return "Cancelled."
        if self.succeeded:
            return "Finished."
        if self.failure is not None:
            return self.failure.text()
        return f"brats-xai stopped with exit status {self.returncode} (see the log above)."


def _popen_options() -> dict:
    if os.name == "nt":
        info = subprocess.STARTUPINFO()  # hide the console window, as slicer.util.launchConsoleProcess does
        info.dwFlags |= subprocess.STARTF_USESHOWWINDOW
        info.wShowWindow = 0
        return {"startupinfo": info, "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


class BackgroundRun:
    """One child process: `poll()` returns the events so far; `finished` and `outcome` tell how it ended."""

    def __init__(self, command: Sequence[str], cwd: str | Path, env: dict | None = None):
        self.command = list(command)
        self._events: queue.Queue = queue.Queue()
        self._kill_sent = False
        self._manifest: str | None = None
        self._failure: Failure | None = None
        self._process = subprocess.Popen(
            self.command, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", bufsize=1, **_popen_options(),
        )
        self._reader = threading.Thread(target=self._read, name="brats-xai output", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _read(self) -> None:
        for line in self._process.stdout:
            self._events.put(parse_line(line))
        self._process.stdout.close()
        self._process.wait()
        self._events.put(None)  # end of stream

    def poll(self) -> list:
        """Events that arrived since the last call (never blocks)."""
        events = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return events
            if event is None:
                self._reader.join()
                continue
            self._remember(event)
            events.append(event)

    def _remember(self, event) -> None:
        if isinstance(event, Done):
            self._manifest = event.manifest
        elif isinstance(event, Failure):
            self._failure = event

    @property
    def finished(self) -> bool:
        """True once the child has exited and every line it wrote has been returned by `poll()`."""
        return not self._reader.is_alive() and self._events.empty()

    def wait(self, on_event: Callable[[object], None] | None = None, interval: float = 0.2) -> "Outcome":
        """Block until the child ends, handing each event to `on_event`; for scripts and tests."""
        while not self.finished:
            try:
                event = self._events.get(timeout=interval)
            except queue.Empty:
                continue
            if event is None:
                self._reader.join()
                continue
            self._remember(event)
            if on_event is not None:
                on_event(event)
        return self.outcome

    @property
    def outcome(self) -> Outcome:
        return Outcome(self._process.returncode, self._was_killed(), self._manifest, self._failure)

    def _was_killed(self) -> bool:
        """Cancelled only if the kill ended the child: a run that finished first keeps its own outcome."""
        code = self._process.returncode
        if not self._kill_sent or code is None or code == 0:
            return False
        if os.name == "nt":
            return self._failure is None  # taskkill /F leaves exit status 1; a reported error is not a cancel
        return code == -signal.SIGKILL

    def cancel(self) -> None:
        """Kill the child and everything it started; the run then finishes as cancelled.

        A child that has already exited (even between the check and the kill) is left as it ended.
        """
        if self._process.poll() is not None:
            return
        if os.name == "nt":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(self._process.pid)], capture_output=True, check=False)
        else:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
        self._kill_sent = True
