"""Does an input look like the data the bundled models were trained on? Warnings, not errors.

The bundled models saw skull-stripped, co-registered BraTS scans at 1 mm with scanner-unit intensities. On the
16 BraTS 2018 cases at hand the brain (non-zero voxels of any modality) measures 1315–1637 mL and fills 15–18 %
of the field of view, and the four modalities' brain masks overlap by 66–100 %. An input far outside those
ranges is segmented anyway, but the user is told why the result may be poor.
"""
from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

from .io import MODALITIES, Case
from .preprocess import brain_mask

BRAIN_ML = (900.0, 2200.0)  # generous bounds around 1315–1637 mL seen in training data
MAX_FIELD_FRACTION = 0.45  # skull-stripped scans leave most of the field of view at zero
MAX_VOXEL_MM, MAX_ANISOTROPY = 3.0, 3.0
MIN_MASK_AGREEMENT = 0.5  # voxels non-zero in all modalities / non-zero in any
SAME_IMAGE_CORRELATION = 0.999  # one image given twice; real pairs of sequences correlate 0.88 at most (30 cases)
SWAP_MARGIN = 0.1  # T2 and FLAIR swapped: see _contrast_warnings
TAIL_MARGIN = 0.5  # T1 and T1ce swapped: see _contrast_warnings
MAX_OUTLIER_FRACTION = 0.005  # brain voxels beyond 8 standard deviations
OUTLIER_SD = 8.0
STRIDE = 2  # every 2nd voxel per axis: the statistics barely change, the check costs 1/8


def _spacing_warnings(spacing: np.ndarray) -> list[str]:
    text = "×".join(f"{s:.2g}" for s in spacing)
    if spacing.max() > MAX_VOXEL_MM:
        return [f"voxels of {text} mm are much coarser than the 1 mm training data: small tumour parts may be missed"]
    if spacing.max() / spacing.min() > MAX_ANISOTROPY:
        return [f"voxels of {text} mm are strongly anisotropic (thick slices), unlike the isotropic training data"]
    return []


def _brain_warnings(brain: np.ndarray, voxel_ml: float) -> list[str]:
    warnings = []
    volume = brain.sum() * voxel_ml
    fraction = brain.mean()
    if fraction > MAX_FIELD_FRACTION:
        warnings.append(
            f"{fraction:.0%} of the field of view is non-zero: the images look not skull-stripped "
            "(the models expect zero outside the brain; strip the skull first, e.g. with HD-BET or SynthStrip)"
        )
    if not BRAIN_ML[0] <= volume <= BRAIN_ML[1]:
        warnings.append(
            f"the brain (non-zero voxels) measures {volume:.0f} mL, outside the {BRAIN_ML[0]:.0f}–{BRAIN_ML[1]:.0f} mL "
            "of adult skull-stripped scans the models were trained on"
        )
    return warnings


def _modality_warnings(arrays: dict[str, np.ndarray], brain: np.ndarray) -> list[str]:
    warnings = []
    common = np.logical_and.reduce([array != 0 for array in arrays.values()])
    agreement = common.sum() / max(1, brain.sum())
    if agreement < MIN_MASK_AGREEMENT:
        warnings.append(
            f"the four modalities cover different regions (only {agreement:.0%} of brain voxels are non-zero in all): "
            "are they co-registered and skull-stripped alike?"
        )
    for modality, array in arrays.items():
        values = array[brain].astype(np.float64)
        if (values < 0).mean() > MAX_OUTLIER_FRACTION:
            warnings.append(f"{modality} has negative intensities: the models expect raw scanner intensities (≥ 0)")
        scores = np.abs(values - values.mean()) / (values.std() or 1.0)
        if (scores > OUTLIER_SD).mean() > MAX_OUTLIER_FRACTION:
            warnings.append(f"{modality} has many extreme intensity outliers (> {OUTLIER_SD:g} SD): check for artefacts")
    return warnings


def _contrast_warnings(arrays: dict[str, np.ndarray], brain: np.ndarray) -> list[str]:
    """What the sequences' correlations inside the brain say of how they were given.

    - Two sequences that are one image (the same file or volume chosen twice, a T1 given as the T1ce): the network
      then lacks the contrast that one of them carries.
    - The T2 and the FLAIR swapped: CSF is bright on T2 and dark on FLAIR, T1 and T1ce, so the T2 correlates less
      with the T1-weighted images than the FLAIR does. On the 30 cases in ../shared/data corr(T1, FLAIR) −
      corr(T1, T2) and the same with T1ce are never both below 0.04, and swapping the two files makes both fall
      below −SWAP_MARGIN in 29 of them.
    - The T1 and the T1ce swapped: contrast makes vessels and enhancing tumour bright, so the T1ce's brightest
      voxels lie further above its median (`_upper_tail`). On the same 30 cases that reach exceeds the T1's by
      0.07–4.4 standard deviations; swapping the files makes it fall short by more than TAIL_MARGIN in 29.
    """
    values = [arrays[m][brain].astype(np.float64) for m in MODALITIES]
    if min(v.size for v in values) < 2 or min(v.std() for v in values) == 0:  # too few voxels, or a flat image
        return []
    matrix, index = np.corrcoef(np.stack(values)), {m: i for i, m in enumerate(MODALITIES)}

    def correlation(first: str, second: str) -> float:
        return matrix[index[first], index[second]]

    warnings = [f"{first} and {second} are the same image: give each sequence its own scan, or the regions that "
                "sequence shows (e.g. enhancement on T1ce) will be poor"
                for first, second in itertools.combinations(MODALITIES, 2)
                if correlation(first, second) >= SAME_IMAGE_CORRELATION]
    t2_flair_gaps = [correlation(t1, "flair") - correlation(t1, "t2") for t1 in ("t1", "t1ce")]
    if max(t2_flair_gaps) < -SWAP_MARGIN:
        warnings.append("t2 and flair look swapped (CSF is dark on the image given as t2 and bright on the one given "
                        "as flair): check which file is which")
    reach = dict(zip(MODALITIES, map(_upper_tail, values)))
    if reach["t1ce"] - reach["t1"] < -TAIL_MARGIN:
        warnings.append("t1 and t1ce look swapped (the image given as t1 has the bright vessels and enhancement of a "
                        "contrast scan): check which file is which")
    return warnings


def _upper_tail(values: np.ndarray) -> float:
    """How far the brightest 0.5 % of brain voxels lie above the median, in standard deviations."""
    return float((np.percentile(values, 99.5) - np.median(values)) / values.std())


def input_warnings(case: Case) -> list[str]:
    """Reasons to doubt a segmentation of this case, in words a user can act on (empty when it looks typical)."""
    spacing = np.asarray(case.reference_image.GetSpacing(), dtype=float)
    sample = (slice(None, None, STRIDE),) * 3
    arrays = {m: sitk.GetArrayViewFromImage(case.images[m])[sample] for m in MODALITIES}
    brain = brain_mask(case)[sample]
    voxel_ml = float(np.prod(spacing)) * STRIDE**3 / 1000.0
    return (_spacing_warnings(spacing) + _brain_warnings(brain, voxel_ml) + _modality_warnings(arrays, brain)
            + _contrast_warnings(arrays, brain))
