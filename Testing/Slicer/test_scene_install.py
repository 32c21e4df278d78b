"""Installing the library's requirements in the background through the module's logic: Cancel while pip downloads
kills the process tree and installs nothing; Cancel while pip writes lets it finish and runs no further step.

The steps run a stand-in for Slicer's Python that behaves as pip does (downloads, then logs "Installing
collected packages", then writes), so no network is used; one test checks that real pip logs that line first.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("slicer_core", reason="Slicer's core libraries (slicer-core) are not installed")
pytestmark = pytest.mark.skipif(os.name == "nt", reason="the stand-in Python is a POSIX script")

from BraTSXAIHelpers import install  # noqa: E402
from BraTSXAIScene.logic import SegmentLogic  # noqa: E402

FAKE_PYTHON = """\
#!{python}
# Behaves as `python -m pip|light_the_torch install REQ...` does, timed by $FAKE_PIP: downloads, then writes.
import json, os, pathlib, subprocess, sys, time
module, requirements = sys.argv[2], sys.argv[4:]
timing = json.loads(os.environ["FAKE_PIP"])[module]
site = pathlib.Path(os.environ["FAKE_SITE"])
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # as pip's build workers
(site.parent / f"{{module}}.pids").write_text(f"{{os.getpid()}} {{worker.pid}}")
print("Collecting " + " ".join(requirements), flush=True)
time.sleep(timing["download"])
print("Installing collected packages: " + ", ".join(requirements), flush=True)
for requirement in requirements:
    partial = site / (requirement + ".partial")
    partial.write_text("")
    time.sleep(timing["write"])
    partial.rename(site / (requirement + ".installed"))
worker.kill()  # pip's workers end before pip does
print("Successfully installed " + " ".join(requirements), flush=True)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # killed but not yet reaped is a zombie, not alive
        return stat.read().split(")")[-1].split()[0] != "Z"


def wait_for(condition, pending, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        pending.process.poll()
        time.sleep(0.05)


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """The stand-in Python and its site-packages folder; `timing(module=(download_s, write_s), ...)` sets it up."""
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON.format(python=sys.executable))
    python.chmod(0o755)
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setenv("FAKE_SITE", str(site))

    def timing(**modules):
        monkeypatch.setenv("FAKE_PIP", json.dumps({m: {"download": d, "write": w} for m, (d, w) in modules.items()}))
        return str(python), site

    return timing


def test_cancel_while_pip_downloads_kills_it_and_installs_nothing(core, fake_pip, tmp_path):
    python, site = fake_pip(pip=(60, 0))
    before = core.node_census()
    pending = SegmentLogic.startInstall(["numpy", "scipy"], python=python)
    pids = tmp_path / "pip.pids"
    wait_for(pids.exists, pending)
    assert pending.process.status.startswith("Downloading numpy>=1.24, scipy>=1.10 (1 of 1)")
    SegmentLogic.cancel(pending)
    outcome = pending.process.wait(interval=0.05)

    assert outcome.cancelled and not outcome.succeeded and outcome.installed == ()
    assert "nothing was installed" in outcome.describe()
    deadline = time.monotonic() + 10
    while any(alive(int(pid)) for pid in pids.read_text().split()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(int(pid)) for pid in pids.read_text().split()), "pip or its worker survived the cancel"
    assert list(site.iterdir()) == []  # nothing written, nothing half-written
    assert core.node_census() == before

    python, site = fake_pip(pip=(0, 0))  # and a second try installs everything
    again = SegmentLogic.startInstall(["numpy", "scipy"], python=python).process.wait(interval=0.05)
    assert again.succeeded and sorted(p.name for p in site.iterdir()) == ["numpy>=1.24.installed",
                                                                          "scipy>=1.10.installed"]


def test_cancel_while_pip_writes_lets_it_finish_and_runs_no_further_step(core, fake_pip):
    python, site = fake_pip(pip=(0, 0), light_the_torch=(0, 1.5))
    before = core.node_census()
    pending = SegmentLogic.startInstall(["torch", "numpy"], python=python)
    assert [step.label for step in pending.process.steps][-2:] == ["PyTorch", "numpy>=1.24"]
    wait_for(lambda: pending.process.status.startswith("Installing PyTorch"), pending)
    SegmentLogic.cancel(pending)
    assert pending.process.status.startswith("Cancelling: pip finishes writing PyTorch")
    outcome = pending.process.wait(interval=0.05)

    assert outcome.cancelled and not outcome.succeeded
    assert outcome.installed[-1] == "PyTorch" and "numpy>=1.24" not in outcome.installed
    assert (site / "torch>=2.2.installed").exists()  # finished writing, not cut off
    assert not list(site.glob("*.partial")) and not (site / "numpy>=1.24.installed").exists()
    assert "PyTorch installed" in outcome.describe() and core.node_census() == before


def test_a_failing_step_stops_the_installation_and_says_which(core, fake_pip):
    python, _ = fake_pip()  # no timing for pip: the stand-in fails as pip does on a bad requirement
    outcome = SegmentLogic.startInstall(["monai"], python=python).process.wait(interval=0.05)
    assert not outcome.succeeded and not outcome.cancelled
    assert outcome.failed == "monai>=1.3" and outcome.returncode == 1
    assert outcome.describe().startswith("Installing monai>=1.3 failed (exit status 1")


def wheel(folder: Path, name: str = "bratsxai_probe", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel, so real pip installs something offline."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{info}/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


def test_real_pip_logs_the_line_between_downloading_and_writing(tmp_path):
    """The cancel rule rests on pip announcing the writing phase; pip's own output, offline, into a folder."""
    wheel(tmp_path)
    target = tmp_path / "target"
    output = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(tmp_path), "--target",
         str(target), "--disable-pip-version-check", "bratsxai_probe"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    announced = f"{install.WRITING}: bratsxai_probe"
    assert announced in output, textwrap.indent("\n".join(output), "  ")
    assert output.index(announced) < output.index("Successfully installed bratsxai_probe-1.0")
    assert (target / "bratsxai_probe" / "__init__.py").exists()
