"""Where the Slicer module's files are, and its Slicer-free helpers made importable for the test_slicer_* tests."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "BraTSXAI"
MODULE_FILE = MODULE_DIR / "BraTSXAI.py"
HELPERS_DIR = MODULE_DIR / "BraTSXAIHelpers"
UI_FILE = ROOT / "Resources" / "UI" / "BraTSXAI.ui"
ICON_FILE = ROOT / "Resources" / "Icons" / "BraTSXAI.png"

if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))
