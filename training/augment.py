"""Random flips, rotations, scaling and intensity changes for training patches, driven by the caller's generator
(reproducible)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

SCALE = 0.1  # per-channel intensity scale drawn from [1 - SCALE, 1 + SCALE]
SHIFT = 0.1  # per-channel shift drawn from [-SHIFT, SHIFT], in normalised units (z-score SDs or min-max range)


def random_flip(image: np.ndarray, regions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mirror image (C, z, y, x) and regions (3, z, y, x) together along each spatial axis with probability ½.

    All three axes, as nnU-Net does for BraTS: tumours appear anywhere and in any hemisphere.
    """
    for axis in (1, 2, 3):
        if rng.random() < 0.5:
            image, regions = np.flip(image, axis), np.flip(regions, axis)
    return image, regions


def random_intensity(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale and shift each channel inside the brain only; the background stays 0, as preprocessing left it."""
    brain = (image != 0).any(axis=0)
    scale = rng.uniform(1 - SCALE, 1 + SCALE, size=(image.shape[0], 1, 1, 1)).astype(np.float32)
    shift = rng.uniform(-SHIFT, SHIFT, size=(image.shape[0], 1, 1, 1)).astype(np.float32)
    return np.where(brain, image * scale + shift, np.float32(0)).astype(np.float32)


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """Rotation (3×3) by the given angles (radians) about the z, y and x array axes in turn."""
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        plane = [a for a in range(3) if a != axis]
        turn = np.eye(3)
        turn[plane[0], plane[0]], turn[plane[0], plane[1]] = c, -s
        turn[plane[1], plane[0]], turn[plane[1], plane[1]] = s, c
        matrix = turn @ matrix
    return matrix


def random_spatial(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, degrees: float,
                   scaling: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate (each axis by up to ±`degrees`) and scale (by 1 ± `scaling`, the same on every axis) image and
    label channels (label maps or masks, (C, z, y, x)) together about the patch centre: linear for the image,
    nearest for the labels, zero outside."""
    angles = np.deg2rad(rng.uniform(-degrees, degrees, size=3))
    scale = rng.uniform(1 - scaling, 1 + scaling)
    matrix = rotation_matrix(angles) / scale  # output voxel -> input voxel
    centre = (np.asarray(image.shape[1:]) - 1) / 2
    offset = centre - matrix @ centre
    moved = np.stack([ndimage.affine_transform(channel, matrix, offset, order=1, mode="constant")
                      for channel in image]).astype(np.float32)
    moved_labels = np.stack([ndimage.affine_transform(channel.astype(np.uint8), matrix, offset, order=0,
                                                      mode="constant") for channel in labels]).astype(labels.dtype)
    return moved, moved_labels
