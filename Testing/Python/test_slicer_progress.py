"""Progress lines of `--json-progress` (docs/INTERFACES.md) become events; other output is kept as log text."""
from __future__ import annotations

import pytest

import slicer_module  # noqa: F401
from BraTSXAIHelpers.progress import Done, Failure, LogLine, Progress, parse_line, percent


@pytest.mark.parametrize("line, event", [
    ('{"progress": 0.42, "stage": "Grad-CAM ET (resunet)"}\n', Progress(0.42, "Grad-CAM ET (resunet)")),
    ('{"progress": 1.5, "stage": "x"}', Progress(1.0, "x")),
    ('{"progress": -0.1}', Progress(0.0, "")),
    ('{"done": true, "manifest": "/tmp/out/manifest.json", "skipped": false}', Done("/tmp/out/manifest.json")),
    ('{"error": "input does not exist", "hint": "check the path", "path": "/x"}',
     Failure("input does not exist", "check the path", "/x")),
    ('{"error": "unexpected failure", "hint": null}', Failure("unexpected failure", "")),
    ("UserWarning: something odd\r\n", LogLine("UserWarning: something odd")),
    ('{"summary": {"done": 1}}', LogLine('{"summary": {"done": 1}}')),
    ('[1, 2]', LogLine("[1, 2]")),
    ('{"progress": "half"}', LogLine('{"progress": "half"}')),
])
def test_lines_become_events(line, event):
    assert parse_line(line) == event


def test_failure_text_is_the_cli_error_line():
    assert Failure("bad", "fix it", "/data/case").text() == "bad (/data/case) — fix it"
    assert Failure("bad", "fix it").text() == "bad — fix it"
    assert Failure("bad").text() == "bad"


def test_percent_is_a_clamped_progress_bar_value():
    assert [percent(f) for f in (0.0, 0.004, 0.425, 1.0, 2.0, -1.0)] == [0, 0, 42, 100, 100, 0]
