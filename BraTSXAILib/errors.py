"""The one error type for problems in what the user gave: it carries what is wrong, where, and what to do."""
from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input: shown to the user as one line, never as a traceback."""

    def __init__(self, message: str, hint: str = "", path: str | Path | None = None):
        super().__init__(message)
        self.message, self.hint, self.path = message, hint, None if path is None else str(path)

    def one_line(self) -> str:
        where = f" ({self.path})" if self.path else ""
        hint = f" — {self.hint}" if self.hint else ""
        return f"error: {self.message}{where}{hint}"

    def as_json(self) -> dict:
        return {"error": self.message, "hint": self.hint, "path": self.path}
