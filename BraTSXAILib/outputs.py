"""Writing outputs so that nothing half-written is ever left under a final name."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import SimpleITK as sitk


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | Path):
    """Yield a temporary path beside `path`; rename it to `path` only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)  # keep .nii.gz so writers pick the right format
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name.split('.')[0]}-", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes owner-only files; outputs get the usual rights
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_image(image: sitk.Image, path: str | Path) -> Path:
    with atomic_write(path) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=True)
    return Path(path)


def write_json(data: dict, path: str | Path) -> Path:
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2) + "\n")
    return Path(path)
