"""The Results panel's tree: model -> kind -> region, the primary (ensemble) first, and which map shows first."""
from __future__ import annotations

import slicer_module  # noqa: F401
from BraTSXAIHelpers.grouping import first_explanation, group_overlays
from BraTSXAIHelpers.manifest import OverlaySpec


def spec(model, kind, target):
    return OverlaySpec(path=None, model=model, kind=kind, target=target, name=f"{model} {kind} {target}",
                       colormap="Inferno", window=(0.0, 1.0), threshold=0.2, blank=False)


def test_primary_first_then_kinds_then_regions_in_brats_order():
    specs = [spec("unet", "gradcam", "ET"), spec("attunet", "attention", "gate 1"), spec("unet", "probability", "WT"),
             spec("unet", "gradcam", "WT"), spec("ensemble", "probability", "TC"), spec("attunet", "attention", "gate 0"),
             spec("ensemble", "probability", "WT"), spec("unet", "gradcam", "TC"), spec("attunet", "gradcam", "WT")]
    groups = group_overlays(specs, primary="ensemble")
    assert [model for model, _ in groups] == ["Ensemble", "UNet", "Attention UNet"]
    assert [(k, [s.target for s in ss]) for k, ss in groups[0][1]] == [("probability", ["WT", "TC"])]
    assert [(k, [s.target for s in ss]) for k, ss in groups[1][1]] == [
        ("probability", ["WT"]), ("Grad-CAM", ["WT", "TC", "ET"])]
    assert [(k, [s.target for s in ss]) for k, ss in groups[2][1]] == [
        ("Grad-CAM", ["WT"]), ("attention", ["gate 0", "gate 1"])]
    assert first_explanation(groups) == spec("unet", "gradcam", "WT")


def test_a_single_network_is_its_own_primary_and_no_maps_show_nothing():
    groups = group_overlays([spec("resunet", "probability", "ET"), spec("resunet", "probability", "WT")],
                            primary="resunet")
    assert [m for m, _ in groups] == ["Residual UNet"]
    assert first_explanation(groups) == spec("resunet", "probability", "WT")  # no Grad-CAM: the first map
    assert group_overlays([], primary="unet") == [] and first_explanation([]) is None
