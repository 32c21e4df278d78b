"""The sample case a new user can segment at once: the library's synthetic phantom as four named volumes.

BraTSXAILib.phantom needs numpy, scipy and SimpleITK only (no torch), so it runs in Slicer's own process. The
widget registers `loadPhantomCase` with Slicer's SampleData module as a custom downloader.
"""
from __future__ import annotations

import slicer

from BraTSXAIHelpers import geometry, inputs

CASE_ID = "BraTSXAI-Phantom"  # = BraTSXAILib.commands.demo.CASE_ID
SHAPE = (64, 72, 64)  # voxels (z, y, x): a small head, segmented in seconds on a CPU
SPACING = (2.0, 2.0, 2.0)  # mm


def loadPhantomCase(shape=SHAPE, spacing=SPACING, seed: int = 0, withTruth: bool = True) -> dict:
    """Add the phantom's T1, T1ce, T2 and FLAIR (named `<case>_t1` ...) and its truth label map (`"seg"`)."""
    import SimpleITK as sitk

    from BraTSXAILib.phantom import make_phantom

    case = make_phantom(shape=shape, spacing=spacing, seed=seed)
    loaded = {}
    for modality in inputs.MODALITIES:
        image = case.images[modality]
        loaded[modality] = slicer.util.addVolumeFromArray(sitk.GetArrayFromImage(image), geometry.ijk_to_ras(image),
                                                          f"{CASE_ID}_{modality}")
    if withTruth:
        loaded["seg"] = slicer.util.addVolumeFromArray(sitk.GetArrayFromImage(case.label),
                                                       geometry.ijk_to_ras(case.label), f"{CASE_ID}_seg",
                                                       "vtkMRMLLabelMapVolumeNode")
    return loaded
