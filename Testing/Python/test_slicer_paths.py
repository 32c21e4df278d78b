"""The module finds the library and Resources/ in the source tree and in an installed extension alike."""
from __future__ import annotations

import pytest

import slicer_module
from BraTSXAIHelpers.paths import project_root, resource_path


def test_source_tree_layout():
    assert project_root(slicer_module.MODULE_DIR) == slicer_module.ROOT
    assert resource_path(slicer_module.MODULE_DIR, "UI/BraTSXAI.ui") == slicer_module.UI_FILE
    assert resource_path(slicer_module.MODULE_DIR, "Icons/BraTSXAI.png").is_file()


def test_installed_layout(tmp_path):
    """What the CMake copy step produces: module, helpers, library and resources in one folder."""
    for folder in ("BraTSXAIHelpers", "BraTSXAILib", "Resources/UI"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "BraTSXAI.py").write_text("")
    assert project_root(tmp_path) == tmp_path.resolve()
    assert resource_path(tmp_path, "UI/BraTSXAI.ui") == tmp_path.resolve() / "Resources" / "UI" / "BraTSXAI.ui"


def test_neither_layout_is_reported(tmp_path):
    (tmp_path / "module").mkdir()
    with pytest.raises(FileNotFoundError, match="BraTSXAILib"):
        project_root(tmp_path / "module")
