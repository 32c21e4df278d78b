"""Where the library and the shared resources are, in the source tree and in an installed extension.

Source tree: `<root>/BraTSXAI/BraTSXAI.py` beside `<root>/BraTSXAILib/` and `<root>/Resources/`.
Installed extension: CMake copies the three into one folder, `<modules>/BraTSXAI.py`, `<modules>/BraTSXAILib/`,
`<modules>/Resources/`, so the library finds `Resources/Models` the same way in both.
"""
from __future__ import annotations

from pathlib import Path

LIBRARY_PACKAGE = "BraTSXAILib"


def project_root(module_dir: str | Path) -> Path:
    """The folder that holds `BraTSXAILib/` and `Resources/` for a module file in `module_dir`."""
    module_dir = Path(module_dir).resolve()
    for candidate in (module_dir, module_dir.parent):
        if (candidate / LIBRARY_PACKAGE).is_dir() and (candidate / "Resources").is_dir():
            return candidate
    raise FileNotFoundError(
        f"{LIBRARY_PACKAGE}/ and Resources/ are neither in {module_dir} (installed extension) "
        f"nor in {module_dir.parent} (source tree)"
    )


def resource_path(module_dir: str | Path, relative: str) -> Path:
    """A file under the shared `Resources/` folder, e.g. `UI/BraTSXAI.ui` or `Icons/BraTSXAI.png`."""
    return project_root(module_dir) / "Resources" / relative
