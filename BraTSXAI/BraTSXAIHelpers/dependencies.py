"""What the library needs that Slicer's Python lacks (or has too old), and whether installing it calls for a restart.

PyTorch is installed with light-the-torch, as the PyTorch extension does (it picks the CUDA build that fits the
computer); the rest with pip (install.py runs both). A restart is needed only when pip replaced a package that
Slicer had already imported.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable, Mapping

# import name -> pip requirement: pyproject.toml's [project] dependencies and its `openvino` extra (the faster CPU
# backend, a wheel that installs anywhere Slicer runs).
REQUIREMENTS = {
    "torch": "torch>=2.2",
    "numpy": "numpy>=1.24",
    "scipy": "scipy>=1.10",
    "SimpleITK": "SimpleITK>=2.3",
    "nibabel": "nibabel>=5.0",
    "monai": "monai>=1.3",
    "tqdm": "tqdm>=4.60",
    "isal": "isal>=1.6",
    "openvino": "openvino>=2025.0",
}


def distribution_name(requirement: str) -> str:
    """"SimpleITK>=2.3" -> "SimpleITK"."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]


def missing_modules(find_spec: Callable[[str], object] = importlib.util.find_spec) -> list[str]:
    """Import names of the requirements that cannot be imported here."""
    return [name for name in REQUIREMENTS if find_spec(name) is None]


def version_tuple(version: str) -> tuple[int, ...]:
    """"2.13.0+cpu" -> (2, 13, 0); "1.26rc1" -> (1, 26): the leading release numbers, enough for a minimum."""
    numbers = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
        if digits.group() != part:
            break
    return tuple(numbers)


def minimum_version(requirement: str) -> tuple[int, ...]:
    """The `>=` bound of a requirement as a version tuple, () when it names none."""
    bound = re.search(r">=\s*([0-9][^,;\s]*)", requirement)
    return version_tuple(bound.group(1)) if bound else ()


def unmet_modules(version_of: Callable[[str], str] = importlib.metadata.version) -> list[str]:
    """Import names of requirements not installed, or installed older than the version pyproject.toml asks for."""
    unmet = []
    for name, requirement in REQUIREMENTS.items():
        try:
            installed = version_of(distribution_name(requirement))
        except importlib.metadata.PackageNotFoundError:
            unmet.append(name)
            continue
        if version_tuple(installed) < minimum_version(requirement):
            unmet.append(name)
    return unmet


def pip_requirements(modules: Iterable[str]) -> list[str]:
    """pip specifiers for missing modules other than torch (which light-the-torch installs)."""
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
