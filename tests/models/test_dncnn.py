"""DnCNN: paper parameter count, residual learning, config round trip, parameter roles."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from noiseshift.errors import InvalidInputError
from noiseshift.models import DnCNN


def _count(params: list[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


def _ids(params: list[nn.Parameter]) -> set[int]:
    return {id(p) for p in params}


def test_default_is_colour_blind_cdncnn_b_with_the_paper_parameter_count() -> None:
    model = DnCNN()
    # Computed from the paper's layer list: conv+ReLU (with bias), 18 × conv (no bias) + BN
    # (scale, shift) + ReLU, and a bias-free output conv, all 3×3 with 64 channels.
    first = 3 * 64 * 9 + 64
    middle = 18 * (64 * 64 * 9 + 2 * 64)
    last = 64 * 3 * 9
    assert first + middle + last == 669_376
    assert _count(list(model.parameters())) == 669_376
    assert (model.in_channels, model.out_channels, model.size_multiple) == (3, 3, 1)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 20
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 18


def test_grayscale_17_layer_variant_parameter_count() -> None:
    model = DnCNN(in_channels=1, out_channels=1, depth=17)
    expected = (1 * 64 * 9 + 64) + 15 * (64 * 64 * 9 + 2 * 64) + 64 * 1 * 9
    assert _count(list(model.parameters())) == expected
    assert model.in_channels == 1 and model.out_channels == 1


def test_output_shape_dtype_and_any_size() -> None:
    model = DnCNN(depth=5, width=16).eval()
    noisy = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(noisy)
    assert out.shape == (2, 3, 17, 23)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert not torch.equal(out, noisy)


def test_zero_output_layer_makes_the_residual_model_an_identity() -> None:
    torch.manual_seed(0)
    model = DnCNN(depth=4, width=8).eval()
    nn.init.zeros_(model.tail.weight)
    noisy = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(noisy), noisy)

    direct = DnCNN(depth=4, width=8, residual=False).eval()
    nn.init.zeros_(direct.tail.weight)
    with torch.no_grad():
        assert torch.equal(direct(noisy), torch.zeros_like(noisy))


def test_residual_output_is_input_minus_predicted_noise() -> None:
    torch.manual_seed(0)
    residual = DnCNN(depth=4, width=8).eval()
    direct = DnCNN(depth=4, width=8, residual=False).eval()
    direct.load_state_dict(residual.state_dict())
    noisy = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(residual(noisy), noisy - direct(noisy), atol=1e-6)


def test_config_round_trip_rebuilds_the_same_architecture() -> None:
    model = DnCNN(depth=6, width=12, batch_norm=False)
    config = json.loads(json.dumps(model.config()))
    assert config == {
        "in_channels": 3, "out_channels": 3, "depth": 6, "width": 12, "batch_norm": False, "residual": True,
    }
    rebuilt = DnCNN(**config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}

    default = DnCNN()
    assert DnCNN(**default.config()).state_dict().keys() == default.state_dict().keys()


def test_parameter_roles_with_batch_norm() -> None:
    model = DnCNN()
    groups = model.parameter_groups()
    everything = _ids(list(model.parameters()))
    assert _ids(groups["all"]) == everything
    for role in ("first", "last", "domain"):
        assert groups[role] and _ids(groups[role]) <= everything

    assert _ids(groups["first"]) == _ids(list(model.head[0].parameters()))
    assert _ids(groups["last"]) == _ids(list(model.tail.parameters()))
    assert not _ids(groups["first"]) & _ids(groups["last"])
    assert not _ids(groups["first"]) & _ids(groups["domain"])
    assert _ids(groups["last"]) <= _ids(groups["domain"])

    norm_params = [p for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    assert len(norm_params) == 36
    assert _ids(groups["domain"]) == _ids(norm_params) | _ids(groups["last"])
    assert _count(groups["domain"]) == 18 * 2 * 64 + 64 * 3 * 9
    # No middle convolution weight is domain-specific.
    body_convs = [m.weight for m in model.body.modules() if isinstance(m, nn.Conv2d)]
    assert not _ids(body_convs) & _ids(groups["domain"])


def test_without_batch_norm_convs_get_biases_and_domain_is_the_output_layer() -> None:
    model = DnCNN(depth=5, width=16, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is not None for m in model.body.modules() if isinstance(m, nn.Conv2d))
    groups = model.parameter_groups()
    assert _ids(groups["domain"]) == _ids(list(model.tail.parameters()))


def test_gradients_reach_every_parameter() -> None:
    model = DnCNN(depth=4, width=8).train()
    noisy = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    model(noisy).square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kwargs",
    [{"depth": 1}, {"width": 0}, {"in_channels": 4, "out_channels": 3}],
)
def test_invalid_configurations_raise(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        DnCNN(**kwargs)


def test_channel_changing_model_needs_residual_off() -> None:
    model = DnCNN(in_channels=4, out_channels=3, depth=3, width=8, residual=False).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 4, 8, 8)).shape == (1, 3, 8, 8)


def test_wrong_input_channels_raise() -> None:
    model = DnCNN(depth=3, width=8)
    with pytest.raises(InvalidInputError, match="input channels"):
        model(torch.rand(1, 1, 8, 8))
