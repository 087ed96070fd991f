"""Pixel losses for training denoisers: L1, L2 (mean squared error) and Charbonnier.

Each loss is an ``nn.Module`` with a class attribute ``name`` (its registry name) and
``forward(output, target) -> scalar``. Both tensors must have the same shape (no silent
broadcasting: a ``N×C×H×W`` output against a ``N×1×H×W`` target is almost always a bug).
``reduction="mean"`` averages over every element, ``"sum"`` adds them up.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .errors import InvalidInputError

__all__ = ["CharbonnierLoss", "L1Loss", "L2Loss"]

_REDUCTIONS: tuple[str, ...] = ("mean", "sum")


class _PixelLoss(nn.Module):
    """Shared checks and reduction: subclasses implement ``elementwise``."""

    name: ClassVar[str] = ""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise InvalidInputError(
                f"{self.name} loss: reduction must be one of {list(_REDUCTIONS)}, got {reduction!r}"
            )
        self.reduction = reduction

    def elementwise(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The per-element loss, same shape as the inputs."""
        raise NotImplementedError

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compare a prediction with its target.

        Args:
            output: the network's prediction, any shape (typically ``N×C×H×W`` in ``[0, 1]``).
            target: the reference, same shape as ``output``.

        Returns:
            A 0-dim tensor: the mean (or sum) of the per-element loss.

        Raises:
            InvalidInputError: if either argument is not a tensor or the shapes differ.
        """
        if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise InvalidInputError(
                f"{self.name} loss: expected two tensors, got {type(output).__name__} and {type(target).__name__}"
            )
        if output.shape != target.shape:
            raise InvalidInputError(
                f"{self.name} loss: output and target shapes differ: {tuple(output.shape)} vs {tuple(target.shape)}"
            )
        loss = self.elementwise(output, target)
        return loss.mean() if self.reduction == "mean" else loss.sum()

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class L1Loss(_PixelLoss):
    """Mean absolute error ``mean(|output − target|)``.

    Args:
        reduction: ``"mean"`` or ``"sum"``.
    """

    name = "l1"

    def elementwise(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target).abs()


class L2Loss(_PixelLoss):
    """Mean squared error ``mean((output − target)²)`` (no ½ factor, no square root).

    Args:
        reduction: ``"mean"`` or ``"sum"``.
    """

    name = "l2"

    def elementwise(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target).square()


class CharbonnierLoss(_PixelLoss):
    """Charbonnier loss ``mean(sqrt((output − target)² + ε²))``, a smooth L1.

    It behaves like L2 (scaled by ``1/(2ε)``) for errors much smaller than ``ε`` and like L1
    for larger ones, so it is differentiable at zero while staying robust to outliers.
    ``ε = 1e-3`` (in ``[0, 1]`` image units) follows the restoration literature, e.g.
    MPRNet (Zamir et al., "Multi-Stage Progressive Image Restoration", CVPR 2021). Note that
    a perfect prediction scores ``ε``, not 0.

    Reference:
        P. Charbonnier, L. Blanc-Féraud, G. Aubert and M. Barlaud, "Two deterministic
        half-quadratic regularization algorithms for computed imaging", ICIP 1994.

    Args:
        eps: the smoothing constant ``ε > 0``.
        reduction: ``"mean"`` or ``"sum"``.

    Raises:
        InvalidInputError: for ``eps <= 0`` or an unknown reduction.
    """

    name = "charbonnier"

    def __init__(self, eps: float = 1e-3, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        if not eps > 0:
            raise InvalidInputError(f"charbonnier loss: eps must be > 0, got {eps!r}")
        self.eps = eps

    def elementwise(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((output - target).square() + self.eps**2)

    def extra_repr(self) -> str:
        return f"eps={self.eps!r}, reduction={self.reduction!r}"
