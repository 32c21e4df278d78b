"""How a raw explanation map becomes a display map in [0, 1]: one explicit rule, used everywhere.

Rule: display = raw / max(raw). Raw Grad-CAM-family maps are ReLU-ed (≥ 0), so 0 keeps meaning "no evidence"
and the strongest voxel is 1; the map is never shifted by its minimum (which would turn a uniform weak map into
strong contrast) and never inverted. The raw range is kept beside it, so maps stay comparable across classes,
layers and networks. A map with no positive value is *empty*: it is reported as such (flag and warning), and
its display map is all zeros rather than noise stretched to full scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLORMAP = "Inferno"  # Slicer colour node: perceptually uniform, dark = no evidence


@dataclass(frozen=True)
class DisplayMap:
    values: np.ndarray  # float32, [0, 1]
    raw_range: tuple[float, float]
    empty: bool


def display_map(raw: np.ndarray) -> DisplayMap:
    """Normalise a non-negative raw map by its maximum (see the module's rule)."""
    raw = np.asarray(raw, dtype=np.float32)
    if not np.all(np.isfinite(raw)):
        raise ValueError("explanation map holds NaN or infinite values")
    if raw.size and raw.min() < 0:
        raise ValueError("raw explanation maps must be non-negative (ReLU-ed)")
    peak = float(raw.max()) if raw.size else 0.0
    raw_range = (float(raw.min()) if raw.size else 0.0, peak)
    if peak <= 0:
        return DisplayMap(np.zeros_like(raw), raw_range, True)
    return DisplayMap(np.clip(raw / np.float32(peak), 0.0, 1.0).astype(np.float32), raw_range, False)
