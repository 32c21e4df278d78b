"""The background process: events arrive while it runs, its end is reported, and cancel kills the whole tree."""
from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

import slicer_module  # noqa: F401
from BraTSXAIHelpers.progress import Done, Failure, LogLine, Progress
from BraTSXAIHelpers.runner import BackgroundRun


def child(tmp_path, code: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    return [sys.executable, str(script)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a killed child not yet reaped is a zombie, not alive
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_events_in_order_and_success(tmp_path):
    command = child(tmp_path, """
        import json, sys
        for step in range(3):
            print(json.dumps({"progress": step / 4, "stage": f"step {step}"}), flush=True)
        print("warning: from stderr", file=sys.stderr, flush=True)
        print(json.dumps({"done": True, "manifest": "out/manifest.json"}), flush=True)
    """)
    run = BackgroundRun(command, cwd=tmp_path)
    events = []
    outcome = run.wait(events.append, interval=0.05)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.stage for p in progress] == ["step 0", "step 1", "step 2"]
    assert LogLine("warning: from stderr") in events
    assert events[-1] == Done("out/manifest.json")
    assert outcome.succeeded and outcome.manifest == "out/manifest.json" and outcome.returncode == 0
    assert run.finished and run.poll() == []


def test_poll_never_blocks_and_collects_everything(tmp_path):
    command = child(tmp_path, """
        import json, time
        time.sleep(0.5)
        print(json.dumps({"progress": 1.0, "stage": "late"}), flush=True)
    """)
    run = BackgroundRun(command, cwd=tmp_path)
    started = time.monotonic()
    assert run.poll() == [] and time.monotonic() - started < 0.3
    events = []
    while not run.finished:
        events += run.poll()
        time.sleep(0.02)
    assert events == [Progress(1.0, "late")]
    assert not run.outcome.succeeded  # exit 0 but no `done` line: no manifest to import
    assert "exit status 0" in run.outcome.describe()


def test_error_line_and_exit_status_2(tmp_path):
    command = child(tmp_path, """
        import json, sys
        print(json.dumps({"error": "no BraTS images found", "hint": "name files <id>_t1.nii.gz"}), flush=True)
        sys.exit(2)
    """)
    outcome = BackgroundRun(command, cwd=tmp_path).wait(interval=0.05)
    assert not outcome.succeeded and not outcome.cancelled
    assert outcome.returncode == 2
    assert outcome.failure == Failure("no BraTS images found", "name files <id>_t1.nii.gz")
    assert outcome.describe() == "no BraTS images found — name files <id>_t1.nii.gz"


def test_runs_in_the_given_working_directory(tmp_path):
    command = child(tmp_path, """
        import os
        print(os.getcwd(), flush=True)
    """)
    (tmp_path / "root").mkdir()
    events = []
    BackgroundRun(command, cwd=tmp_path / "root").wait(events.append, interval=0.05)
    assert events == [LogLine(str((tmp_path / "root").resolve()))]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="checks process states in /proc (Linux)")
def test_cancel_kills_the_child_and_its_children(tmp_path):
    command = child(tmp_path, """
        import json, subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(json.dumps({"progress": 0.1, "stage": str(grandchild.pid)}), flush=True)
        time.sleep(60)
    """)
    run = BackgroundRun(command, cwd=tmp_path)
    first = []
    while not first:
        first = [e for e in run.poll() if isinstance(e, Progress)]
        time.sleep(0.02)
    grandchild = int(first[0].stage)
    assert alive(run.pid) and alive(grandchild)
    started = time.monotonic()
    run.cancel()
    outcome = run.wait(interval=0.05)
    assert time.monotonic() - started < 10
    assert outcome.cancelled and not outcome.succeeded and outcome.describe() == "Cancelled."
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(run.pid) and not alive(grandchild)


def test_cancel_after_the_end_changes_nothing(tmp_path):
    command = child(tmp_path, """
        import json
        print(json.dumps({"done": True, "manifest": "m.json"}), flush=True)
    """)
    run = BackgroundRun(command, cwd=tmp_path)
    before = run.wait(interval=0.05)
    run.cancel()
    assert run.outcome == before and before.succeeded


def test_a_run_that_ends_while_cancel_is_under_way_keeps_its_outcome(tmp_path):
    command = child(tmp_path, """
        import json
        print(json.dumps({"done": True, "manifest": "m.json"}), flush=True)
    """)
    run = BackgroundRun(command, cwd=tmp_path)
    while run._process.returncode is None and not run.finished:  # the child exits on its own
        time.sleep(0.02)
    run._process.poll = lambda: None  # cancel's check sees it still running, as in the race with a real kill
    run.cancel()
    outcome = run.wait(interval=0.05)
    assert outcome.succeeded and not outcome.cancelled and outcome.manifest == "m.json"
