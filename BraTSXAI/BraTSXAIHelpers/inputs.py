"""Which loaded volume is which MRI sequence, judged by its name as BraTS names its files.

Slicer names a volume loaded from `Brats18_2013_2_1_t1ce.nii.gz` "Brats18_2013_2_1_t1ce" and one loaded from
`BraTS-GLI-00001-000-t2f.nii.gz` "BraTS-GLI-00001-000-t2f". The last name token that is a sequence keyword decides
(so Slicer's duplicate suffix in "..._t1ce_1" does not hide it). Keywords match `BraTSXAILib.io` file naming.
"""
from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping

MODALITIES = ("t1", "t1ce", "t2", "flair")  # network input order, as BraTSXAILib.io.MODALITIES
MODALITY_LABELS = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR"}
KEYWORDS = {
    "t1": ("t1", "t1n"),
    "t1ce": ("t1ce", "t1c", "t1gd"),
    "t2": ("t2", "t2w"),
    "flair": ("flair", "t2f"),
}
_KEYWORD_TO_MODALITY = {keyword: modality for modality, keywords in KEYWORDS.items() for keyword in keywords}
_TOKEN_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


def modality_of_name(name: str) -> str | None:
    """"t1", "t1ce", "t2" or "flair" from a volume name (case-insensitive), or None if it names none."""
    for token in reversed(_TOKEN_SEPARATORS.split(name.lower())):
        if token in _KEYWORD_TO_MODALITY:
            return _KEYWORD_TO_MODALITY[token]
    return None


def assign_by_name(candidates: Iterable[tuple[Hashable, str]],
                   current: Mapping[str, Hashable | None] | None = None) -> dict[str, Hashable | None]:
    """Fill each empty modality slot with the first unused candidate whose name announces that modality.

    `candidates` are (key, name) pairs, e.g. (node ID, node name); `current` holds the user's choices by key.
    Choices already made are kept, and a volume chosen for one slot is never proposed for another.
    """
    chosen = {modality: (current or {}).get(modality) for modality in MODALITIES}
    used = {key for key in chosen.values() if key is not None}
    for key, name in candidates:
        modality = modality_of_name(name)
        if modality and chosen[modality] is None and key not in used:
            chosen[modality] = key
            used.add(key)
    return chosen


def input_problems(chosen: Mapping[str, Hashable | None]) -> list[str]:
    """What stops a run: a missing sequence, or one volume (same key) chosen for two sequences."""
    problems = [f"Select the {MODALITY_LABELS[m]} volume." for m in MODALITIES if chosen.get(m) is None]
    first_use: dict[Hashable, str] = {}
    for modality in MODALITIES:
        key = chosen.get(modality)
        if key is None:
            continue
        if key in first_use:
            problems.append(
                f"{MODALITY_LABELS[first_use[key]]} and {MODALITY_LABELS[modality]} are the same volume; "
                "each sequence needs its own."
            )
        else:
            first_use[key] = modality
    return problems


def case_id_from_name(name: str) -> str:
    """A file-safe case id from a volume name, without its sequence suffix ("Brats18_1_t1ce" -> "Brats18_1")."""
    tokens = [t for t in re.split(r"([^A-Za-z0-9]+)", name.strip()) if t]
    while tokens and (tokens[-1].lower() in _KEYWORD_TO_MODALITY or _TOKEN_SEPARATORS.fullmatch(tokens[-1])):
        tokens.pop()
    safe = re.sub(r"[^A-Za-z0-9_\-]+", "_", "".join(tokens)).strip("_-")
    return safe or "case"


def input_file_name(case_id: str, modality: str) -> str:
    """The file name the module writes a volume to: BraTS 2018 naming, uncompressed NIfTI (fast to write)."""
    return f"{case_id}_{modality}.nii"
