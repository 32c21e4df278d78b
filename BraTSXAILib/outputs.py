"""Reading and writing the project's files: nothing half-written under a final name, one clear error for bad JSON."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import SimpleITK as sitk

from .errors import InputError


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


def read_json(path: str | Path, what: str, missing_hint: str, invalid_hint: str = "fix the file"):
    """The JSON value in `path`, or an InputError saying that the `what` is missing or not readable JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"the {what} does not exist", missing_hint, path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"the {what} is not readable JSON ({error})", invalid_hint, path) from None
