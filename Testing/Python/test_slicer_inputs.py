"""Choosing T1/T1ce/T2/FLAIR among loaded volumes by name, rejecting duplicates, naming the written files."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import slicer_module  # noqa: F401  (makes BraTSXAIHelpers importable)
from BraTSXAIHelpers import inputs
from BraTSXAILib import io


@pytest.mark.parametrize("name, modality", [
    ("Brats18_2013_2_1_t1", "t1"),
    ("Brats18_2013_2_1_t1ce", "t1ce"),
    ("Brats18_2013_2_1_T2", "t2"),
    ("Brats18_2013_2_1_flair", "flair"),
    ("BraTS-GLI-00001-000-t1n", "t1"),
    ("BraTS-GLI-00001-000-t1c", "t1ce"),
    ("BraTS-GLI-00001-000-t2w", "t2"),
    ("BraTS-GLI-00001-000-t2f", "flair"),
    ("Brats18_2013_2_1_t1ce_1", "t1ce"),  # Slicer's suffix for a second copy
    ("FLAIR", "flair"),
    ("patient 7 T1Gd", "t1ce"),
    ("Brats18_2013_2_1_seg", None),
    ("t1ce_heatmap_ET", "t1ce"),
    ("MRHead", None),
    ("t1 post", "t1"),
])
def test_modality_from_volume_name(name, modality):
    assert inputs.modality_of_name(name) == modality


def test_keywords_are_the_library_file_suffixes():
    """A file the library reads as modality m gives a volume name the module reads as m, and back."""
    for modality, keywords in inputs.KEYWORDS.items():
        for keyword in keywords:
            assert io.modality_of(f"Case_{keyword}.nii.gz") == modality
            assert inputs.modality_of_name(f"Case_{keyword}") == modality
    assert inputs.MODALITIES == io.MODALITIES


def test_assignment_fills_empty_slots_and_keeps_choices():
    volumes = [("n1", "case_t1"), ("n2", "case_t1ce"), ("n3", "case_t2"), ("n4", "case_flair"), ("n5", "other_t1")]
    assert inputs.assign_by_name(volumes) == {"t1": "n1", "t1ce": "n2", "t2": "n3", "flair": "n4"}
    kept = inputs.assign_by_name(volumes, {"t1": "n5", "t1ce": None, "t2": None, "flair": None})
    assert kept == {"t1": "n5", "t1ce": "n2", "t2": "n3", "flair": "n4"}
    # a volume the user already put in one slot is not proposed for another
    assert inputs.assign_by_name([("n2", "case_t1ce")], {"t1": "n2"})["t1ce"] is None
    assert inputs.assign_by_name([("x", "MRHead")]) == {m: None for m in inputs.MODALITIES}


def test_problems_name_missing_and_duplicated_inputs():
    assert inputs.input_problems({"t1": "a", "t1ce": "b", "t2": "c", "flair": "d"}) == []
    problems = inputs.input_problems({"t1": "a", "t1ce": "a", "t2": None, "flair": "d"})
    assert problems == ["Select the T2 volume.", "T1 and T1ce are the same volume; each sequence needs its own."]


@pytest.mark.parametrize("name, case_id", [
    ("Brats18_2013_2_1_t1ce", "Brats18_2013_2_1"),
    ("BraTS-GLI-00001-000-t1c", "BraTS-GLI-00001-000"),
    ("t1ce", "case"),
    ("scan (2)/t1ce", "scan_2"),
])
def test_case_id_is_file_safe(name, case_id):
    assert inputs.case_id_from_name(name) == case_id


def test_written_input_files_are_found_by_the_library(tmp_path):
    case_id = inputs.case_id_from_name("Brats18_2013_2_1_t1ce")
    folder = tmp_path / case_id
    folder.mkdir()
    image = sitk.GetImageFromArray(np.ones((4, 5, 6), np.float32))
    for modality in inputs.MODALITIES:
        sitk.WriteImage(image, str(folder / inputs.input_file_name(case_id, modality)))
    [case] = io.discover_cases(folder)
    assert case.case_id == case_id
    assert {m: p.name for m, p in case.paths.items()} == {m: f"{case_id}_{m}.nii" for m in inputs.MODALITIES}
