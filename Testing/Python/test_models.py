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


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_parameter_counts_at_study_width(architecture):
    model = build_model(architecture)  # width 24, as in the study
    count = count_parameters(model)
    print(f"{architecture}: {count:,} parameters at width 24")
    assert 4e6 < count < 8e6
    assert count_parameters(build_model(architecture, width=16)) < count


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
