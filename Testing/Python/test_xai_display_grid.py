"""The display rule and the mapping of internal feature maps back onto the input grid."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from BraTSXAILib.xai.display import display_map
from BraTSXAILib.models.skeleton import padding_for
from BraTSXAILib.xai.grid import to_input_grid


def test_display_divides_by_the_maximum_and_keeps_the_raw_range():
    raw = np.array([0.0, 1.0, 2.0, 4.0], dtype=np.float32)
    shown = display_map(raw)
    assert shown.values.tolist() == [0.0, 0.25, 0.5, 1.0]
    assert shown.raw_range == (0.0, 4.0) and not shown.empty
    uniform = display_map(np.full(4, 3.0))
    assert uniform.values.tolist() == [1.0] * 4  # not stretched into contrast, not inverted


def test_an_all_zero_map_is_reported_empty():
    shown = display_map(np.zeros((2, 2, 2)))
    assert shown.empty and not shown.values.any()
    with pytest.raises(ValueError):
        display_map(np.array([0.0, np.nan]))


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_a_pooled_linear_field_maps_back_onto_the_same_field(level):
    """Pooling a linear ramp over the padded grid, as the network does, and mapping back reproduces the ramp
    (trilinear interpolation is exact for it once the cell centres are right), except within a cell of the edge
    where interpolation clamps."""
    shape = (21, 26, 18)
    pads, crop = padding_for(shape)
    axes = [torch.arange(-before, n + after, dtype=torch.float64) for n, (before, after) in zip(shape, pads)]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    field = (0.5 * z - 0.25 * y + x)[None, None]
    back = to_input_grid(F.avg_pool3d(field, 2**level), shape)[0, 0]
    assert tuple(back.shape) == shape
    inner = (slice(2**level, -(2**level)),) * 3
    torch.testing.assert_close(back[inner], field[0, 0][tuple(crop)][inner], rtol=0, atol=1e-9)
