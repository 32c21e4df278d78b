"""The train/validation/test split: seeded, written once to JSON, reused by resume and evaluation."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from BraTSXAILib.errors import InputError
from BraTSXAILib.outputs import read_json, write_json

SPLIT_FORMAT = "brats-xai-split/1"
SPLITS = ("train", "validation", "test")


def make_split(case_ids: Sequence[str], shares: Sequence[float] = (0.7, 0.2, 0.1), seed: int = 0) -> dict:
    """Shuffle the sorted ids with `seed`; validation and test get round(share × n) cases (at least one each
    when the share is positive and at least three cases exist), training the rest."""
    ids = sorted(case_ids)
    if len(set(ids)) != len(ids):
        raise InputError("two cases share one id", "give every case folder a unique name")
    count = len(ids)
    minimum = 1 if count >= 3 else 0
    sizes = [max(minimum if share > 0 else 0, round(share * count)) for share in shares[1:]]
    if count - sum(sizes) < 1 or sizes[0] < 1:
        raise InputError(
            f"{count} labelled case(s) cannot be split into training and validation",
            "give at least 3 labelled cases (or a --split file)",
        )
    order = [ids[i] for i in np.random.default_rng(seed).permutation(count)]
    validation, test = order[: sizes[0]], order[sizes[0]: sizes[0] + sizes[1]]
    train = order[sizes[0] + sizes[1]:]
    return {"format": SPLIT_FORMAT, "seed": seed, "shares": list(shares),
            "train": sorted(train), "validation": sorted(validation), "test": sorted(test)}


def write_split(split: dict, path: str | Path) -> Path:
    return write_json(split, path)


def read_split(path: str | Path, available: Sequence[str] | None = None) -> dict:
    """Read a split file; with `available`, every listed case must be among the cases found in the data."""
    path = Path(path)
    split = read_json(path, "split file", "check the path given to --split", "fix or delete the file")
    if not isinstance(split, dict) or not all(isinstance(split.get(name), list) for name in SPLITS):
        raise InputError("the split file lacks train/validation/test lists", f"expected keys {', '.join(SPLITS)}", path)
    listed = [case for name in SPLITS for case in split[name]]
    if len(set(listed)) != len(listed):
        raise InputError("a case is listed twice in the split file", "each case belongs to one split only", path)
    if not split["train"] or not split["validation"]:
        raise InputError("the split file has no training or no validation case", "list at least one in each", path)
    if available is not None:
        missing = sorted(set(listed) - set(available))
        if missing:
            raise InputError(
                f"the split names {len(missing)} case(s) not found in the data, e.g. {missing[0]}",
                "point --data at the folder the split was made for",
                path,
            )
    return split
