"""A synthetic BraTS-like case whose ground truth is known exactly: for the demo, the tests and the Slicer self-test.

A skull-stripped ellipsoidal brain with white matter, a grey-matter cortex, ventricles and sulcal CSF, and a
glioma: necrotic core (label 1) inside an enhancing rim (label 4) inside peritumoral edema (label 2). Each tissue
has the contrast it has in real scans:

| tissue        | T1     | T1ce   | T2     | FLAIR  |
| ------------- | ------ | ------ | ------ | ------ |
| white matter  | bright | bright | dark   | mid    |
| grey matter   | mid    | mid    | mid    | mid    |
| CSF           | dark   | dark   | bright | dark   |
| edema (2)     | low    | low    | bright | bright |
| enh. rim (4)  | low    | bright | mid    | bright |
| necrosis (1)  | dark   | dark   | bright | mid    |

Intensities are on a 0..~1000 scanner-like scale with smooth noise, white noise, partial-volume blur and a
multiplicative bias field. Tumour position, size and shape follow `seed`.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .io import MODALITIES, Case, CaseSource
from .outputs import write_image

BACKGROUND, WHITE, GREY, CSF, EDEMA, RIM, NECROSIS = range(7)
# Mean intensity of each tissue (rows: background, WM, GM, CSF, edema, enhancing rim, necrosis) per modality.
CONTRAST = {
    "t1": (0, 760, 560, 260, 420, 470, 300),
    "t1ce": (0, 720, 540, 240, 430, 960, 260),
    "t2": (0, 330, 500, 950, 820, 600, 900),
    "flair": (0, 420, 520, 120, 900, 720, 560),
}
TISSUE_LABEL = {EDEMA: 2, RIM: 4, NECROSIS: 1}
NAMINGS = {
    "2018": {"t1": "_t1", "t1ce": "_t1ce", "t2": "_t2", "flair": "_flair", "seg": "_seg"},
    "2023": {"t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "flair": "-t2f", "seg": "-seg"},
}
ENHANCING_LABEL = {"2018": 4, "2023": 3}  # BraTS 2023+ label maps number enhancing tumour 3
# An adult-sized field of view (144×168×144 mm at 1.5 mm, a brain of about 1.5 L as in BraTS) for the demo;
# the smaller default keeps tests fast.
ADULT_SHAPE = (96, 112, 96)


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance noise correlated over ~`sigma` voxels."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return noise / (noise.std() + 1e-12)


def _radius(points: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Normalised ellipsoidal radius: < 1 inside the ellipsoid with these semi-axes (voxels)."""
    return np.sqrt(sum(((points[i] - centre[i]) / radii[i]) ** 2 for i in range(3)))


def _tissues(shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Tissue class per voxel (z, y, x)."""
    shape = np.array(shape)
    points = np.indices(tuple(shape), dtype=np.float32)
    centre = (shape - 1) / 2.0
    wobble = _smooth_noise(rng, tuple(shape), 3.0)  # irregular, gyrus-like boundaries
    brain_r = _radius(points, centre, shape * np.array([0.42, 0.44, 0.40])) + 0.03 * wobble
    tissue = np.zeros(tuple(shape), dtype=np.uint8)
    tissue[brain_r < 1.0] = GREY
    tissue[brain_r < 0.80 + 0.06 * wobble] = WHITE
    tissue[(brain_r > 0.93) & (brain_r < 1.0) & (wobble > 0.9)] = CSF  # sulci
    fissure = np.abs(points[2] - centre[2] - 1.5 * wobble) < 0.8
    tissue[fissure & (brain_r < 1.0) & (brain_r > 0.35)] = CSF  # interhemispheric fissure between the hemispheres
    for side in (-1, 1):  # lateral ventricles either side of the midline (x is the last axis)
        ventricle = centre + np.array([0.05, -0.02, side * 0.07]) * shape
        tissue[_radius(points, ventricle, shape * np.array([0.10, 0.16, 0.04])) < 1.0] = CSF

    hemisphere = rng.choice((-1, 1))
    tumour_centre = centre + shape * np.array(
        [rng.uniform(-0.12, 0.12), rng.uniform(-0.15, 0.15), hemisphere * rng.uniform(0.12, 0.2)]
    )
    size = rng.uniform(0.09, 0.13) * shape.min()
    stretch = rng.uniform(0.8, 1.25, size=3)
    shape_noise = _smooth_noise(rng, tuple(shape), 4.0)
    tumour_r = _radius(points, tumour_centre, size * stretch) + 0.08 * shape_noise
    inside_brain = brain_r < 0.97
    edema_extent = rng.uniform(1.5, 2.1)
    tissue[(tumour_r < edema_extent + 0.25 * shape_noise) & inside_brain] = EDEMA
    tissue[(tumour_r < 1.0) & inside_brain] = RIM
    tissue[(tumour_r < rng.uniform(0.5, 0.7)) & inside_brain] = NECROSIS
    return tissue


def _bias_field(shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative intensity inhomogeneity of about ±10 %."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    a = rng.uniform(-0.08, 0.08, size=4)
    return 1.0 + a[0] * x + a[1] * y + a[2] * z + a[3] * (x * x + y * y - 0.5)


def _label(tissue: np.ndarray) -> np.ndarray:
    label = np.zeros(tissue.shape, dtype=np.uint8)
    for tissue_class, value in TISSUE_LABEL.items():
        label[tissue == tissue_class] = value
    return label


def _image(array: np.ndarray, spacing_zyx: Sequence[float]) -> sitk.Image:
    """LPS image centred on the physical origin, like a skull-stripped BraTS volume."""
    image = sitk.GetImageFromArray(array)
    spacing = tuple(float(s) for s in reversed(spacing_zyx))
    image.SetSpacing(spacing)
    image.SetOrigin(tuple(-0.5 * (n - 1) * s for n, s in zip(image.GetSize(), spacing)))
    return image


def make_phantom(shape: Sequence[int] = (64, 72, 64), spacing: Sequence[float] = (1.5, 1.5, 1.5),
                 seed: int = 0) -> Case:
    """An in-memory BraTS-like Case (shape and spacing in array order z, y, x) with its exact label map."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in shape)
    tissue = _tissues(shape, rng)
    brain = tissue != BACKGROUND
    bias = _bias_field(shape, rng)
    images = {}
    for modality in MODALITIES:
        means = np.array(CONTRAST[modality], dtype=np.float32)
        texture = 1.0 + 0.05 * _smooth_noise(rng, shape, 2.0)
        clean = ndimage.gaussian_filter(means[tissue] * texture, 0.6)  # partial-volume blur at tissue borders
        noisy = clean * bias + rng.normal(0.0, 12.0, size=shape).astype(np.float32)
        values = np.where(brain, np.clip(np.round(noisy), 1, 32767), 0).astype(np.float32)
        images[modality] = _image(values, spacing)
    label = _image(_label(tissue), spacing)
    case_id = f"BraTSXAI-Phantom-{seed}"
    return Case(case_id, images, "t1ce", label, CaseSource(case_id, {}, None), [])


def write_phantom(folder: str | Path, case_id: str = "BraTSXAI-Phantom", naming: str = "2018", seed: int = 0,
                  shape: Sequence[int] = (64, 72, 64), spacing: Sequence[float] = (1.5, 1.5, 1.5)) -> Path:
    """Write a phantom as a BraTS case folder `folder/case_id/` and return it.

    int16 NIfTI images named as in BraTS 2018 (`_t1ce`, enhancing tumour labelled 4) or 2023 (`-t1c`, labelled 3).
    """
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {', '.join(NAMINGS)}, got {naming!r}")
    case = make_phantom(shape, spacing, seed)
    target = Path(folder) / case_id
    suffixes = NAMINGS[naming]
    for modality in MODALITIES:
        write_image(sitk.Cast(case.images[modality], sitk.sitkInt16), target / f"{case_id}{suffixes[modality]}.nii.gz")
    label = case.label
    if ENHANCING_LABEL[naming] != 4:
        label = sitk.ChangeLabel(label, changeMap={4: ENHANCING_LABEL[naming]})
    write_image(label, target / f"{case_id}{suffixes['seg']}.nii.gz")
    return target
