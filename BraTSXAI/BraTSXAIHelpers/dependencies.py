"""What the library needs that Slicer's Python lacks, and whether installing it calls for a restart.

PyTorch is installed through the PyTorch extension (it picks the CUDA build that fits the computer); the rest
with pip. A restart is needed only when pip replaced a package that Slicer had already imported.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable, Mapping

# import name -> pip requirement; the same as pyproject.toml [project] dependencies.
REQUIREMENTS = {
    "torch": "torch>=2.2",
    "numpy": "numpy>=1.24",
    "scipy": "scipy>=1.10",
    "SimpleITK": "SimpleITK>=2.3",
    "nibabel": "nibabel>=5.0",
    "monai": "monai>=1.3",
    "tqdm": "tqdm>=4.60",
}
TORCH_VERSION = REQUIREMENTS["torch"][len("torch"):]  # ">=2.2", as PyTorchUtils.installTorch expects


def distribution_name(requirement: str) -> str:
    """"SimpleITK>=2.3" -> "SimpleITK"."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]


def missing_modules(find_spec: Callable[[str], object] = importlib.util.find_spec) -> list[str]:
    """Import names of the requirements that cannot be imported here."""
    return [name for name in REQUIREMENTS if find_spec(name) is None]


def pip_requirements(modules: Iterable[str]) -> list[str]:
    """pip specifiers for missing modules other than torch (which the PyTorch extension installs)."""
    return [REQUIREMENTS[m] for m in modules if m != "torch"]


def imported_distribution_versions(modules: Mapping[str, object] | None = None) -> dict[str, str]:
    """Installed version of every requirement already imported in this process."""
    modules = sys.modules if modules is None else modules
    importlib.invalidate_caches()  # see what pip has just written
    versions = {}
    for name in REQUIREMENTS:
        if name in modules:
            try:
                versions[name] = importlib.metadata.version(distribution_name(REQUIREMENTS[name]))
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def restart_needed(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Packages imported before an install whose installed version then changed."""
    return sorted(name for name, version in before.items() if after.get(name, version) != version)
