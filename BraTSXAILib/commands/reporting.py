"""What the commands tell the user while they work: a tqdm bar on stderr, or JSON lines on stdout for Slicer.

JSON lines (`--json-progress`) follow docs/INTERFACES.md: `{"progress": 0.42, "stage": "..."}` while working,
`{"done": true, "manifest": "..."}` at the end, `{"error": "...", "hint": "..."}` on failure. Without it, the
bar is drawn only when stderr is a terminal, and results are plain text on stdout.
"""
from __future__ import annotations

import json
import sys

from tqdm import tqdm

from ..errors import InputError

STEPS = 1000


class Reporter:
    def __init__(self, json_lines: bool = False):
        self.json_lines = json_lines
        self.bar: tqdm | None = None

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def progress(self, fraction: float, stage: str) -> None:
        if self.json_lines:
            self.event({"progress": round(float(fraction), 4), "stage": stage})
            return
        if self.bar is None:
            self.bar = tqdm(total=STEPS, file=sys.stderr, disable=None, leave=False,
                            bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        self.bar.set_description_str(stage, refresh=False)
        self.bar.update(max(0, round(fraction * STEPS) - self.bar.n))

    def event(self, data: dict) -> None:
        """One JSON line on stdout (only with --json-progress)."""
        if self.json_lines:
            print(json.dumps(data), flush=True)

    def say(self, text: str) -> None:
        """Text for people: stdout normally, stderr with --json-progress so stdout stays pure JSON."""
        self.close()
        print(text, file=sys.stderr if self.json_lines else sys.stdout, flush=True)

    def problem(self, text: str) -> None:
        """A problem that does not stop the command (one case of a batch): always on stderr."""
        self.close()
        print(text, file=sys.stderr, flush=True)

    def error(self, error: InputError) -> None:
        if self.json_lines:
            self.event(error.as_json())
        else:
            self.close()
            print(error.one_line(), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
