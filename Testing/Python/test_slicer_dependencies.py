"""What first use installs, and when a restart is needed."""
from __future__ import annotations

import sys

import pytest

import slicer_module
from BraTSXAIHelpers import dependencies


def test_requirements_are_the_package_dependencies():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((slicer_module.ROOT / "pyproject.toml").read_text())["project"]
    expected = set(project["dependencies"]) | set(project["optional-dependencies"]["openvino"])
    assert set(dependencies.REQUIREMENTS.values()) == expected


def test_missing_modules_and_pip_specifiers():
    installed = {"numpy", "scipy", "SimpleITK"}
    missing = dependencies.missing_modules(lambda name: object() if name in installed else None)
    assert missing == ["torch", "nibabel", "monai", "tqdm", "isal", "openvino"]
    assert dependencies.pip_requirements(missing) == ["nibabel>=5.0", "monai>=1.3", "tqdm>=4.60", "isal>=1.6",
                                                      "openvino>=2025.0"]
    assert dependencies.missing_modules() == []  # this environment has everything


def test_distribution_names():
    assert [dependencies.distribution_name(r) for r in ("SimpleITK>=2.3", "monai[itk]>=1.3", "torch")] == \
        ["SimpleITK", "monai", "torch"]


def test_versions_of_imported_packages_only():
    import numpy

    versions = dependencies.imported_distribution_versions({"numpy": numpy})
    assert versions == {"numpy": numpy.__version__}
    assert "numpy" in dependencies.imported_distribution_versions(sys.modules)


def test_restart_only_when_a_loaded_package_changed():
    before = {"numpy": "1.26.4", "scipy": "1.11.0"}
    assert dependencies.restart_needed(before, {"numpy": "1.26.4", "scipy": "1.11.0", "monai": "1.3.0"}) == []
    assert dependencies.restart_needed(before, {"numpy": "2.0.0", "scipy": "1.11.0"}) == ["numpy"]


def test_versions_below_the_minimum_count_as_unmet():
    installed = {"torch": "2.1.2+cu118", "numpy": "2.0.1", "scipy": "1.9.3", "SimpleITK": "2.3.1",
                 "nibabel": "5.2.0", "monai": "1.3.0rc1", "tqdm": "4.66.1", "isal": "1.7.0",
                 "openvino": "2024.6.0"}

    def version_of(name):
        if name not in installed:
            raise dependencies.importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    assert dependencies.unmet_modules(version_of) == ["torch", "scipy", "openvino"]
    del installed["tqdm"]
    assert dependencies.unmet_modules(version_of) == ["torch", "scipy", "tqdm", "openvino"]
    assert dependencies.version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert dependencies.minimum_version("monai>=1.3") == (1, 3) and dependencies.minimum_version("tqdm") == ()
    assert dependencies.unmet_modules() == []  # this environment has everything, new enough
