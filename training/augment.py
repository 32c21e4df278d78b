"""Random flips and intensity changes for training patches, driven by the caller's generator (reproducible)."""
from __future__ import annotations

import numpy as np

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
