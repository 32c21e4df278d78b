"""The three networks: shapes, gradients, hook safety, attention maps, factory."""
import pytest
import torch
from torch import nn

from BraTSXAILib.models import ARCHITECTURES, build_model, count_parameters
from BraTSXAILib.models.skeleton import LEVELS

ODD_SIZES = [(1, 4, 17, 23, 31), (2, 4, 16, 33, 20)]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("shape", ODD_SIZES)
def test_output_keeps_any_input_size(architecture, shape):
    model = build_model(architecture, width=8)
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (shape[0], 3, *shape[2:])


OUR_COUNTS = {  # pinned: any change to a network shows here first (docs/fidelity.md explains each number)
    24: {"unet": 5_651_019, "resunet": 5_741_547, "attunet": 5_715_736},
    16: {"unet": 2_512_819, "resunet": 2_553_331, "attunet": 2_543_281},
}


@pytest.mark.parametrize("width", OUR_COUNTS)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_parameter_counts_are_pinned(architecture, width):
    assert count_parameters(build_model(architecture, width)) == OUR_COUNTS[width][architecture]


def notebook_counts(w: int) -> dict[str, int]:
    """The study notebook's networks counted layer by layer, as docs/fidelity.md describes them: every 3×3×3
    convolution has a bias; ResUNet blocks always have a bias-free 1×1 shortcut and its first layer is
    conv → ReLU → GroupNorm → conv; each AttUNet skip (C channels) has a CBAM whose spatial branch is a 7×7×7
    convolution from 2 to C channels and a gate of three C→C 1×1 convolutions (two with BatchNorm)."""
    double = lambda i, o: 27 * i * o + o + 2 * o + 27 * o * o + o + 2 * o  # noqa: E731
    residual = lambda i, o: 2 * i + 27 * i * o + o + 2 * o + 27 * o * o + o + i * o  # noqa: E731
    blocks = [(w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w), (8 * w, 8 * w), (16 * w, 4 * w), (8 * w, 2 * w),
              (4 * w, w), (2 * w, w)]
    head = 3 * w + 3
    unet = double(4, w) + sum(double(i, o) for i, o in blocks) + head
    first = 27 * 4 * w + w + 2 * w + 27 * w * w + w + 4 * w
    resunet = first + sum(residual(i, o) for i, o in blocks) + head
    attention = sum(2 * c * (c // 8) + 686 * c + 3 * (c * c + c) + 2 * 2 * c for c in (8 * w, 4 * w, 2 * w, w))
    return {"unet": unet, "resunet": resunet, "attunet": unet + attention}


def test_the_notebook_counts_and_where_ours_differ():
    """The notebook's UNet count is 5,652,507 exactly (ResUNet and AttUNet about 5.764 M and 6.061 M); ours differ
    from it by exactly the biases of the 3×3×3 convolutions, which GroupNorm's shift makes redundant."""
    notebook = notebook_counts(24)
    assert notebook["unet"] == 5_652_507
    assert round(notebook["resunet"] / 1e6, 3) == 5.764 and round(notebook["attunet"] / 1e6, 3) == 6.061
    unet = build_model("unet", 24)
    biases = sum(m.out_channels for m in unet.modules()
                 if isinstance(m, nn.Conv3d) and m.kernel_size == (3, 3, 3) and m.bias is None)
    assert count_parameters(unet) + biases == notebook["unet"]
    assert notebook["attunet"] - notebook["unet"] == 408_600  # our CBAM + gates: 64,717
    assert OUR_COUNTS[24]["attunet"] - OUR_COUNTS[24]["unet"] == 64_717


def test_upsampling_without_aligned_corners_commutes_with_cropping():
    """align_corners=False (ours) gives a window the same interior values as the whole volume, so sliding-window
    and whole-volume inference agree; align_corners=True (the notebook) stretches by (2n − 1)/(n − 1) and does not."""
    import torch.nn.functional as F

    x = torch.randn(1, 1, 8, 8, 8, generator=torch.Generator().manual_seed(0))
    for aligned, agrees in ((False, True), (True, False)):
        whole = F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=aligned)[..., 5:11, 5:11, 5:11]
        window = F.interpolate(x[..., 2:6, 2:6, 2:6], scale_factor=2, mode="trilinear", align_corners=aligned)
        difference = (whole - window[..., 1:7, 1:7, 1:7]).abs().max().item()
        assert (difference < 1e-6) == agrees, (aligned, difference)


def test_group_norm_on_the_four_input_channels_standardises_each_modality_alone():
    """The reason for the ResUNet stem: GroupNorm(4 groups) on 4 channels is per-modality standardisation."""
    from BraTSXAILib.models.blocks import group_norm

    norm = group_norm(4)
    assert norm.num_groups == 4
    x = torch.randn(1, 4, 6, 6, 6) * torch.tensor([1.0, 5.0, 20.0, 100.0]).view(1, 4, 1, 1, 1) + 3.0
    out = norm(x)
    torch.testing.assert_close(out.mean(dim=(2, 3, 4)), torch.zeros(1, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3, 4), unbiased=False), torch.ones(1, 4), atol=1e-3, rtol=0)


def test_stored_attention_maps_do_not_keep_the_pass_alive():
    """The maps stay after a pass (the explanation code reads them), detached: once the output is dropped, every
    activation of the pass is freed, even without a backward pass (with maps kept in the graph, 16 of the 51
    convolution outputs of this network stayed alive until the next pass)."""
    import gc
    import weakref

    model, outputs = build_model("attunet", width=8), []
    for module in model.modules():
        if isinstance(module, nn.Conv3d):
            module.register_forward_hook(lambda module, inputs, output: outputs.append(weakref.ref(output)))
    output = model(torch.randn(1, 4, 16, 16, 16))
    assert len(outputs) == 51 and sum(ref() is not None for ref in outputs) > 16  # held by the graph
    del output
    gc.collect()
    assert [ref for ref in outputs if ref() is not None] == []
    maps = model.attention_maps()
    assert all(not m.requires_grad and m.grad_fn is None for m in maps.values())


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_gradients_reach_every_parameter_through_hooks_on_every_block(architecture):
    """Tensor hooks on every module output would raise if any later operation were in-place.

    Seeded: a CBAM MLP with few hidden units can have a dead ReLU on some random draws (a zero, not a missing, gradient).
    """
    torch.manual_seed(0)
    model = build_model(architecture, width=16)
    seen = []

    def capture(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(lambda grad: seen.append(grad))

    for module in model.modules():
        module.register_forward_hook(capture)
    model(torch.randn(1, 4, 20, 18, 22)).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert len(seen) > 20
    assert not any(getattr(m, "inplace", False) for m in model.modules())


def test_attention_maps_are_one_channel_probabilities_at_their_skip_level():
    model = build_model("attunet", width=8)
    with torch.no_grad():
        model(torch.randn(1, 4, 32, 48, 16))
    maps = model.attention_maps()
    for level in range(LEVELS):
        expected = tuple(s // 2**level for s in (32, 48, 16))
        for name in (f"gate{level}", f"cbam{level}_spatial"):
            assert maps[name].shape == (1, 1, *expected), name
            assert 0 <= maps[name].min() and maps[name].max() <= 1
        channel = maps[f"cbam{level}_channel"]
        assert channel.shape == (1, 8 * 2**level, 1, 1, 1)
        assert 0 <= channel.min() and channel.max() <= 1


def test_attention_gate_scales_the_skip_by_alpha():
    from BraTSXAILib.models.attention import AttentionGate

    gate = AttentionGate(skip_channels=4, gate_channels=6)
    x, g = torch.randn(1, 4, 8, 8, 8), torch.randn(1, 6, 4, 4, 4)
    out = gate(x, g)
    assert gate.alpha.shape == (1, 1, 8, 8, 8)
    torch.testing.assert_close(out, x * gate.alpha)


def test_attention_maps_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="forward pass"):
        build_model("attunet", width=8).attention_maps()


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="unet, resunet, attunet"):
        build_model("vnet")


def test_blocks_use_group_norm_with_eight_groups():
    norms = [m for m in build_model("unet", width=16).modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_groups == 8 for m in norms)


def test_the_export_group_norm_and_the_axis_by_axis_mean_are_pytorchs_own():
    """What OpenVINO is given instead of GroupNorm (and CBAM's global mean) computes the same values."""
    from BraTSXAILib.models.blocks import group_norm, spatial_mean
    from BraTSXAILib.openvino_export import ExportGroupNorm, _exportable

    torch.manual_seed(0)
    x = torch.randn(2, 24, 5, 7, 6, dtype=torch.float64) * 3 + 1
    torch.testing.assert_close(spatial_mean(x), x.mean((2, 3, 4), keepdim=True))
    norm = group_norm(24).double()
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    torch.testing.assert_close(ExportGroupNorm(norm)(x), norm(x))
    network = build_model("resunet", 8).eval()
    exportable = _exportable(network)
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in exportable.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in network.modules())  # the original is left as it was
    inputs = torch.randn(1, 4, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(exportable(inputs), network(inputs), atol=1e-5, rtol=1e-5)
