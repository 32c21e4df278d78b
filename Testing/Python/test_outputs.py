"""Atomic writing: a finished file appears whole, with the usual permissions; a failed one leaves nothing."""
import os
import stat

import pytest

from BraTSXAILib.outputs import atomic_write, write_json


def test_completed_write_is_renamed_with_umask_permissions(tmp_path):
    path = write_json({"a": 1}, tmp_path / "sub" / "result.json")
    assert path.read_text().strip().startswith("{")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "labels.nii.gz"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as temporary:
            assert temporary.name.endswith(".nii.gz") and temporary.parent == tmp_path
            temporary.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.nii.gz"]
