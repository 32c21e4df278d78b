"""AttUNet attention maps: the modules' own α on the input grid, in [0, 1], and the softmax view."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from BraTSXAILib.errors import InputError
from BraTSXAILib.models import build_model
from BraTSXAILib.models.skeleton import level_widths
from BraTSXAILib.xai import attention_volumes, explain_attention


@pytest.fixture(scope="module")
def attunet():
    torch.manual_seed(3)
    return build_model("attunet", 8).eval()


def test_every_gate_and_cbam_map_lies_on_the_input_grid_in_unit_range(attunet):
    x = torch.randn(1, 4, 13, 15, 11)
    maps, weights = attention_volumes(attunet, x)
    assert sorted(m.name for m in maps) == sorted([f"gate{l}" for l in range(4)] +
                                                  [f"cbam_spatial{l}" for l in range(4)])
    for m in maps:
        assert m.values.shape == (13, 15, 11) and m.values.dtype == np.float32
        assert 0.0 <= m.values.min() and m.values.max() <= 1.0
    assert [len(weights[f"cbam{l}"]) for l in range(4)] == level_widths(8)[:4]
    assert all(0.0 < w < 1.0 for values in weights.values() for w in values)


def test_top_gate_is_exactly_the_modules_alpha_when_no_padding_is_needed(attunet):
    x = torch.randn(1, 4, 16, 32, 16)
    maps, _ = attention_volumes(attunet, x)
    gate0 = next(m for m in maps if m.name == "gate0")
    np.testing.assert_array_equal(gate0.values, attunet.skips[0].gate.alpha[0, 0].numpy())


def test_softmax_view_keeps_the_order_and_peaks_at_one(attunet):
    x = torch.randn(1, 4, 16, 16, 16)
    sigmoid, _ = attention_volumes(attunet, x)
    softmax, _ = attention_volumes(attunet, x, view="softmax")
    for plain, relative in zip(sigmoid, softmax):
        assert relative.values.max() == pytest.approx(1.0)
        assert relative.values.min() > 0.0
        if plain.level == 0:  # no interpolation at level 0: exp(logit α − max) is monotone in α
            assert stats.spearmanr(plain.values.ravel(), relative.values.ravel())[0] == pytest.approx(1.0)


def test_manifest_fields_mark_the_top_gate_as_default(attunet):
    explanations, _ = explain_attention(attunet, torch.randn(1, 4, 16, 16, 16))
    defaults = [e.key for e in explanations if e.fields["default"]]
    assert defaults == ["gate0"]
    assert all(e.fields["range"] == [0.0, 1.0] and e.fields["kind"] == "attention" for e in explanations)


def test_networks_without_attention_are_refused():
    with pytest.raises(InputError, match="attention"):
        attention_volumes(build_model("unet", 8), torch.randn(1, 4, 16, 16, 16))
