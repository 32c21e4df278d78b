"""The Grad-CAM family: planted evidence is found, gradients are right, and the machinery is one cheap pass."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from BraTSXAILib.errors import InputError
from BraTSXAILib.models import build_model
from BraTSXAILib.xai import METHODS, GradCAM, make_cam, make_targets, predicted_masks
from BraTSXAILib.xai.faithfulness import energy_pointing_game, triviality
from BraTSXAILib.xai.layers import PRESETS, candidate_layers, resolve_layer
from xai_planted import PlantedCubeNet, cube_mask, planted_case


@pytest.fixture(scope="module")
def planted():
    model = PlantedCubeNet().eval()
    x = planted_case()
    with torch.no_grad():
        masks = predicted_masks(model(x))
    return model, x, masks


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("layer", ["act", "pool"])
def test_every_method_puts_its_mass_in_the_planted_cube(planted, method, layer):
    model, x, masks = planted
    assert masks["ET"].sum() > 2 * cube_mask().sum()  # the prediction is much larger than the evidence
    result = make_cam(method, model, layer)(x, make_targets(["ET"], masks))
    assert energy_pointing_game(result.maps["ET"], cube_mask()) > 0.8


def test_a_map_after_the_last_nonlinearity_only_repeats_the_prediction(planted):
    model, x, masks = planted
    result = make_cam("gradcam", model, "head")(x, make_targets(["ET"], masks))
    logit_map = result.targets[0].logit_map(result.logits)[0].numpy()
    assert triviality(result.maps["ET"], logit_map) == pytest.approx(1.0, abs=1e-4)
    assert energy_pointing_game(result.maps["ET"], cube_mask()) < 0.75


def test_gradcam_weights_equal_finite_differences():
    torch.manual_seed(1)
    model = build_model("unet", 8).double().eval()
    x = torch.randn(1, 4, 16, 16, 16, dtype=torch.float64)
    mask = np.zeros((16, 16, 16), dtype=bool)
    mask[4:11, 5:12, 3:9] = True
    target = make_targets(["TC"], {"TC": mask})[0]
    cam = GradCAM(model, "decoder.2")
    passed = cam.layer_gradients(x, [target])
    weights = GradCAM.channel_weights(passed.gradients[0]).flatten()
    voxels = passed.activations[0][0, 0].numel()
    _, module = resolve_layer(model, "decoder.2")
    epsilon = 1e-4
    for channel in (0, 5, 11):
        scores = []
        for sign in (1, -1):
            def shift(module, inputs, output, sign=sign):
                output = output.clone()
                output[:, channel] += sign * epsilon
                return output
            handle = module.register_forward_hook(shift)
            with torch.no_grad():
                scores.append(float(target(model(x))))
            handle.remove()
        finite_difference = (scores[0] - scores[1]) / (2 * epsilon) / voxels
        assert float(weights[channel]) == pytest.approx(finite_difference, rel=1e-5, abs=1e-9)


def test_all_classes_come_from_one_forward_pass_without_parameter_gradients():
    torch.manual_seed(0)
    model = build_model("resunet", 8).eval()
    model.head.weight.requires_grad_(True)
    model.encoder[1].residual[2].weight.requires_grad_(False)  # a frozen flag must come back frozen
    flags = [p.requires_grad for p in model.parameters()]
    calls = []
    model.register_forward_pre_hook(lambda module, inputs: calls.append(1))
    x = torch.randn(1, 4, 14, 16, 12)
    result = make_cam("hirescam", model, "bottleneck")(
        x, lambda logits: make_targets(["WT", "TC", "ET", "ED", "NCR"], predicted_masks(logits)))
    assert len(calls) == 1
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert sorted(result.maps) == ["ED", "ET", "NCR", "TC", "WT"]


@pytest.mark.parametrize("architecture", ["unet", "resunet", "attunet"])
def test_maps_lie_on_the_input_grid_for_every_network_and_preset(architecture):
    torch.manual_seed(0)
    model = build_model(architecture, 8).eval()
    x = torch.randn(1, 4, 13, 15, 11)
    with torch.no_grad():
        logits = model(x)
    masks = {"WT": np.ones((13, 15, 11), dtype=bool)}
    for layer in PRESETS:
        result = make_cam("gradcam", model, layer)(x, make_targets(["WT"], masks))
        assert result.maps["WT"].shape == (13, 15, 11)
        assert result.maps["WT"].dtype == np.float32
        assert np.all(np.isfinite(result.maps["WT"])) and result.maps["WT"].min() >= 0
        torch.testing.assert_close(result.logits, logits, rtol=1e-4, atol=1e-5)


def test_an_empty_region_gives_a_zero_map_without_a_backward_pass():
    model = build_model("unet", 8).eval()
    x = torch.randn(1, 4, 16, 16, 16)
    empty = np.zeros((16, 16, 16), dtype=bool)
    result = make_cam("gradcam", model, "decoder.1")(x, make_targets(["ET"], {"ET": empty}))
    assert result.empty_targets == ["ET"]
    assert not result.maps["ET"].any()


def test_unknown_method_and_layer_are_input_errors():
    model = build_model("unet", 8)
    with pytest.raises(InputError, match="method"):
        make_cam("saliency", model, "bottleneck")
    with pytest.raises(InputError, match="layer"):
        make_cam("gradcam", model, "decoder.9")


def test_candidate_layers_report_channels_and_stride_of_every_preset():
    layers = {info.name: info for info in candidate_layers(build_model("resunet", 8), (20, 16, 16))}
    assert {resolve_layer(build_model("resunet", 8), preset)[0] for preset in PRESETS} <= set(layers)
    assert (layers["bottleneck"].channels, layers["bottleneck"].stride) == (64, (16, 16, 16))
    assert (layers["decoder.2"].channels, layers["decoder.2"].shape) == (16, (8, 4, 4))  # 20 pads to 32
    assert (layers["head"].channels, layers["head"].stride) == (3, (1, 1, 1))


@pytest.mark.parametrize("threshold", [0.33, 0.5, 0.8])
def test_the_label_threshold_reaches_the_grad_cam_target(threshold):
    """The map explains the region the labels show: the target holds exactly the voxels with p ≥ threshold."""
    from BraTSXAILib.postprocess import LabelRule
    from BraTSXAILib.xai.explain import explain_gradcam

    torch.manual_seed(0)
    model = build_model("unet", 8).eval()
    x = torch.randn(1, 4, 32, 32, 32)
    explanations, _, logits = explain_gradcam(model, x, layer="decoder.1", rule=LabelRule().with_threshold(threshold))
    regions = torch.sigmoid(logits[0]).numpy() >= threshold
    nested = [regions[0], regions[0] & regions[1], regions[0] & regions[1] & regions[2]]
    assert [e.fields["voxels"] for e in explanations] == [int(mask.sum()) for mask in nested]
    at_half = int((torch.sigmoid(logits[0, 0]) >= 0.5).sum())
    assert (explanations[0].fields["voxels"] != at_half) == (threshold != 0.5)  # the test can tell them apart


def test_methods_at_one_layer_share_one_pass_and_give_each_methods_own_map(monkeypatch):
    from BraTSXAILib.xai import cam as cam_module
    from BraTSXAILib.xai.explain import explain_gradcam

    torch.manual_seed(1)
    model = build_model("unet", 8).eval()
    x = torch.randn(1, 4, 32, 32, 32)
    alone = {region: explain_gradcam(model, x, [region], method, "decoder.1")[0][0]
             for region, method in (("WT", "gradcam"), ("TC", "layercam"), ("ET", "gradcam++"))}
    passes = []
    real = cam_module.BaseCAM.layer_gradients
    monkeypatch.setattr(cam_module.BaseCAM, "layer_gradients", lambda *a: passes.append(1) or real(*a))
    methods = {"WT": "gradcam", "TC": "layercam", "ET": "gradcam++"}
    together, _, _ = explain_gradcam(model, x, list(methods), methods, "decoder.1")
    assert len(passes) == 1
    for explanation in together:
        expected = alone[explanation.key]
        assert explanation.fields["method"] == methods[explanation.key] == expected.fields["method"]
        np.testing.assert_allclose(explanation.values, expected.values, atol=1e-6)
    assert not np.allclose(together[0].values, together[1].values)  # the methods do differ here


@pytest.mark.parametrize("architecture", ["unet", "resunet"])
def test_regions_at_different_layers_share_one_forward_pass_and_keep_each_layers_map(architecture, monkeypatch):
    """The later layer is read inside the graph that starts at the earlier one: its gradients, and the earlier
    layer's (which flow through it), equal those of a pass of each layer alone."""
    from BraTSXAILib.xai.explain import explain_gradcam

    torch.manual_seed(2)
    model = build_model(architecture, 8).eval()
    x = torch.randn(1, 4, 32, 32, 32)
    layers = {"WT": "decoder.1", "TC": "decoder.0.conv", "ET": "decoder.2"}
    methods = {"WT": "gradcam", "TC": "layercam", "ET": "gradcam"}
    alone = {region: explain_gradcam(model, x, [region], methods[region], layers[region])[0][0] for region in layers}
    forwards = []
    model.register_forward_hook(lambda *args: forwards.append(1))
    together, _, _ = explain_gradcam(model, x, list(layers), methods, layers)
    assert len(forwards) == 1
    for explanation in together:
        expected = alone[explanation.key]
        assert explanation.fields["layer"] == expected.fields["layer"] != ""
        np.testing.assert_allclose(explanation.values, expected.values, atol=1e-5)
    assert len({explanation.fields["layer"] for explanation in together}) == 3


@pytest.mark.parametrize("architecture", ["unet", "resunet", "attunet"])
def test_the_full_resolution_convolution_preset_names_each_networks_first_decoder_0_convolution(architecture):
    model = build_model(architecture, 8)
    name, module = resolve_layer(model, "decoder.0.conv")
    assert name.startswith("decoder.0.") and isinstance(module, torch.nn.Conv3d)
    assert module.kernel_size == (3, 3, 3) and module.out_channels == 8  # at width, on the full-resolution grid


def test_a_bf16_pass_finds_the_same_evidence_as_float32(planted):
    model, x, masks = planted
    maps = {precision: make_cam("gradcam", model, "act", precision)(x, make_targets(["ET"], masks))
            for precision in ("float32", "bf16")}
    assert maps["bf16"].logits.dtype == torch.float32 and maps["bf16"].maps["ET"].dtype == np.float32
    assert energy_pointing_game(maps["bf16"].maps["ET"], cube_mask()) > 0.8
    assert np.corrcoef(maps["float32"].maps["ET"].ravel(), maps["bf16"].maps["ET"].ravel())[0, 1] > 0.99
    torch.testing.assert_close(maps["bf16"].logits, maps["float32"].logits, rtol=0.05, atol=0.05)


def test_a_bf16_pass_of_a_real_network_keeps_the_map_of_float32():
    torch.manual_seed(3)
    model = build_model("attunet", 8).eval()
    x = torch.randn(1, 4, 24, 24, 24)
    mask = np.zeros((24, 24, 24), dtype=bool)
    mask[6:18, 8:16, 5:19] = True
    maps = [make_cam("layercam", model, "decoder.0.conv", precision)(x, make_targets(["WT"], {"WT": mask})).maps["WT"]
            for precision in ("float32", "bf16")]
    assert np.corrcoef(maps[0].ravel(), maps[1].ravel())[0, 1] > 0.98
