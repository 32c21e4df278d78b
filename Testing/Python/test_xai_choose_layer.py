"""The rule that picks the default layer: best pointing game among layers that do not repeat the prediction."""
from __future__ import annotations

import pytest

from BraTSXAILib.errors import InputError
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.xai.choose_layer import choose, labelled_cases
from BraTSXAILib.xai.layers import PRESETS


def _scores(pointing: dict, triviality: dict) -> dict:
    return {layer: {"pointing_truth": pointing.get(layer, 0.1), "pointing_prediction": 0.5,
                    "triviality": triviality.get(layer, 0.2)} for layer in PRESETS}


def test_a_trivial_layer_is_not_chosen_however_well_it_points():
    trained = {
        "unet": _scores({"final": 0.9, "decoder.1": 0.6, "decoder.2": 0.5}, {"final": 1.0, "decoder.1": 0.95}),
        "resunet": _scores({"final": 0.9, "decoder.1": 0.6, "decoder.2": 0.55}, {"final": 1.0}),
    }
    assert choose(trained) == "decoder.2"  # decoder.1 is trivial for one network, final for both


def test_undefined_triviality_excludes_a_layer():
    trained = {"unet": _scores({"bottleneck": 0.8, "decoder.3": 0.4}, {"bottleneck": float("nan")})}
    assert choose(trained) == "decoder.3"


def test_without_a_non_trivial_layer_the_least_trivial_layer_with_maps_is_chosen():
    """The pattern measured with the bundled weights: deep layers empty on one network, no layer below the bound."""
    nan = float("nan")
    trained = {
        "unet": _scores({"final": 0.44, "decoder.1": 0.30},
                        {"decoder.1": 0.95, "decoder.0.conv": 0.97, "decoder.0": 1.0, "final": 1.0}),
        "attunet": _scores({"final": 0.39, "decoder.1": 0.42},
                           {"bottleneck": nan, "decoder.3": nan, "decoder.2": nan, "decoder.1": 0.9,
                            "decoder.0.conv": 0.97, "decoder.0": 1.0, "final": 1.0}),
    }
    assert choose(trained) == "decoder.1"


def test_real_cases_are_chosen_by_id_so_that_held_out_cases_are_scored(tmp_path):
    for case_id in ("Train1", "Held1", "Held2"):
        write_phantom(tmp_path, case_id, shape=(16, 18, 16), seed=len(case_id))
    assert [case.case_id for case in labelled_cases(tmp_path, ["Held2", "Held1"])] == ["Held2", "Held1"]
    with pytest.raises(InputError, match="Held3"):
        labelled_cases(tmp_path, ["Held1", "Held3"])
    with pytest.raises(InputError, match="none named"):
        labelled_cases(tmp_path, [])
