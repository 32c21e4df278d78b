"""Reading the `--json-progress` lines of `brats-xai segment` (docs/INTERFACES.md, "Progress lines").

One JSON object per stdout line: `{"progress": 0.42, "stage": "..."}`, then `{"done": true, "manifest": "..."}`,
or `{"error": "...", "hint": "..."}`. Anything else the child prints (warnings on stderr, which the module merges
into the same stream) is kept as plain log text rather than dropped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1
    stage: str


@dataclass(frozen=True)
class Done:
    manifest: str


@dataclass(frozen=True)
class Failure:
    message: str
    hint: str = ""
    path: str = ""

    def text(self) -> str:
        """One line, as the CLI prints it: message (path) — hint."""
        where = f" ({self.path})" if self.path else ""
        return f"{self.message}{where} — {self.hint}" if self.hint else f"{self.message}{where}"


@dataclass(frozen=True)
class LogLine:
    text: str



def parse_line(line: str):
    """One output line -> Progress, Done, Failure or LogLine."""
    text = line.rstrip("\r\n")
    try:
        data = json.loads(text)
    except ValueError:
        return LogLine(text)
    if not isinstance(data, dict):
        return LogLine(text)
    if "error" in data:
        return Failure(str(data["error"]), str(data.get("hint") or ""), str(data.get("path") or ""))
    if data.get("done") and "manifest" in data:
        return Done(str(data["manifest"]))
    if "progress" in data:
        try:
            fraction = min(max(float(data["progress"]), 0.0), 1.0)
        except (TypeError, ValueError):
            return LogLine(text)
        return Progress(fraction, str(data.get("stage", "")))
    return LogLine(text)


def percent(fraction: float) -> int:
    """Progress-bar value 0..100."""
    return int(round(100 * min(max(fraction, 0.0), 1.0)))
