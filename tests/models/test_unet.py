"""UNet: shapes, size multiple, parameter counts, roles, gradients."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from noiseshift.errors import InvalidInputError
from noiseshift.models import UNet


def _count(params: list[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


def _ids(params: list[nn.Parameter]) -> set[int]:
    return {id(p) for p in params}


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def _expected_count(cin: int, cout: int, width: int, depth: int, norm: bool) -> int:
    """Parameter count from the documented layer list, computed independently of the model."""
    widths = [width * 2**level for level in range(depth + 1)]

    def block(i: int, o: int) -> int:
        # Two 3×3 convs; with a norm they lose their bias and each gains a scale and a shift.
        per_conv_extra = 2 * o if norm else 0
        return _conv(i, o, 3, not norm) + _conv(o, o, 3, not norm) + 2 * per_conv_extra

    total = block(cin, widths[0])
    total += sum(block(widths[level - 1], widths[level]) for level in range(1, depth + 1))
    for level in range(depth):
        total += _conv(widths[level + 1], widths[level], 2)  # transposed 2×2 up-sampling
        total += block(2 * widths[level], widths[level])
    return total + _conv(widths[0], cout, 1)


def test_default_parameter_counts() -> None:
    assert _count(list(UNet().parameters())) == _expected_count(3, 3, 32, 3, norm=False) == 1_925_667
    for norm in ("instance", "batch"):
        model = UNet(norm=norm)
        assert _count(list(model.parameters())) == _expected_count(3, 3, 32, 3, norm=True) == 1_927_075


def test_shape_at_a_multiple_and_size_multiple() -> None:
    model = UNet(width=8).eval()
    assert model.size_multiple == 8
    assert UNet(width=4, depth=2).size_multiple == 4
    assert UNet(width=4, depth=4).size_multiple == 16
    noisy = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(noisy)
    assert out.shape == (2, 3, 32, 48)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("size", [(30, 32), (32, 36), (17, 17)])
def test_size_not_a_multiple_raises_clearly(size: tuple[int, int]) -> None:
    model = UNet(width=4)
    with pytest.raises(InvalidInputError, match=r"multiples of size_multiple=8"):
        model(torch.rand(1, 3, *size))


@pytest.mark.parametrize("norm", ["none", "instance", "batch"])
def test_gradient_reaches_every_parameter(norm: str) -> None:
    torch.manual_seed(0)
    model = UNet(width=4, depth=2, norm=norm).train()
    noisy = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    target = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    (model(noisy) - target).square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_zero_output_layer_gives_the_identity() -> None:
    model = UNet(width=4, depth=2).eval()
    nn.init.zeros_(model.output.weight)
    nn.init.zeros_(model.output.bias)
    noisy = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(model(noisy), noisy)


def test_roles_without_norm() -> None:
    model = UNet()
    groups = model.parameter_groups()
    everything = _ids(list(model.parameters()))
    assert _ids(groups["all"]) == everything
    for role in ("first", "last", "domain"):
        assert groups[role] and _ids(groups[role]) <= everything
    assert _count(groups["first"]) == _conv(3, 32, 3)
    assert _count(groups["last"]) == _conv(32, 3, 1)
    assert not _ids(groups["first"]) & _ids(groups["last"])
    assert not _ids(groups["first"]) & _ids(groups["domain"])
    assert _ids(groups["last"]) <= _ids(groups["domain"])
    # The full-resolution decoder block + output layer: a small head, not the bottleneck.
    assert _count(groups["domain"]) == _conv(64, 32, 3) + _conv(32, 32, 3) + _conv(32, 3, 1) == 27_811
    assert not _ids(list(model.bottleneck.parameters())) & _ids(groups["domain"])


@pytest.mark.parametrize("norm,kind", [("instance", nn.InstanceNorm2d), ("batch", nn.BatchNorm2d)])
def test_roles_with_norm_are_norm_affines_plus_output(norm: str, kind: type[nn.Module]) -> None:
    model = UNet(width=8, norm=norm)
    groups = model.parameter_groups()
    norms = [m for m in model.modules() if isinstance(m, kind)]
    assert len(norms) == 2 * (2 * 3 + 1)  # two per block: 3 encoder, 1 bottleneck, 3 decoder
    norm_params = [p for m in norms for p in m.parameters()]
    assert _ids(groups["domain"]) == _ids(norm_params) | _ids(list(model.output.parameters()))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m is not model.output]
    assert all(m.bias is None for m in convs)


def test_config_round_trip() -> None:
    model = UNet(width=8, depth=2, norm="instance")
    config = json.loads(json.dumps(model.config()))
    assert config["norm"] == "instance" and config["depth"] == 2 and config["width"] == 8
    rebuilt = UNet(**config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    assert rebuilt.size_multiple == 4


def test_channel_changing_model() -> None:
    model = UNet(in_channels=4, out_channels=3, width=4, depth=2, residual=False).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 4, 8, 8)).shape == (1, 3, 8, 8)
    with pytest.raises(InvalidInputError, match="in_channels == out_channels"):
        UNet(in_channels=4, out_channels=3)


@pytest.mark.parametrize("kwargs", [{"norm": "layer"}, {"depth": 0}, {"width": 0}])
def test_invalid_configurations_raise(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        UNet(**kwargs)
