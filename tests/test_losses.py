"""Pixel losses: values against hand-computed numbers, reductions and validation."""

from __future__ import annotations

import math

import pytest
import torch

from noiseshift.errors import InvalidInputError
from noiseshift.losses import CharbonnierLoss, L1Loss, L2Loss

OUTPUT = torch.tensor([[[[0.0, 1.0], [2.0, -3.0]]]])
TARGET = torch.zeros(1, 1, 2, 2)


def test_names() -> None:
    assert (L1Loss.name, L2Loss.name, CharbonnierLoss.name) == ("l1", "l2", "charbonnier")


def test_l1_values() -> None:
    assert L1Loss()(OUTPUT, TARGET).item() == pytest.approx((0 + 1 + 2 + 3) / 4)
    assert L1Loss(reduction="sum")(OUTPUT, TARGET).item() == pytest.approx(6.0)


def test_l2_is_mean_squared_error() -> None:
    assert L2Loss()(OUTPUT, TARGET).item() == pytest.approx((0 + 1 + 4 + 9) / 4)
    assert L2Loss(reduction="sum")(OUTPUT, TARGET).item() == pytest.approx(14.0)
    assert L2Loss()(OUTPUT, TARGET).item() == pytest.approx(torch.nn.functional.mse_loss(OUTPUT, TARGET).item())


def test_charbonnier_values() -> None:
    expected = (math.sqrt(0 + 1) + math.sqrt(1 + 1) + math.sqrt(4 + 1) + math.sqrt(9 + 1)) / 4
    assert CharbonnierLoss(eps=1.0)(OUTPUT, TARGET).item() == pytest.approx(expected)
    assert CharbonnierLoss(eps=1.0, reduction="sum")(OUTPUT, TARGET).item() == pytest.approx(4 * expected)
    # Default ε = 1e-3: a perfect prediction scores ε.
    assert CharbonnierLoss()(TARGET, TARGET).item() == pytest.approx(1e-3)
    assert CharbonnierLoss().eps == 1e-3


def test_charbonnier_approaches_l1_for_large_errors_and_l2_for_small_ones() -> None:
    target = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    output = target + 0.5 * torch.sign(torch.randn(target.shape, generator=torch.Generator().manual_seed(1)))
    l1 = L1Loss()(output, target).item()
    assert CharbonnierLoss()(output, target).item() == pytest.approx(l1, rel=1e-5)
    # For |e| << ε: sqrt(e² + ε²) ≈ ε + e²/(2ε).
    eps = 0.1
    small = target + 1e-3
    assert CharbonnierLoss(eps=eps)(small, target).item() == pytest.approx(eps + 1e-6 / (2 * eps), rel=1e-6)


@pytest.mark.parametrize("loss", [L1Loss(), L2Loss(), CharbonnierLoss()])
def test_mismatched_shapes_raise_instead_of_broadcasting(loss: torch.nn.Module) -> None:
    with pytest.raises(InvalidInputError, match="shapes differ"):
        loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4))
    with pytest.raises(InvalidInputError):
        loss(torch.zeros(2, 3, 4, 4), [0.0])


@pytest.mark.parametrize("loss", [L1Loss(), L2Loss(), CharbonnierLoss()])
def test_gradients_and_scalar_output(loss: torch.nn.Module) -> None:
    target = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    output = (target + 0.1).requires_grad_(True)
    value = loss(output, target)
    assert value.dim() == 0
    value.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_invalid_options_raise() -> None:
    with pytest.raises(InvalidInputError):
        L1Loss(reduction="none")
    with pytest.raises(InvalidInputError):
        CharbonnierLoss(eps=0.0)
